//! Logs filled in-process through the command service, and published by the relay (sections 2b,
//! 2c and 3).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_command::{CommandService, ServiceOptions};
use newsroom_domain::{
    Actor, Body, DevelopmentId, DevelopmentKind, Evidence, Headline, NewDevelopment, Role, Slug,
    Source, SourceKind, SourceName, StoryCommand, StoryId, Summary, Urgency,
};
use newsroom_log::relay::Relay;
use newsroom_log::{EventLog, PgStore};
use newsroom_testkit::BoxError;
use newsroom_web::Principal;
use uuid::Uuid;

use crate::common::*;

use crate::processes::bounded;
use crate::services::Stream;
use crate::{EVENTS_PER_STORY, FILLERS};

/// Fills a fresh PostgreSQL log with `events` events through the command service, in this
/// process: `events / 100` stories, each opened and then given developments by 64 tasks.
pub(crate) async fn fill_log(url: &str, events: usize) -> Res<(EventLog, Duration)> {
    let store = PgStore::connect(url).await?;
    let log: EventLog = store.into();
    let service = Arc::new(CommandService::new(log.clone(), ServiceOptions::default()));
    let by = Principal {
        token_id: Uuid::now_v7().to_string(),
        name: "Bench Reporter".into(),
        role: Role::Reporter,
    };
    let started = Instant::now();
    let stories = (events / EVENTS_PER_STORY).max(1);
    let ids: Vec<StoryId> = (0..stories).map(|_| StoryId::new()).collect();
    let opened = {
        let (service, by) = (service.clone(), by.clone());
        bounded(ids.clone(), FILLERS, move |id| {
            let (service, by) = (service.clone(), by.clone());
            async move {
                let slug = format!("fill-{}", &Uuid::new_v4().simple().to_string()[..12]);
                service
                    .execute(id, &by, open_story_command(id, &slug))
                    .await?;
                Ok(())
            }
        })
        .await?
    };
    let developments = events - opened.len();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let template = Arc::new(template());
    let tasks: Vec<_> = (0..FILLERS)
        .map(|_| {
            let (service, by, ids, next, template) = (
                service.clone(),
                by.clone(),
                ids.clone(),
                next.clone(),
                template.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= developments {
                        return Ok::<_, BoxError>(());
                    }
                    let mut new = (*template).clone();
                    new.id = DevelopmentId::from(Uuid::new_v4());
                    service
                        .execute(
                            ids[i % ids.len()],
                            &by,
                            StoryCommand::RecordDevelopment(new),
                        )
                        .await?;
                    if (i + 1) % 20_000 == 0 {
                        eprintln!("    {} developments filed", i + 1);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let head = log.current_head().await?;
    if head as usize != events {
        return Err(format!("the log holds {head} events, not {events}").into());
    }
    Ok((log, started.elapsed()))
}

fn template() -> NewDevelopment {
    NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: DevelopmentId::from(Uuid::new_v4()),
        kind: DevelopmentKind::StatementIssued,
        headline: Headline::parse("headline", "Campaign A says its email was breached")
            .expect("valid headline"),
        body: Body::parse(
            "body",
            "The campaign said attackers had access for three weeks.",
        )
        .expect("valid body"),
        occurred_at: None,
        actors: Actor::parse_list(
            "actors",
            &["Campaign A".to_owned(), "Fancy Bear".to_owned()],
        )
        .expect("valid actors"),
        source: Some(Source {
            name: SourceName::parse("source.name", "Campaign spokesperson").expect("valid source"),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::NoneProvided,
        urgency: Urgency::Priority,
        responds_to: None,
        hold: None,
    }
}

fn open_story_command(id: StoryId, slug: &str) -> StoryCommand {
    StoryCommand::OpenStory {
        id,
        slug: Slug::parse("slug", slug).expect("valid slug"),
        headline: Headline::parse("headline", "Campaign reports a hack").expect("valid headline"),
        summary: Summary::parse("summary", "A campaign says its email was breached.")
            .expect("valid summary"),
        tags: vec![],
        review_required: false,
    }
}

/// Runs `Relay` over `log` into `stream` until it has published up to `head`.
pub(crate) async fn relay_all(
    log: &EventLog,
    client: &async_nats::Client,
    stream: &Stream,
    head: i64,
) -> Res<(Duration, u64, u64)> {
    let relay = Relay::new(log.clone(), client.clone(), stream.settings.clone());
    let status = relay.status();
    let mut positions = relay.positions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(relay.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    // Gives up after 60 s without progress, saying what the relay last reported.
    let mut reached = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), positions.changed()).await {
            Ok(Ok(())) if *positions.borrow_and_update() >= head => {
                reached = true;
                break;
            }
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let took = started.elapsed();
    let _ = stop.send(());
    let published = task.await?;
    if reached {
        Ok((took, published.events, published.duplicates))
    } else {
        Err(format!(
            "the relay did not reach position {head}: published {} events, position {}, last error {:?}",
            published.events,
            status.published(),
            status.error()
        )
        .into())
    }
}
