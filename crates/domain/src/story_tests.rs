//! Given/when/then tests of every rule of the `Story` aggregate.
//!
//! A command is decided as the command service decides it: on the aggregate the given events
//! leave, knowing what the log's index of developments holds after them about the developments
//! the command names (and nothing else).

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::{AggregateResultValidator, TestFramework};
use cqrs_es::Aggregate;
use uuid::Uuid;

use crate::*;

/// The story's history before the command.
struct Given(Vec<StoryEvent>);

fn given(history: Vec<StoryEvent>) -> Given {
    Given(history)
}

impl Given {
    fn when(self, issued: Issued) -> AggregateResultValidator<Story> {
        let all = Facts::from_history(&self.0);
        let named = issued.command.developments_named();
        let facts = Facts::new(
            named
                .iter()
                .filter_map(|id| all.development(id).map(|state| (*id, state.clone()))),
        );
        TestFramework::<Story>::with(())
            .given(self.0)
            .when(issued.knowing(facts))
    }

    /// As `when`, issued by the one who filed the developments the command names.
    fn when_filed_by_issuer(self, issued: Issued) -> AggregateResultValidator<Story> {
        let all = Facts::from_history(&self.0);
        let named = issued.command.developments_named();
        let facts = Facts::new(
            named
                .iter()
                .filter_map(|id| all.development(id).map(|state| (*id, state.clone()))),
        )
        .filed_by_issuer(named.clone());
        TestFramework::<Story>::with(())
            .given(self.0)
            .when(issued.knowing(facts))
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 3, 12, 0, 0).unwrap()
}

fn story_id() -> StoryId {
    StoryId::from(Uuid::from_u128(1))
}

fn dev_id(n: u128) -> DevelopmentId {
    DevelopmentId::from(Uuid::from_u128(1000 + n))
}

fn opened(review_required: bool) -> StoryEvent {
    StoryEvent::StoryOpened {
        id: story_id(),
        slug: Slug::parse("slug", "campaign-hack").unwrap(),
        headline: Headline::parse("headline", "Campaign reports a hack").unwrap(),
        summary: Summary::parse("summary", "").unwrap(),
        tags: vec![],
        review_required,
    }
}

fn filing(n: u128, kind: DevelopmentKind) -> NewDevelopment {
    NewDevelopment {
        accused: vec![],
        id: dev_id(n),
        kind,
        headline: Headline::parse("headline", "Something happened").unwrap(),
        body: Body::parse("body", "Details.").unwrap(),
        occurred_at: Some(now() - Duration::days(20)),
        actors: Actor::parse_list("actors", &["Campaign A".into()]).unwrap(),
        source: Some(Source {
            name: SourceName::parse("source.name", "Campaign spokesperson").unwrap(),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::NoneProvided,
        urgency: Urgency::Priority,
        responds_to: None,
        embargo_until: None,
        hold: None,
    }
}

fn recorded(new: &NewDevelopment, status: PublicationStatus) -> StoryEvent {
    StoryEvent::DevelopmentRecorded {
        development: Development {
            accused: new.accused.clone(),
            id: new.id,
            kind: new.kind,
            headline: new.headline.clone(),
            body: new.body.clone(),
            occurred_at: new.occurred_at.unwrap_or(now()),
            recorded_at: now(),
            actors: new.actors.clone(),
            source: new.source.clone(),
            evidence: new.evidence,
            urgency: new.urgency,
            responds_to: new.responds_to,
        },
        status,
        fingerprint: new.fingerprint(),
        embargo_until: new.embargo_until,
        hold: None,
    }
}

fn as_reporter(command: StoryCommand) -> Issued {
    Issued::new(Role::Reporter, now(), command)
}

fn as_editor(command: StoryCommand) -> Issued {
    Issued::new(Role::Editor, now(), command)
}

fn note(text: &str) -> Note {
    Note::parse("note", text).unwrap()
}

fn field_error(field: &'static str, message: &str) -> StoryError {
    StoryError::Invalid(FieldError::new(field, message))
}

#[test]
fn opening_a_story_records_it() {
    let StoryEvent::StoryOpened {
        id,
        slug,
        headline,
        summary,
        tags,
        review_required,
    } = opened(false)
    else {
        unreachable!()
    };
    given(vec![])
        .when(as_reporter(StoryCommand::OpenStory {
            id,
            slug,
            headline,
            summary,
            tags,
            review_required,
        }))
        .then_expect_events(vec![opened(false)]);
}

#[test]
fn opening_a_story_twice_is_refused() {
    let StoryEvent::StoryOpened {
        id,
        slug,
        headline,
        summary,
        ..
    } = opened(false)
    else {
        unreachable!()
    };
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::OpenStory {
            id,
            slug,
            headline,
            summary,
            tags: vec![],
            review_required: false,
        }))
        .then_expect_error(StoryError::StoryAlreadyOpened);
}

#[test]
fn recording_on_a_story_never_opened_is_refused() {
    given(vec![])
        .when(as_reporter(StoryCommand::RecordDevelopment(filing(
            1,
            DevelopmentKind::HackReported,
        ))))
        .then_expect_error(StoryError::StoryNotFound);
}

#[test]
fn a_reporters_development_publishes_at_once_without_review() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
}

#[test]
fn occurred_at_defaults_to_the_moment_of_recording() {
    let mut new = filing(1, DevelopmentKind::HackReported);
    new.occurred_at = None;
    let events = given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new)))
        .inspect_result()
        .unwrap();
    let StoryEvent::DevelopmentRecorded { development, .. } = &events[0] else {
        panic!("expected a recording, got {events:?}")
    };
    assert_eq!(development.occurred_at, now());
    assert_eq!(development.recorded_at, now());
}

#[test]
fn recording_on_a_closed_story_is_refused() {
    given(vec![opened(false), StoryEvent::StoryClosed {}])
        .when(as_editor(StoryCommand::RecordDevelopment(filing(
            1,
            DevelopmentKind::HackReported,
        ))))
        .then_expect_error(StoryError::StoryClosed);
}

#[test]
fn reopening_a_closed_story_allows_recording_again() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        StoryEvent::StoryClosed {},
        StoryEvent::StoryReopened {},
    ])
    .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
    .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
}

#[test]
fn the_same_filing_twice_is_recorded_once() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_reporter(StoryCommand::RecordDevelopment(new)))
    .then_expect_events(vec![]);
}

#[test]
fn the_same_id_with_different_content_is_a_conflict() {
    let new = filing(1, DevelopmentKind::HackReported);
    let mut changed = new.clone();
    changed.headline = Headline::parse("headline", "Something else").unwrap();
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_reporter(StoryCommand::RecordDevelopment(changed)))
    .then_expect_error(StoryError::DevelopmentIdReused(dev_id(1)));
}

#[test]
fn occurred_at_more_than_five_minutes_ahead_is_refused() {
    let mut new = filing(1, DevelopmentKind::HackReported);
    new.occurred_at = Some(now() + Duration::minutes(6));
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_error(field_error(
            "occurred_at",
            "must not lie more than 5 minutes in the future",
        ));
    // Within the tolerance, clock skew is accepted.
    new.occurred_at = Some(now() + Duration::minutes(4));
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
}

#[test]
fn occurred_at_before_1900_or_on_a_leap_second_is_refused_whatever_the_edge() {
    // The desk's forms and other edges hand over a `DateTime` already parsed: the decision
    // holds them to the same range as the API's parsing.
    let year_zero = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
    let before = Utc.with_ymd_and_hms(1899, 12, 31, 23, 59, 59).unwrap();
    let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
        .unwrap()
        .and_hms_milli_opt(23, 59, 59, 1_000)
        .unwrap()
        .and_utc();
    for (at, message) in [
        (year_zero, "must not lie before 1900-01-01T00:00:00Z"),
        (before, "must not lie before 1900-01-01T00:00:00Z"),
        (leap, "must not be a leap second (`:60`)"),
    ] {
        let mut new = filing(1, DevelopmentKind::HackReported);
        new.occurred_at = Some(at);
        given(vec![opened(false)])
            .when(as_reporter(StoryCommand::RecordDevelopment(new)))
            .then_expect_error(field_error("occurred_at", message));
        let published = filing(2, DevelopmentKind::HackReported);
        given(vec![
            opened(false),
            recorded(&published, PublicationStatus::Published),
        ])
        .when(as_editor(StoryCommand::CorrectDevelopment {
            development: published.id,
            note: note("The date was wrong."),
            changes: DevelopmentChanges {
                occurred_at: Some(at),
                ..Default::default()
            },
        }))
        .then_expect_error(field_error("changes.occurred_at", message));
    }
    let mut new = filing(1, DevelopmentKind::HackReported);
    new.occurred_at = Some(Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap());
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
}

#[test]
fn attributions_and_denials_need_a_named_source() {
    for kind in [
        DevelopmentKind::AttributionClaimed,
        DevelopmentKind::DenialIssued,
    ] {
        let mut new = filing(1, kind);
        new.source = None;
        given(vec![opened(false)])
            .when(as_reporter(StoryCommand::RecordDevelopment(new)))
            .then_expect_error(field_error(
                "source.name",
                &format!("a named source is required for `{kind}`"),
            ));
    }
}

#[test]
fn a_denial_must_respond_to_a_claim_with_stance_denies() {
    let claim = filing(1, DevelopmentKind::AttributionClaimed);
    let history = vec![
        opened(false),
        recorded(&claim, PublicationStatus::Published),
    ];
    let mut denial = filing(2, DevelopmentKind::DenialIssued);
    given(history.clone())
        .when(as_reporter(StoryCommand::RecordDevelopment(denial.clone())))
        .then_expect_error(field_error(
            "responds_to",
            "a denial must name the development it denies",
        ));

    denial.responds_to = Some(RespondsTo {
        development: claim.id,
        stance: Stance::Disputes,
    });
    given(history.clone())
        .when(as_reporter(StoryCommand::RecordDevelopment(denial.clone())))
        .then_expect_error(field_error(
            "responds_to.stance",
            "a denial's stance is `denies`",
        ));

    denial.responds_to = Some(RespondsTo {
        development: claim.id,
        stance: Stance::Denies,
    });
    given(history)
        .when(as_reporter(StoryCommand::RecordDevelopment(denial.clone())))
        .then_expect_events(vec![recorded(&denial, PublicationStatus::Published)]);
}

#[test]
fn a_response_must_name_a_development_of_the_same_story() {
    let mut response = filing(2, DevelopmentKind::StatementIssued);
    response.responds_to = Some(RespondsTo {
        development: dev_id(99),
        stance: Stance::Supports,
    });
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(response)))
        .then_expect_error(field_error(
            "responds_to.development",
            &format!("no development {} in this story", dev_id(99)),
        ));
}

#[test]
fn a_response_to_a_rejected_development_is_refused() {
    let claim = filing(1, DevelopmentKind::AttributionClaimed);
    let mut response = filing(2, DevelopmentKind::StatementIssued);
    response.responds_to = Some(RespondsTo {
        development: claim.id,
        stance: Stance::Supports,
    });
    given(vec![
        opened(true),
        recorded(&claim, PublicationStatus::PendingReview),
        StoryEvent::DevelopmentRejected {
            development: claim.id,
            reason: note("unsourced"),
        },
    ])
    .when(as_editor(StoryCommand::RecordDevelopment(response)))
    .then_expect_error(field_error(
        "responds_to.development",
        &format!("no development {} in this story", claim.id),
    ));
}

#[test]
fn under_review_a_reporters_development_waits_and_an_editors_publishes() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![opened(true)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::PendingReview)]);
    given(vec![opened(true)])
        .when(as_editor(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
}

#[test]
fn a_reporters_flash_waits_for_an_editor_even_without_review() {
    // `flash` alerts every subscriber at once: it needs an editor, or an editor's approval.
    let mut new = filing(1, DevelopmentKind::ArrestMade);
    new.urgency = Urgency::Flash;
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::PendingReview)]);
    given(vec![opened(false)])
        .when(as_editor(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Published)]);
    // Priority stays the reporter's call.
    let mut priority = filing(2, DevelopmentKind::ArrestMade);
    priority.urgency = Urgency::Priority;
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(
            priority.clone(),
        )))
        .then_expect_events(vec![recorded(&priority, PublicationStatus::Published)]);
}

#[test]
fn an_editor_approves_or_rejects_a_pending_development_once() {
    let new = filing(1, DevelopmentKind::HackReported);
    let history = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    given(history.clone())
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: new.id,
            hold: None,
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentApproved {
            development: new.id,
        }]);
    given(history.clone())
        .when(as_editor(StoryCommand::RejectDevelopment {
            development: new.id,
            reason: note("no second source"),
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentRejected {
            development: new.id,
            reason: note("no second source"),
        }]);
    let mut approved = history;
    approved.push(StoryEvent::DevelopmentApproved {
        development: new.id,
    });
    given(approved)
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: new.id,
            hold: None,
        }))
        .then_expect_error(StoryError::DevelopmentState {
            id: new.id,
            status: "published",
            action: "approval",
        });
}

#[test]
fn the_one_who_filed_a_pending_development_may_withdraw_it() {
    let new = filing(1, DevelopmentKind::HackReported);
    let pending = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    let withdraw = || StoryCommand::WithdrawDevelopment {
        development: new.id,
    };
    given(pending.clone())
        .when_filed_by_issuer(as_reporter(withdraw()))
        .then_expect_events(vec![StoryEvent::DevelopmentRejected {
            development: new.id,
            reason: note(WITHDRAWN),
        }]);
    // Nobody else, not even an editor (who rejects instead).
    for issued in [as_reporter(withdraw()), as_editor(withdraw())] {
        given(pending.clone())
            .when(issued)
            .then_expect_error(StoryError::NotTheirs {
                action: "withdraw a development",
            });
    }
    // Only while it waits for review.
    let mut published = pending.clone();
    published.push(StoryEvent::DevelopmentApproved {
        development: new.id,
    });
    given(published)
        .when_filed_by_issuer(as_reporter(withdraw()))
        .then_expect_error(StoryError::DevelopmentState {
            id: new.id,
            status: "published",
            action: "withdrawal",
        });
    given(vec![opened(true)])
        .when_filed_by_issuer(as_reporter(withdraw()))
        .then_expect_error(StoryError::DevelopmentNotFound(new.id));
}

#[test]
fn the_one_who_filed_a_pending_development_may_edit_it_until_it_is_published() {
    let new = filing(1, DevelopmentKind::HackReported);
    let pending = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    let edit = || StoryCommand::CorrectDevelopment {
        development: new.id,
        note: note("Second source added."),
        changes: DevelopmentChanges {
            evidence: Some(Evidence::Documentary),
            ..Default::default()
        },
    };
    // Before publication it is an edit of the filing, not a correction readers are told of.
    given(pending.clone())
        .when_filed_by_issuer(as_reporter(edit()))
        .then_expect_events(vec![StoryEvent::FilingEdited {
            development: new.id,
            changes: DevelopmentChanges {
                evidence: Some(Evidence::Documentary),
                ..Default::default()
            },
            note: Some(note("Second source added.")),
        }]);
    // Once published, a change is a correction: editors only.
    let mut published = pending;
    published.push(StoryEvent::DevelopmentApproved {
        development: new.id,
    });
    given(published)
        .when_filed_by_issuer(as_reporter(edit()))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "correct a development",
        });
}

#[test]
fn a_reporter_cannot_approve_correct_or_retract() {
    let new = filing(1, DevelopmentKind::HackReported);
    let history = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    let commands = [
        (
            StoryCommand::ApproveDevelopment {
                development: new.id,
                hold: None,
            },
            "approve a development",
        ),
        (
            StoryCommand::RejectDevelopment {
                development: new.id,
                reason: note("x"),
            },
            "reject a development",
        ),
        (
            StoryCommand::CorrectDevelopment {
                development: new.id,
                note: note("x"),
                changes: DevelopmentChanges {
                    evidence: Some(Evidence::Confirmed),
                    ..Default::default()
                },
            },
            "correct a development",
        ),
        (
            StoryCommand::RetractDevelopment {
                development: new.id,
                reason: note("x"),
            },
            "retract a development",
        ),
        (StoryCommand::CloseStory, "close a story"),
    ];
    for (command, action) in commands {
        given(history.clone())
            .when(as_reporter(command))
            .then_expect_error(StoryError::Forbidden {
                required: "editor",
                action,
            });
    }
}

#[test]
fn correcting_records_the_note_and_changes() {
    let new = filing(1, DevelopmentKind::HackReported);
    let changes = DevelopmentChanges {
        headline: Some(Headline::parse("headline", "Campaign reports a breach").unwrap()),
        ..Default::default()
    };
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_editor(StoryCommand::CorrectDevelopment {
        development: new.id,
        note: note("An earlier version called it a hack."),
        changes: changes.clone(),
    }))
    .then_expect_events(vec![StoryEvent::DevelopmentCorrected {
        development: new.id,
        note: note("An earlier version called it a hack."),
        changes,
    }]);
}

#[test]
fn a_correction_must_change_something() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_editor(StoryCommand::CorrectDevelopment {
        development: new.id,
        note: note("nothing"),
        changes: DevelopmentChanges::default(),
    }))
    .then_expect_error(field_error("changes", "name at least one field to change"));
}

#[test]
fn correcting_a_retracted_development_is_refused() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
        StoryEvent::DevelopmentRetracted {
            development: new.id,
            reason: note("could not be confirmed"),
        },
    ])
    .when(as_editor(StoryCommand::CorrectDevelopment {
        development: new.id,
        note: note("fix"),
        changes: DevelopmentChanges {
            evidence: Some(Evidence::Confirmed),
            ..Default::default()
        },
    }))
    .then_expect_error(StoryError::DevelopmentState {
        id: new.id,
        status: "retracted",
        action: "correction",
    });
}

#[test]
fn retracting_twice_or_a_pending_development_is_refused() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_editor(StoryCommand::RetractDevelopment {
        development: new.id,
        reason: note("wrong"),
    }))
    .then_expect_events(vec![StoryEvent::DevelopmentRetracted {
        development: new.id,
        reason: note("wrong"),
    }]);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
        StoryEvent::DevelopmentRetracted {
            development: new.id,
            reason: note("wrong"),
        },
    ])
    .when(as_editor(StoryCommand::RetractDevelopment {
        development: new.id,
        reason: note("again"),
    }))
    .then_expect_error(StoryError::DevelopmentState {
        id: new.id,
        status: "retracted",
        action: "retraction",
    });
    given(vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ])
    .when(as_editor(StoryCommand::RetractDevelopment {
        development: new.id,
        reason: note("wrong"),
    }))
    .then_expect_error(StoryError::DevelopmentState {
        id: new.id,
        status: "pending review",
        action: "retraction",
    });
}

#[test]
fn unknown_developments_are_named_in_the_refusal() {
    given(vec![opened(false)])
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: dev_id(7),
            hold: None,
        }))
        .then_expect_error(StoryError::DevelopmentNotFound(dev_id(7)));
}

#[test]
fn closing_twice_or_reopening_an_open_story_is_refused() {
    given(vec![opened(false), StoryEvent::StoryClosed {}])
        .when(as_editor(StoryCommand::CloseStory))
        .then_expect_error(StoryError::StoryStatusUnchanged("closed"));
    given(vec![opened(false)])
        .when(as_editor(StoryCommand::ReopenStory))
        .then_expect_error(StoryError::StoryStatusUnchanged("open"));
}

#[test]
fn a_revision_records_only_what_changed_in_one_go() {
    given(vec![opened(false)])
        .when(as_editor(StoryCommand::ReviseStory {
            headline: Some(Headline::parse("headline", "Campaign reports a hack").unwrap()),
            tags: None,
        }))
        .then_expect_events(vec![]);
    let tags = Tag::parse_list("tags", &["elections".into()]).unwrap();
    let headline = Headline::parse("headline", "Two campaigns report hacks").unwrap();
    given(vec![opened(false)])
        .when(as_editor(StoryCommand::ReviseStory {
            headline: Some(headline.clone()),
            tags: Some(tags.clone()),
        }))
        .then_expect_events(vec![
            StoryEvent::HeadlineChanged { headline },
            StoryEvent::TagsChanged { tags },
        ]);
}

fn revision() -> StoryCommand {
    StoryCommand::ReviseStory {
        headline: Some(Headline::parse("headline", "Two campaigns report hacks").unwrap()),
        tags: Some(Tag::parse_list("tags", &["elections".into()]).unwrap()),
    }
}

#[test]
fn only_an_editor_revises_a_storys_own_fields_under_review_or_not() {
    // The headline and tags are what the front page shows and what subscribers follow: an
    // editorial decision, like closing the story, whether or not the story is under review.
    for review_required in [false, true] {
        given(vec![opened(review_required)])
            .when(as_reporter(revision()))
            .then_expect_error(StoryError::Forbidden {
                required: "editor",
                action: "revise a story",
            });
        // Even a revision that would change nothing is refused to a reporter.
        given(vec![opened(review_required)])
            .when(as_reporter(StoryCommand::ReviseStory {
                headline: Some(Headline::parse("headline", "Campaign reports a hack").unwrap()),
                tags: None,
            }))
            .then_expect_error(StoryError::Forbidden {
                required: "editor",
                action: "revise a story",
            });
        given(vec![opened(review_required)])
            .when(Issued::new(Role::Admin, now(), revision()))
            .then_expect_events(vec![
                StoryEvent::HeadlineChanged {
                    headline: Headline::parse("headline", "Two campaigns report hacks").unwrap(),
                },
                StoryEvent::TagsChanged {
                    tags: Tag::parse_list("tags", &["elections".into()]).unwrap(),
                },
            ]);
    }
}

#[test]
fn a_closed_story_cannot_be_revised_until_it_is_reopened() {
    given(vec![opened(false), StoryEvent::StoryClosed {}])
        .when(as_editor(revision()))
        .then_expect_error(StoryError::StoryClosed);
    // A reporter learns first that revising is not theirs to do.
    given(vec![opened(false), StoryEvent::StoryClosed {}])
        .when(as_reporter(revision()))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "revise a story",
        });
    given(vec![
        opened(false),
        StoryEvent::StoryClosed {},
        StoryEvent::StoryReopened {},
    ])
    .when(as_editor(StoryCommand::ReviseStory {
        headline: None,
        tags: Some(Tag::parse_list("tags", &["elections".into()]).unwrap()),
    }))
    .then_expect_events(vec![StoryEvent::TagsChanged {
        tags: Tag::parse_list("tags", &["elections".into()]).unwrap(),
    }]);
}

#[test]
fn the_index_remembers_the_sequence_and_status_of_each_filing() {
    let new = filing(1, DevelopmentKind::HackReported);
    let history = [
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
        StoryEvent::DevelopmentApproved {
            development: new.id,
        },
    ];
    let facts = Facts::from_history(&history);
    let state = facts.development(&new.id).unwrap();
    assert_eq!(state.fingerprint, new.fingerprint());
    assert_eq!(state.recorded_in, 2);
    assert_eq!(state.recorded_as, PublicationStatus::PendingReview);
    assert_eq!(state.status, DevelopmentStatus::Published);
    assert_eq!(facts.development(&dev_id(2)), None);
}

#[test]
fn the_aggregate_does_not_grow_with_its_developments_and_survives_a_snapshot() {
    let mut story = Story::default();
    story.apply(opened(true));
    let size = |story: &Story| upcast::snapshot(story).to_string().len();
    let mut first = None;
    for n in 0..1_000 {
        let new = filing(n, DevelopmentKind::Update);
        story.apply(recorded(&new, PublicationStatus::PendingReview));
        story.apply(StoryEvent::DevelopmentApproved {
            development: new.id,
        });
        first.get_or_insert(size(&story));
    }
    assert_eq!(story.version(), 2_001);
    // Only the version's digits may differ.
    assert!(size(&story) <= first.unwrap() + 3, "{}", size(&story));
    let read = upcast::read_snapshot(upcast::snapshot(&story)).unwrap();
    assert_eq!(serde_json::from_value::<Story>(read).unwrap(), story);
}

#[test]
fn a_command_names_the_developments_its_decision_needs() {
    let mut response = filing(2, DevelopmentKind::StatementIssued);
    response.responds_to = Some(RespondsTo {
        development: dev_id(1),
        stance: Stance::Supports,
    });
    assert_eq!(
        StoryCommand::RecordDevelopment(response).developments_named(),
        vec![dev_id(2), dev_id(1)]
    );
    assert_eq!(
        StoryCommand::ApproveDevelopment {
            development: dev_id(3),
            hold: None,
        }
        .developments_named(),
        vec![dev_id(3)]
    );
    assert!(StoryCommand::CloseStory.developments_named().is_empty());
}

#[test]
fn without_the_looked_up_facts_a_recorded_development_is_unknown() {
    // The decision knows of developments only what it is told: the service must look them up.
    let new = filing(1, DevelopmentKind::HackReported);
    TestFramework::<Story>::with(())
        .given(vec![
            opened(false),
            recorded(&new, PublicationStatus::Published),
        ])
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: new.id,
            hold: None,
        }))
        .then_expect_error(StoryError::DevelopmentNotFound(new.id));
}

#[test]
fn a_claim_names_whom_it_accuses_among_its_actors() {
    let actors = |names: &[&str]| {
        Actor::parse_list(
            "actors",
            &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let mut claim = filing(1, DevelopmentKind::AttributionClaimed);
    claim.actors = actors(&["Campaign A"]);
    claim.accused = actors(&["Fancy Bear"]);
    // The accused is named among the actors too; the target stays as filed.
    let mut expected = claim.clone();
    expected.actors = actors(&["Campaign A", "Fancy Bear"]);
    let StoryEvent::DevelopmentRecorded { development, .. } =
        recorded(&expected, PublicationStatus::Published)
    else {
        unreachable!()
    };
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(claim.clone())))
        .then_expect_events(vec![StoryEvent::DevelopmentRecorded {
            development,
            status: PublicationStatus::Published,
            fingerprint: claim.fingerprint(),
            embargo_until: None,
            hold: None,
        }]);
    // Named already among the actors, under another spelling, the accused is not named twice.
    let mut again = claim.clone();
    again.actors = actors(&["Campaign A", "FANCY BEAR"]);
    let mut expected = again.clone();
    expected.actors = actors(&["Campaign A", "FANCY BEAR"]);
    let StoryEvent::DevelopmentRecorded { development, .. } =
        recorded(&expected, PublicationStatus::Published)
    else {
        unreachable!()
    };
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(again.clone())))
        .then_expect_events(vec![StoryEvent::DevelopmentRecorded {
            development,
            status: PublicationStatus::Published,
            fingerprint: again.fingerprint(),
            embargo_until: None,
            hold: None,
        }]);
}

#[test]
fn only_a_claim_of_attribution_accuses() {
    let mut report = filing(1, DevelopmentKind::HackReported);
    report.accused = Actor::parse_list("accused", &["Fancy Bear".into()]).unwrap();
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(report)))
        .then_expect_error(field_error(
            "accused",
            "only a claim of attribution accuses; this is `hack_reported`",
        ));
}

#[test]
fn a_filing_without_accused_keeps_the_fingerprint_it_had() {
    // Filings made before the accused were asked for are retried with the same fingerprint.
    let new = filing(1, DevelopmentKind::HackReported);
    let json = serde_json::to_value(&new).unwrap();
    assert!(json.get("accused").is_none(), "{json}");
}

fn headline_change(text: &str) -> DevelopmentChanges {
    DevelopmentChanges {
        headline: Some(Headline::parse("changes.headline", text).unwrap()),
        ..Default::default()
    }
}

#[test]
fn editing_a_pending_filing_records_an_edit_of_the_filing_not_a_correction() {
    let new = filing(1, DevelopmentKind::HackReported);
    let pending = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    let edit = |note: Option<Note>| StoryCommand::EditFiling {
        development: new.id,
        changes: headline_change("Campaign A confirms the breach"),
        note,
    };
    let edited = |note: Option<Note>| StoryEvent::FilingEdited {
        development: new.id,
        changes: headline_change("Campaign A confirms the breach"),
        note,
    };
    // Its reporter edits it, with or without a note for the desk.
    given(pending.clone())
        .when_filed_by_issuer(as_reporter(edit(None)))
        .then_expect_events(vec![edited(None)]);
    given(pending.clone())
        .when_filed_by_issuer(as_reporter(edit(Some(note("Subbed to house style.")))))
        .then_expect_events(vec![edited(Some(note("Subbed to house style.")))]);
    // An editor edits anyone's.
    given(pending.clone())
        .when(as_editor(edit(None)))
        .then_expect_events(vec![edited(None)]);
    // Another reporter may not.
    given(pending.clone())
        .when(as_reporter(edit(None)))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "edit someone else's filing",
        });
    // An edit names something to change, at a sane time.
    given(pending.clone())
        .when(as_editor(StoryCommand::EditFiling {
            development: new.id,
            changes: DevelopmentChanges::default(),
            note: None,
        }))
        .then_expect_error(field_error("changes", "name at least one field to change"));
    given(pending.clone())
        .when(as_editor(StoryCommand::EditFiling {
            development: new.id,
            changes: DevelopmentChanges {
                occurred_at: Some(now() + Duration::days(1)),
                ..Default::default()
            },
            note: None,
        }))
        .then_expect_error_message(
            "changes.occurred_at: must not lie more than 5 minutes in the future",
        );
}

#[test]
fn a_filing_is_edited_only_while_it_waits_for_review() {
    let new = filing(1, DevelopmentKind::HackReported);
    let pending = vec![
        opened(true),
        recorded(&new, PublicationStatus::PendingReview),
    ];
    let edit = || StoryCommand::EditFiling {
        development: new.id,
        changes: headline_change("Campaign A confirms the breach"),
        note: None,
    };
    for (then, status) in [
        (
            StoryEvent::DevelopmentApproved {
                development: new.id,
            },
            "published",
        ),
        (
            StoryEvent::DevelopmentRejected {
                development: new.id,
                reason: note("Not sourced."),
            },
            "rejected",
        ),
    ] {
        let mut history = pending.clone();
        history.push(then);
        given(history)
            .when_filed_by_issuer(as_editor(edit()))
            .then_expect_error(StoryError::DevelopmentState {
                id: new.id,
                status,
                action: "edit of the filing",
            });
    }
    given(vec![opened(true)])
        .when(as_editor(edit()))
        .then_expect_error(StoryError::DevelopmentNotFound(new.id));
    // Once published, a change is a correction, as before.
    let mut published = pending;
    published.push(StoryEvent::DevelopmentApproved {
        development: new.id,
    });
    given(published)
        .when(as_editor(StoryCommand::CorrectDevelopment {
            development: new.id,
            note: note("Headline corrected."),
            changes: headline_change("Campaign A confirms the breach"),
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentCorrected {
            development: new.id,
            note: note("Headline corrected."),
            changes: headline_change("Campaign A confirms the breach"),
        }]);
}

// Embargoes.

fn embargoed(n: u128, until: DateTime<Utc>) -> NewDevelopment {
    NewDevelopment {
        embargo_until: Some(until),
        ..filing(n, DevelopmentKind::HackReported)
    }
}

fn lift(n: u128, due: Option<DateTime<Utc>>) -> StoryCommand {
    StoryCommand::LiftEmbargo {
        development: dev_id(n),
        due,
    }
}

fn at(by: Role, at: DateTime<Utc>, command: StoryCommand) -> Issued {
    Issued::new(by, at, command)
}

#[test]
fn a_filing_under_embargo_is_recorded_embargoed() {
    let new = embargoed(1, now() + Duration::hours(2));
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Embargoed)]);
}

#[test]
fn an_embargo_in_the_past_or_beyond_a_year_is_refused_naming_the_field() {
    for until in [
        now(),
        now() - Duration::seconds(1),
        now() + Duration::days(367),
    ] {
        let story = {
            let mut story = Story::default();
            story.apply(opened(false));
            story
        };
        let error = story
            .decide(as_reporter(StoryCommand::RecordDevelopment(embargoed(
                1, until,
            ))))
            .unwrap_err();
        assert_eq!(error.field(), Some("embargo_until"), "{until}: {error}");
    }
}

#[test]
fn a_filing_without_embargo_keeps_its_fingerprint() {
    let plain = filing(1, DevelopmentKind::HackReported);
    let json = serde_json::to_value(&plain).unwrap();
    assert!(json.get("embargo_until").is_none());
}

#[test]
fn the_scheduler_lifts_a_due_embargo_and_publishes_it() {
    let until = now() + Duration::hours(2);
    let new = embargoed(1, until);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Embargoed),
    ])
    .when(at(Role::Admin, until, lift(1, Some(until))))
    .then_expect_events(vec![StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: true,
    }]);
}

#[test]
fn the_scheduler_lifts_nothing_before_the_time_or_twice() {
    let until = now() + Duration::hours(2);
    let new = embargoed(1, until);
    let filed = recorded(&new, PublicationStatus::Embargoed);
    // One second before: nothing.
    given(vec![opened(false), filed.clone()])
        .when(at(
            Role::Admin,
            until - Duration::seconds(1),
            lift(1, Some(until)),
        ))
        .then_expect_events(vec![]);
    // A second scheduler after the first: nothing.
    let lifted = StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: true,
    };
    given(vec![opened(false), filed.clone(), lifted])
        .when(at(Role::Admin, until, lift(1, Some(until))))
        .then_expect_events(vec![]);
    // An embargo moved since the scheduler read it: nothing.
    let moved = StoryEvent::EmbargoMoved {
        development: dev_id(1),
        until: until + Duration::hours(1),
    };
    given(vec![opened(false), filed, moved])
        .when(at(Role::Admin, until, lift(1, Some(until))))
        .then_expect_events(vec![]);
}

#[test]
fn an_editor_lifts_early_and_moves_the_time_a_reporter_does_neither() {
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(1, until), PublicationStatus::Embargoed);
    given(vec![opened(false), filed.clone()])
        .when(as_editor(lift(1, None)))
        .then_expect_events(vec![StoryEvent::EmbargoLifted {
            development: dev_id(1),
            published: true,
        }]);
    given(vec![opened(false), filed.clone()])
        .when(as_reporter(lift(1, None)))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "lift an embargo",
        });
    let later = now() + Duration::hours(5);
    given(vec![opened(false), filed.clone()])
        .when(as_editor(StoryCommand::MoveEmbargo {
            development: dev_id(1),
            until: later,
        }))
        .then_expect_events(vec![StoryEvent::EmbargoMoved {
            development: dev_id(1),
            until: later,
        }]);
    given(vec![opened(false), filed.clone()])
        .when(as_reporter(StoryCommand::MoveEmbargo {
            development: dev_id(1),
            until: later,
        }))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "move an embargo",
        });
    given(vec![opened(false), filed])
        .when(as_editor(StoryCommand::MoveEmbargo {
            development: dev_id(1),
            until: now() - Duration::minutes(1),
        }))
        .then_expect_error(field_error(
            "until",
            &format!(
                "must lie in the future (it is now {})",
                now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
}

#[test]
fn an_editor_cannot_lift_what_is_not_embargoed() {
    let new = filing(1, DevelopmentKind::HackReported);
    given(vec![
        opened(false),
        recorded(&new, PublicationStatus::Published),
    ])
    .when(as_editor(lift(1, None)))
    .then_expect_error(StoryError::DevelopmentState {
        id: dev_id(1),
        status: "published",
        action: "lifting an embargo",
    });
}

#[test]
fn approval_of_an_embargoed_filing_keeps_it_embargoed_until_the_lift() {
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(1, until), PublicationStatus::PendingReview);
    given(vec![opened(true), filed.clone()])
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: dev_id(1),
            hold: None,
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentApprovedUnderEmbargo {
            development: dev_id(1),
            until,
            hold: None,
        }]);
    // Approved after the time came (not lifted yet): published at once.
    given(vec![opened(true), filed.clone()])
        .when(at(
            Role::Editor,
            until + Duration::seconds(1),
            StoryCommand::ApproveDevelopment {
                development: dev_id(1),
                hold: None,
            },
        ))
        .then_expect_events(vec![StoryEvent::DevelopmentApproved {
            development: dev_id(1),
        }]);
    // The approved one is lifted and published by the scheduler.
    let held = StoryEvent::DevelopmentApprovedUnderEmbargo {
        development: dev_id(1),
        until,
        hold: None,
    };
    given(vec![opened(true), filed, held])
        .when(at(Role::Admin, until, lift(1, Some(until))))
        .then_expect_events(vec![StoryEvent::EmbargoLifted {
            development: dev_id(1),
            published: true,
        }]);
}

#[test]
fn a_lift_of_a_pending_filing_leaves_it_pending_and_approval_publishes_it() {
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(1, until), PublicationStatus::PendingReview);
    let lifted = StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: false,
    };
    given(vec![opened(true), filed.clone()])
        .when(at(Role::Admin, until, lift(1, Some(until))))
        .then_expect_events(vec![lifted.clone()]);
    let facts = Facts::from_history(&[opened(true), filed.clone(), lifted.clone()]);
    let state = facts.development(&dev_id(1)).unwrap();
    assert_eq!(state.status, DevelopmentStatus::PendingReview);
    assert_eq!(state.embargo_until, None);
    given(vec![opened(true), filed, lifted])
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: dev_id(1),
            hold: None,
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentApproved {
            development: dev_id(1),
        }]);
}

#[test]
fn an_embargoed_development_is_edited_not_corrected_and_cannot_be_retracted() {
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(1, until), PublicationStatus::Embargoed);
    let changes = DevelopmentChanges {
        headline: Some(Headline::parse("headline", "Changed").unwrap()),
        ..Default::default()
    };
    given(vec![opened(false), filed.clone()])
        .when(as_editor(StoryCommand::CorrectDevelopment {
            development: dev_id(1),
            note: note("typo"),
            changes: changes.clone(),
        }))
        .then_expect_events(vec![StoryEvent::FilingEdited {
            development: dev_id(1),
            changes,
            note: Some(note("typo")),
        }]);
    given(vec![opened(false), filed])
        .when(as_editor(StoryCommand::RetractDevelopment {
            development: dev_id(1),
            reason: note("wrong"),
        }))
        .then_expect_error(StoryError::DevelopmentState {
            id: dev_id(1),
            status: "embargoed",
            action: "retraction",
        });
}

#[test]
fn the_index_follows_an_embargo_from_filing_to_lift() {
    let until = now() + Duration::hours(2);
    let later = until + Duration::hours(1);
    let filed = recorded(&embargoed(1, until), PublicationStatus::Embargoed);
    let moved = StoryEvent::EmbargoMoved {
        development: dev_id(1),
        until: later,
    };
    let facts = Facts::from_history(&[opened(false), filed.clone(), moved.clone()]);
    let state = facts.development(&dev_id(1)).unwrap();
    assert_eq!(
        (state.status, state.embargo_until),
        (DevelopmentStatus::Embargoed, Some(later))
    );
    let lifted = StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: true,
    };
    let facts = Facts::from_history(&[opened(false), filed, moved, lifted]);
    let state = facts.development(&dev_id(1)).unwrap();
    assert_eq!(
        (state.status, state.embargo_until),
        (DevelopmentStatus::Published, None)
    );
}

#[test]
fn an_embargoed_development_is_spiked_by_a_rejection_and_never_lifted() {
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(1, until), PublicationStatus::Embargoed);
    let reason = Note::parse("reason", "The report was withdrawn by its authors.").unwrap();
    let rejected = StoryEvent::DevelopmentRejected {
        development: dev_id(1),
        reason: reason.clone(),
    };
    given(vec![opened(false), filed.clone()])
        .when(as_editor(StoryCommand::RejectDevelopment {
            development: dev_id(1),
            reason,
        }))
        .then_expect_events(vec![rejected.clone()]);
    // At the moment, the scheduler lifts nothing: readers never see it, nobody is alerted.
    given(vec![opened(false), filed, rejected])
        .when(at(Role::Admin, until, lift(1, Some(until))))
        .then_expect_events(vec![]);
}

fn other_id(n: u128) -> StoryId {
    StoryId::from(Uuid::from_u128(100 + n))
}

/// What the command service looks up of the other story before a relation is decided.
fn other(n: u128, exists: bool, relation_to_this: Option<Relation>) -> Facts {
    Facts::default().with_other_story(OtherStory {
        id: other_id(n),
        exists,
        relation_to_this,
    })
}

fn link(n: u128, relation: Relation) -> StoryCommand {
    StoryCommand::LinkStory {
        story: other_id(n),
        relation,
    }
}

fn linked(n: u128, relation: Relation) -> StoryEvent {
    StoryEvent::StoryLinked {
        story: other_id(n),
        relation,
    }
}

fn decide(history: Vec<StoryEvent>, issued: Issued) -> AggregateResultValidator<Story> {
    TestFramework::<Story>::with(()).given(history).when(issued)
}

#[test]
fn an_editor_relates_a_story_to_another_that_exists() {
    for relation in Relation::ALL.iter().copied() {
        decide(
            vec![opened(false)],
            as_editor(link(1, relation)).knowing(other(1, true, None)),
        )
        .then_expect_events(vec![linked(1, relation)]);
    }
    // A closed story may be related too: a new story follows up a settled one.
    decide(
        vec![opened(false), StoryEvent::StoryClosed {}],
        as_editor(link(1, Relation::FollowUp)).knowing(other(1, true, None)),
    )
    .then_expect_events(vec![linked(1, Relation::FollowUp)]);
}

#[test]
fn only_an_editor_relates_or_unrelates_stories() {
    let forbidden = StoryError::Forbidden {
        required: "editor",
        action: "relate stories",
    };
    decide(
        vec![opened(false)],
        as_reporter(link(1, Relation::Related)).knowing(other(1, true, None)),
    )
    .then_expect_error(forbidden.clone());
    decide(
        vec![opened(false), linked(1, Relation::Related)],
        as_reporter(StoryCommand::UnlinkStory { story: other_id(1) }),
    )
    .then_expect_error(forbidden);
}

#[test]
fn a_relation_to_an_unknown_story_or_to_itself_is_refused_naming_the_story() {
    decide(
        vec![opened(false)],
        as_editor(link(1, Relation::Background)).knowing(other(1, false, None)),
    )
    .then_expect_error(FieldError::new("story", format!("no story {}", other_id(1))).into());
    // Without the other story looked up, it is not known to exist.
    decide(
        vec![opened(false)],
        as_editor(link(1, Relation::Background)),
    )
    .then_expect_error(FieldError::new("story", format!("no story {}", other_id(1))).into());
    decide(
        vec![opened(false)],
        as_editor(StoryCommand::LinkStory {
            story: story_id(),
            relation: Relation::Related,
        })
        .knowing(Facts::default().with_other_story(OtherStory {
            id: story_id(),
            exists: true,
            relation_to_this: None,
        })),
    )
    .then_expect_error(FieldError::new("story", "a story cannot be related to itself").into());
}

#[test]
fn a_pair_of_stories_is_related_once_from_either_side() {
    // Recorded on this story already, with any relation.
    let err = decide(
        vec![opened(false), linked(1, Relation::Background)],
        as_editor(link(1, Relation::FollowUp)).knowing(other(1, true, None)),
    )
    .inspect_result()
    .unwrap_err();
    assert_eq!(
        err,
        StoryError::AlreadyRelated {
            story: other_id(1),
            relation: "background"
        }
    );
    assert_eq!(err.field(), Some("story"));
    // Recorded on the other story, to this one: named as this story sees it.
    decide(
        vec![opened(false)],
        as_editor(link(1, Relation::Related)).knowing(other(1, true, Some(Relation::FollowUp))),
    )
    .then_expect_error(StoryError::AlreadyRelated {
        story: other_id(1),
        relation: "followed_up_by",
    });
    // Unlinked, it may be related again, differently.
    decide(
        vec![
            opened(false),
            linked(1, Relation::Background),
            StoryEvent::StoryUnlinked {
                story: other_id(1),
                relation: Relation::Background,
            },
        ],
        as_editor(link(1, Relation::SameEvent)).knowing(other(1, true, None)),
    )
    .then_expect_events(vec![linked(1, Relation::SameEvent)]);
}

#[test]
fn a_story_records_a_bounded_number_of_relations() {
    let mut history = vec![opened(false)];
    history.extend((0..limits::RELATIONS as u128).map(|n| linked(n + 10, Relation::Related)));
    decide(
        history,
        as_editor(link(1, Relation::Related)).knowing(other(1, true, None)),
    )
    .then_expect_error(
        FieldError::new(
            "story",
            format!(
                "a story records at most {} relations; unlink one first",
                limits::RELATIONS
            ),
        )
        .into(),
    );
}

#[test]
fn unlinking_removes_the_relation_this_story_records_and_nothing_else() {
    decide(
        vec![opened(false), linked(1, Relation::FollowUp)],
        as_editor(StoryCommand::UnlinkStory { story: other_id(1) }),
    )
    .then_expect_events(vec![StoryEvent::StoryUnlinked {
        story: other_id(1),
        relation: Relation::FollowUp,
    }]);
    decide(
        vec![opened(false), linked(1, Relation::FollowUp)],
        as_editor(StoryCommand::UnlinkStory { story: other_id(2) }),
    )
    .then_expect_error(StoryError::NotRelated(other_id(2)));
    // Twice is refused: the relation is gone.
    decide(
        vec![
            opened(false),
            linked(1, Relation::FollowUp),
            StoryEvent::StoryUnlinked {
                story: other_id(1),
                relation: Relation::FollowUp,
            },
        ],
        as_editor(StoryCommand::UnlinkStory { story: other_id(1) }),
    )
    .then_expect_error(StoryError::NotRelated(other_id(1)));
}

#[test]
fn relations_survive_a_snapshot_and_a_shape_2_snapshot_still_reads() {
    let mut story = Story::default();
    story.apply(opened(false));
    story.apply(linked(1, Relation::Background));
    let read = upcast::read_snapshot(upcast::snapshot(&story)).unwrap();
    let back = serde_json::from_value::<Story>(read).unwrap();
    assert_eq!(back, story);
    assert_eq!(back.relation_to(other_id(1)), Some(Relation::Background));
    // A snapshot written before relations (shape 2) reads as a story relating to nothing.
    let mut plain = Story::default();
    plain.apply(opened(false));
    let old = serde_json::json!({"shape": 2, "story": plain});
    let read = serde_json::from_value::<Story>(upcast::read_snapshot(old).unwrap()).unwrap();
    assert_eq!(read, plain);
    assert_eq!(read.relation_to(other_id(1)), None);
}

#[test]
fn reverse_relations_read_sensibly() {
    assert_eq!(Relation::FollowUp.reverse_str(), "followed_up_by");
    assert_eq!(Relation::FollowUp.label(false), "Followed up by");
    assert_eq!(Relation::Background.reverse_str(), "background_to");
    assert_eq!(Relation::SameEvent.reverse_str(), "same_event");
    assert!("sequel".parse::<Relation>().is_err());
}

// Undo windows: a hold is an embargo until the window's end, marked as an undo window.

fn hold(seconds: u32) -> Hold {
    Hold::parse("hold_seconds", seconds).unwrap()
}

fn held_filing(n: u128, seconds: u32) -> NewDevelopment {
    NewDevelopment {
        hold: Some(hold(seconds)),
        ..filing(n, DevelopmentKind::HackReported)
    }
}

#[test]
fn a_filing_held_for_an_undo_window_is_embargoed_until_its_end() {
    let new = held_filing(1, 30);
    let mut expected = recorded(&new, PublicationStatus::Embargoed);
    if let StoryEvent::DevelopmentRecorded {
        embargo_until,
        hold: h,
        ..
    } = &mut expected
    {
        *embargo_until = Some(now() + Duration::seconds(30));
        *h = Some(hold(30));
    }
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![expected.clone()]);
    let facts = Facts::from_history(&[opened(false), expected.clone()]);
    let state = facts.development(&dev_id(1)).unwrap();
    assert_eq!(state.status, DevelopmentStatus::Embargoed);
    assert!(state.undo_window);
    // Its end is lifted once, by the scheduler, at the moment; a second lift decides nothing.
    let end = now() + Duration::seconds(30);
    let lifted = StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: true,
    };
    given(vec![opened(false), expected.clone()])
        .when(at(Role::Admin, end, lift(1, Some(end))))
        .then_expect_events(vec![lifted.clone()]);
    given(vec![opened(false), expected.clone(), lifted.clone()])
        .when(at(Role::Admin, end, lift(1, Some(end))))
        .then_expect_events(vec![]);
    given(vec![opened(false), expected.clone(), lifted])
        .when(at(Role::Editor, end, lift(1, None)))
        .then_expect_error(StoryError::DevelopmentState {
            id: dev_id(1),
            status: "published",
            action: "lifting an embargo",
        });
    // Its filer takes it back during the window: withdrawn, never published.
    given(vec![opened(false), expected])
        .when_filed_by_issuer(as_reporter(StoryCommand::WithdrawDevelopment {
            development: dev_id(1),
        }))
        .then_expect_events(vec![StoryEvent::DevelopmentRejected {
            development: dev_id(1),
            reason: Note::parse("reason", WITHDRAWN).unwrap(),
        }]);
}

#[test]
fn a_hold_is_only_for_what_would_be_published_at_once() {
    // Waiting for review, or under its own embargo: the hold changes nothing.
    let new = held_filing(1, 30);
    given(vec![opened(true)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::PendingReview)]);
    let until = now() + Duration::hours(2);
    let new = NewDevelopment {
        embargo_until: Some(until),
        ..held_filing(2, 30)
    };
    given(vec![opened(false)])
        .when(as_reporter(StoryCommand::RecordDevelopment(new.clone())))
        .then_expect_events(vec![recorded(&new, PublicationStatus::Embargoed)]);
}

#[test]
fn a_hold_is_one_second_to_ten_minutes() {
    assert!(Hold::parse("hold_seconds", 0).is_err());
    assert!(Hold::parse("hold_seconds", 601).is_err());
    assert_eq!(Hold::parse("hold_seconds", 600).unwrap().seconds(), 600);
}

#[test]
fn an_approval_held_for_an_undo_window_can_be_undone_by_an_editor_and_waits_for_review_again() {
    let new = filing(1, DevelopmentKind::HackReported);
    let filed = recorded(&new, PublicationStatus::PendingReview);
    let approve = StoryCommand::ApproveDevelopment {
        development: dev_id(1),
        hold: Some(hold(30)),
    };
    let approved = StoryEvent::DevelopmentApprovedUnderEmbargo {
        development: dev_id(1),
        until: now() + Duration::seconds(30),
        hold: Some(hold(30)),
    };
    given(vec![opened(true), filed.clone()])
        .when(as_editor(approve))
        .then_expect_events(vec![approved.clone()]);
    let undo = StoryCommand::UndoApproval {
        development: dev_id(1),
    };
    given(vec![opened(true), filed.clone(), approved.clone()])
        .when(as_reporter(undo.clone()))
        .then_expect_error(StoryError::Forbidden {
            required: "editor",
            action: "undo an approval",
        });
    let undone = StoryEvent::ApprovalUndone {
        development: dev_id(1),
    };
    given(vec![opened(true), filed.clone(), approved.clone()])
        .when(as_editor(undo.clone()))
        .then_expect_events(vec![undone.clone()]);
    let facts = Facts::from_history(&[opened(true), filed.clone(), approved.clone(), undone]);
    let state = facts.development(&dev_id(1)).unwrap();
    assert_eq!(state.status, DevelopmentStatus::PendingReview);
    assert_eq!((state.embargo_until, state.undo_window), (None, false));
    // Once the window has passed and it was published, nothing is undone.
    let lifted = StoryEvent::EmbargoLifted {
        development: dev_id(1),
        published: true,
    };
    given(vec![opened(true), filed.clone(), approved, lifted])
        .when(as_editor(undo.clone()))
        .then_expect_error(StoryError::DevelopmentState {
            id: dev_id(1),
            status: "published",
            action: "undoing an approval",
        });
    // An approval held by the filing's own embargo is no undo window: the embargo stays.
    let until = now() + Duration::hours(2);
    let filed = recorded(&embargoed(2, until), PublicationStatus::PendingReview);
    let approved = StoryEvent::DevelopmentApprovedUnderEmbargo {
        development: dev_id(2),
        until,
        hold: None,
    };
    given(vec![opened(true), filed.clone()])
        .when(as_editor(StoryCommand::ApproveDevelopment {
            development: dev_id(2),
            hold: Some(hold(30)),
        }))
        .then_expect_events(vec![approved.clone()]);
    given(vec![opened(true), filed, approved])
        .when(as_editor(StoryCommand::UndoApproval {
            development: dev_id(2),
        }))
        .then_expect_error(StoryError::DevelopmentState {
            id: dev_id(2),
            status: "not in an approval's undo window",
            action: "undoing an approval",
        });
}
