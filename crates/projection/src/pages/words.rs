//! The words readers see for the model's values (kinds, sources, evidence, urgency, stances,
//! statuses), and the CSS classes that go with them.

use newsroom_domain::{DevelopmentKind, Evidence, SourceKind, Stance, Urgency};

use newsroom_readmodel::model::{ClaimStatus, StoryStatus};

/// A development kind in words: "Denial issued".
pub fn kind_label(kind: DevelopmentKind) -> &'static str {
    match kind {
        DevelopmentKind::HackReported => "Hack reported",
        DevelopmentKind::AttributionClaimed => "Attribution claimed",
        DevelopmentKind::DenialIssued => "Denial issued",
        DevelopmentKind::ChargesFiled => "Charges filed",
        DevelopmentKind::StatementIssued => "Statement issued",
        DevelopmentKind::ReportPublished => "Report published",
        DevelopmentKind::CommentRequested => "Comment requested",
        DevelopmentKind::InvestigationOpened => "Investigation opened",
        DevelopmentKind::ArrestMade => "Arrest made",
        DevelopmentKind::RulingIssued => "Ruling issued",
        DevelopmentKind::Update => "Update",
    }
}

/// A source kind in words: "Official statement".
pub fn source_kind_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::OfficialStatement => "Official statement",
        SourceKind::Document => "Document",
        SourceKind::Report => "Report",
        SourceKind::Anonymous => "Anonymous source",
        SourceKind::OwnReporting => "Our own reporting",
        SourceKind::SocialMedia => "Social media",
    }
}

/// How well a development is backed, in words.
pub fn evidence_label(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::NoneProvided => "No evidence provided",
        Evidence::Circumstantial => "Circumstantial evidence",
        Evidence::Documentary => "Documentary evidence",
        Evidence::Confirmed => "Confirmed",
    }
}

/// How urgent a development is, in words.
pub fn urgency_label(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "Routine",
        Urgency::Priority => "Priority",
        Urgency::Flash => "Flash",
    }
}

/// How a response relates to what it answers: "denies".
pub fn stance_label(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "supports",
        Stance::Disputes => "disputes",
        Stance::Denies => "denies",
    }
}

/// Where a claim stands: "denied".
pub fn claim_status_label(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Unverified => "unverified",
        ClaimStatus::Supported => "supported",
        ClaimStatus::Denied => "denied",
        ClaimStatus::Contested => "contested",
        ClaimStatus::Retracted => "retracted",
    }
}

pub(super) fn story_status_label(status: StoryStatus) -> &'static str {
    match status {
        StoryStatus::Open => "Open",
        StoryStatus::Closed => "Closed",
    }
}

pub(super) fn story_status_class(status: StoryStatus) -> &'static str {
    match status {
        StoryStatus::Open => "status-open",
        StoryStatus::Closed => "status-closed",
    }
}

pub(super) fn claim_status_class(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Unverified => "claim-unverified",
        ClaimStatus::Supported => "claim-supported",
        ClaimStatus::Denied => "claim-denied",
        ClaimStatus::Contested => "claim-contested",
        ClaimStatus::Retracted => "claim-retracted",
    }
}

pub(super) fn stance_class(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "stance-supports",
        Stance::Disputes => "stance-disputes",
        Stance::Denies => "stance-denies",
    }
}

pub(super) fn urgency_class(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "urgency-routine",
        Urgency::Priority => "urgency-priority",
        Urgency::Flash => "urgency-flash",
    }
}

pub(super) fn evidence_class(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::NoneProvided => "evidence-none",
        Evidence::Circumstantial => "evidence-circumstantial",
        Evidence::Documentary => "evidence-documentary",
        Evidence::Confirmed => "evidence-confirmed",
    }
}

pub(super) fn field_label(field: &str) -> &str {
    match field {
        "headline" => "Headline",
        "body" => "Text",
        "occurred_at" => "When it happened",
        "actors" => "Named",
        "source" => "Source",
        "evidence" => "Evidence",
        other => other,
    }
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

pub(super) fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Sign-in required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable request",
        429 => "Too many requests",
        500 => "Something went wrong",
        502 | 504 => "Upstream trouble",
        503 => "Temporarily unavailable",
        _ if (400..500).contains(&status) => "Request error",
        _ => "Something went wrong",
    }
}
