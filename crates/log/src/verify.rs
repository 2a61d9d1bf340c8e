//! Verifying the whole log: the database's own check of its file, then every story's hash chain
//! ([`crate::chain`]), walked page by page through the global feed.
//!
//! `newsroom verify` runs [`verify_log`]: first the database's check of its own storage
//! (`EventLog::integrity_check`: SQLite's `PRAGMA integrity_check`; nothing on PostgreSQL), then the
//! chains. It reports rows changed or removed, and rows that do not decode, by position
//! (`read_feed_rows` hands them back as `VerifyRow::Unreadable` instead of failing the page), and
//! carries on past them.

use serde::Serialize;

use crate::chain::{verify_rows, Finding, VerifyRow};
use crate::feed::StoreError;
use crate::log::EventLog;

/// What walking the whole log found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// What the database's own check of its file found (empty: sound); `None` where the
    /// database has no such check (PostgreSQL).
    pub integrity: Option<Vec<String>>,
    /// Why the walk stopped before the end of the log, if it did (a page of the log that the
    /// database cannot read): what came before it was checked.
    pub stopped: Option<String>,
    /// Rows read, decoded or not.
    pub events: u64,
    pub stories: usize,
    pub findings: Vec<Finding>,
}

/// Checks the database's storage first (a damaged page anywhere, the snapshots' included, is
/// reported even where no event shows it), then walks the whole log and checks every story's
/// chain; a row that does not decode is a finding at its position, and the walk goes on.
pub async fn verify_log(log: &EventLog) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        integrity: log.integrity_check().await?,
        ..VerifyReport::default()
    };
    let mut stories: std::collections::BTreeMap<String, Vec<VerifyRow>> = Default::default();
    let mut after = 0;
    let damaged = report.integrity.as_ref().is_some_and(|d| !d.is_empty());
    loop {
        let page = match log.read_feed_rows(after, 10_000).await {
            Ok(page) => page,
            // In a file found damaged, a page of events may be unreadable: say where the walk
            // stopped and check what was read. (A database that cannot be reached fails.)
            Err(e) if damaged => {
                report.stopped = Some(format!("after position {after}: {e}"));
                break;
            }
            Err(e) => return Err(e),
        };
        let Some(last) = page.last() else { break };
        after = last.key().0;
        report.events += page.len() as u64;
        for row in page {
            stories.entry(row.key().1.to_owned()).or_default().push(row);
        }
    }
    report.stories = stories.len();
    for rows in stories.values_mut() {
        rows.sort_by_key(|r| r.key().2);
        report.findings.extend(verify_rows(rows));
    }
    report.findings.sort_by_key(|f| f.position);
    Ok(report)
}

impl VerifyReport {
    /// Whether anything was found wrong.
    pub fn is_sound(&self) -> bool {
        self.findings.is_empty()
            && self.stopped.is_none()
            && self.integrity.as_ref().is_none_or(Vec::is_empty)
    }
}
