//! The embargo scheduler: lifts each embargo once its moment has come, by appending the lift
//! through the command service like any command (`StoryCommand::LiftEmbargo` naming the moment
//! it found), so that the views and the notifier stay functions of the log and never read a
//! clock to decide what readers see.
//!
//! It reads the soonest embargoes from the log's index of developments (`story_developments`,
//! changed in the same transaction as the events, so a filing is seen as soon as it is answered),
//! lifts those due, and sleeps until the next one is due — at most [`POLL`], so that embargoes
//! filed or moved through another process are seen. Its clock is the command service's, so a
//! test that moves that clock moves the scheduler's. It runs in every process that serves
//! commands (`--role all` or `command`): at start it lifts whatever came due while no process
//! ran. Several copies may race for the same embargo; the aggregate decides: a lift of a
//! development no longer under that embargo (lifted by another copy, or moved) records nothing,
//! so each embargo is lifted exactly once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use newsroom_domain::{Role, StoryCommand, StoryId};

use crate::service::{CommandError, CommandService};
use newsroom_log::developments::Embargo;
use newsroom_log::feed::StoreError;
use newsroom_log::log::EventLog;
use newsroom_web::auth::Principal;

/// How long the scheduler sleeps at most before it looks again.
pub const POLL: Duration = Duration::from_millis(500);

/// How many embargoes one read takes.
const PAGE: u32 = 100;

/// Who the scheduler's lifts are recorded as (the events' author).
pub fn scheduler_principal() -> Principal {
    Principal {
        token_id: "embargo-scheduler".to_owned(),
        name: "Embargo scheduler".to_owned(),
        role: Role::Editor,
    }
}

/// Lifts embargoes as their moments come.
#[derive(Debug, Clone)]
pub struct EmbargoScheduler {
    log: EventLog,
    service: Arc<CommandService>,
    by: Principal,
    poll: Duration,
}

impl EmbargoScheduler {
    pub fn new(log: EventLog, service: Arc<CommandService>) -> Self {
        Self {
            log,
            service,
            by: scheduler_principal(),
            poll: POLL,
        }
    }

    /// Lifts every embargo due at `now`; answers how many it lifted and when the next one is due.
    pub async fn lift_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        let mut lifted = 0;
        loop {
            let page = self.log.embargoes(PAGE).await?;
            let full = page.len() == PAGE as usize;
            let mut progressed = false;
            for embargo in page {
                if embargo.until > now {
                    return Ok((lifted, Some(embargo.until)));
                }
                match self.lift(&embargo).await {
                    Ok(true) => {
                        lifted += 1;
                        progressed = true;
                    }
                    Ok(false) => {}
                    Err(CommandError::Store(e)) if e.is_unavailable() => return Err(e),
                    Err(e) => {
                        // One embargo that cannot be lifted (its story unreadable) must not keep
                        // the others back; it is tried again at the next look.
                        tracing::warn!(
                            story = %embargo.story_id,
                            development = %embargo.development,
                            error = %e,
                            "an embargo could not be lifted"
                        );
                    }
                }
            }
            if !full || !progressed {
                return Ok((lifted, None));
            }
        }
    }

    /// Lifts one embargo; `false` if the aggregate found nothing to lift (another copy did).
    async fn lift(&self, embargo: &Embargo) -> Result<bool, CommandError> {
        let story = StoryId::from(
            uuid::Uuid::parse_str(&embargo.story_id)
                .map_err(|_| CommandError::Corrupt(format!("story id `{}`", embargo.story_id)))?,
        );
        let command = StoryCommand::LiftEmbargo {
            development: embargo.development,
            due: Some(embargo.until),
        };
        let outcome = self.service.execute(story, &self.by, command).await?;
        let recorded = !outcome.events.is_empty();
        if recorded {
            tracing::info!(
                story = %embargo.story_id,
                development = %embargo.development,
                until = %embargo.until,
                "lifted an embargo"
            );
        }
        Ok(recorded)
    }

    /// Lifts embargoes until `stop` completes: at once (what came due while no process ran),
    /// then whenever the next is due, looking again at least every [`POLL`].
    pub async fn run_until_stopped(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let now = self.service.now();
            let wait = match self.lift_due(now).await {
                Ok((_, Some(next))) => (next - self.service.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(self.poll),
                Ok((_, None)) => self.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "the embargo scheduler cannot read the log");
                    self.poll
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait + Duration::from_millis(1)) => {}
            }
        }
    }
}
