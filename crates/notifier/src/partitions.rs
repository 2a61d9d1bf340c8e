//! Partitioned work: how notifier copies sharing a PostgreSQL queue split the work between them
//! without one lock every write waits for.
//!
//! The work is cut into [`PARTITIONS`] partitions. A story's events belong to the partition of
//! the story ([`story_partition`]), so one copy at a time matches them, in order; a delivery
//! belongs to the partition of its endpoint's subscriber (`notifier_partition(subscriber_id)` in
//! PostgreSQL, `deliveries.partition`), so one copy at a time claims an endpoint's deliveries, in
//! order per (endpoint, story); so do the chunks of a big fan-out (`crate::fanout`), so that the
//! copy taking a chunk sends the deliveries it writes itself. A copy owns a partition while it holds a PostgreSQL advisory
//! *session* lock on it, on a connection of its own ([`Leases`]): a copy that dies — killed,
//! its connection cut — loses its locks with its session, at once, and the others take the
//! partitions over at their next look (every [`REBALANCE`]). Each copy also holds one shared
//! lock that says it is a member; every look counts the members and aims at an even share
//! (64 / members, rounded up): a copy with more lets go of the rest, a copy with fewer takes
//! partitions nobody holds. A copy that joins thus gets its share within two looks.
//!
//! Ownership spreads the work; it is not what keeps it correct. A batch of matched events moves
//! the checkpoints of its partitions (`matcher/NN`) in its own transaction, after locking them
//! and checking they are where the matcher left them, so a partition handed over mid-batch is
//! never matched twice (the later batch finds the checkpoint moved and reads again); alerts stay
//! unique per (subscriber, event) and deliveries are leased, so a copy that thinks it still owns
//! a partition it lost can at worst send an alert again under its same `webhook-id`.
//!
//! With an embedded queue (SQLite, one process) there is one partition, which the process owns.
//!
//! Leases were chosen over a lease table with heartbeats because PostgreSQL itself ends them with
//! the session: nothing to expire, no clock to trust. A copy cut off by the network keeps its locks
//! until PostgreSQL notices the dead connection; TCP keepalives (`tcp_keepalives_*`) or
//! `idle_session_timeout` on the server bound that time. The embedded queue's single partition is
//! [`Ownership::single`].

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

/// How many partitions the work is cut into. Fixed: `notifier_partition` in the migrations
/// computes the same.
pub const PARTITIONS: u32 = 64;
/// How often a copy counts the members and takes or lets go of partitions.
pub const REBALANCE: Duration = Duration::from_millis(500);
/// The channel a matcher notifies (`pg_notify`) when it queued deliveries it did not hand to its
/// own dispatcher: every copy's dispatcher listens and claims at once, rather than at its next
/// poll.
pub const WAKE_CHANNEL: &str = "newsroom_notifier_deliveries";

/// Ticks `waiting` whenever some copy queued deliveries for others to claim, until `shutdown`;
/// a lost connection is listened on again (meanwhile the dispatchers' poll finds the work).
pub async fn listen_for_deliveries(
    pool: PgPool,
    waiting: Arc<watch::Sender<u64>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), crate::NotifyError> {
    tokio::pin!(shutdown);
    loop {
        let listening = listen(&pool, &waiting);
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            ended = listening => {
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "listening for queued deliveries failed; listening again");
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn listen(pool: &PgPool, waiting: &watch::Sender<u64>) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    loop {
        listener.recv().await?;
        waiting.send_modify(|n| *n += 1);
    }
}

/// The first key of the partitions' advisory locks (the second is the partition): "npar".
pub const PARTITION_SPACE: i32 = 0x6e70_6172;
/// The first key of the members' shared lock: "nmem".
const MEMBER_SPACE: i32 = 0x6e6d_656d;

/// The partition of a story's events. FNV-1a over the id: stable across processes and builds.
pub fn story_partition(story: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in story.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(PARTITIONS)) as u32
}

/// The name of a partition's matcher checkpoint.
pub fn checkpoint_name(partition: u32) -> String {
    format!("matcher/{partition:02}")
}

/// Which partitions this process owns right now. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ownership {
    owned: watch::Receiver<Arc<Vec<u32>>>,
    shared: bool,
}

impl Ownership {
    /// An embedded queue: one process, which does all the work (one partition).
    pub fn single() -> Self {
        let (_, owned) = watch::channel(Arc::new(vec![0]));
        Self {
            owned,
            shared: false,
        }
    }

    /// Whether the work is partitioned between copies (a shared PostgreSQL queue).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The partitions owned now, in order.
    pub fn current(&self) -> Arc<Vec<u32>> {
        self.owned.borrow().clone()
    }

    /// Resolves when what is owned changes.
    pub async fn changed(&mut self) {
        if self.owned.changed().await.is_err() {
            // Nobody changes it any more (single, or the leases stopped).
            std::future::pending::<()>().await;
        }
    }
}

/// Takes and keeps this copy's share of the partitions, through advisory session locks on a
/// connection of its own.
#[derive(Debug)]
pub struct Leases {
    pool: PgPool,
    owned: watch::Sender<Arc<Vec<u32>>>,
    every: Duration,
}

impl Leases {
    /// Leases over the database of `pool`; nothing is owned until [`Self::run_until_stopped`]
    /// takes a share.
    pub fn new(pool: PgPool, every: Duration) -> (Self, Ownership) {
        let (owned, rx) = watch::channel(Arc::new(Vec::new()));
        (
            Self { pool, owned, every },
            Ownership {
                owned: rx,
                shared: true,
            },
        )
    }

    /// Keeps a fair share of the partitions until `shutdown`, then lets go of them all. A lost
    /// connection loses every lease (nothing is owned until a new connection takes a share).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), crate::NotifyError> {
        tokio::pin!(shutdown);
        let mut pause = Duration::from_millis(100);
        loop {
            let session = self.session();
            tokio::select! {
                _ = &mut shutdown => break,
                ended = session => {
                    self.publish(Vec::new());
                    if let Err(e) = ended {
                        tracing::warn!(error = %e, retry_in = ?pause, "partition leases lost; taking a share again");
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        // The session (and so every lock) ended with the dropped future.
        self.publish(Vec::new());
        Ok(())
    }

    fn publish(&self, mut owned: Vec<u32>) {
        owned.sort_unstable();
        metrics::gauge!("newsroom_notifier_partitions_owned").set(owned.len() as f64);
        self.owned.send_if_modified(|now| {
            if **now == owned {
                return false;
            }
            *now = Arc::new(owned);
            true
        });
    }

    /// One session: joins as a member, then looks every `every` until the connection fails.
    async fn session(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock_shared($1, 0)")
            .bind(MEMBER_SPACE)
            .execute(&mut conn)
            .await?;
        let result = self.keep(&mut conn).await;
        // Ending the session lets go of every lock at once.
        let _ = conn.close().await;
        result
    }

    async fn keep(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut mine: Vec<u32> = Vec::new();
        loop {
            mine = rebalance(conn, mine).await?;
            self.publish(mine.clone());
            tokio::time::sleep(self.every).await;
        }
    }
}

/// One look: counts the members, lets go of what is beyond this copy's share, or takes free
/// partitions up to it. Returns what it owns now.
async fn rebalance(conn: &mut PgConnection, mut mine: Vec<u32>) -> Result<Vec<u32>, sqlx::Error> {
    let (members, held): (i64, Vec<i64>) = sqlx::query_as(
        "SELECT
            (SELECT count(*) FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.database = d.oid AND l.granted
               AND l.classid::int8 = $1 AND l.objid::int8 = 0 AND l.objsubid = 2),
            ARRAY(SELECT l.objid::int8 FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.database = d.oid AND l.granted
               AND l.classid::int8 = $2 AND l.objsubid = 2)
         FROM pg_database d WHERE d.datname = current_database()",
    )
    .bind(i64::from(MEMBER_SPACE))
    .bind(i64::from(PARTITION_SPACE))
    .fetch_one(&mut *conn)
    .await?;
    let members = members.max(1) as u32;
    let share = PARTITIONS.div_ceil(members) as usize;
    if mine.len() > share {
        let extra = mine.split_off(share);
        for p in extra {
            sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(PARTITION_SPACE)
                .bind(p as i32)
                .execute(&mut *conn)
                .await?;
        }
        tracing::info!(
            owned = mine.len(),
            members,
            "let go of partitions beyond this copy's share"
        );
    } else if mine.len() < share {
        let mut free: Vec<u32> = (0..PARTITIONS)
            .filter(|p| !held.contains(&i64::from(*p)))
            .collect();
        free.shuffle(&mut rand::thread_rng());
        let before = mine.len();
        for p in free {
            if mine.len() >= share {
                break;
            }
            let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
                .bind(PARTITION_SPACE)
                .bind(p as i32)
                .fetch_one(&mut *conn)
                .await?;
            if taken {
                mine.push(p);
            }
        }
        if mine.len() > before {
            tracing::info!(
                owned = mine.len(),
                taken = mine.len() - before,
                members,
                "took partitions"
            );
        }
    }
    mine.sort_unstable();
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stories_spread_over_every_partition_and_each_stays_in_one() {
        let mut counts = vec![0u32; PARTITIONS as usize];
        for _ in 0..6_400 {
            let id = uuid::Uuid::new_v4().to_string();
            let p = story_partition(&id);
            assert_eq!(p, story_partition(&id));
            counts[p as usize] += 1;
        }
        assert!(counts.iter().all(|n| *n > 40 && *n < 180), "{counts:?}");
    }
}
