//! The group commit both stores run, written once: appends queue for the store's one writer,
//! which gathers whatever is queued (up to [`MAX_BATCH`] appends), has the store write them as one
//! transaction ([`WriteBatch`], each append all-or-nothing), moves the head to the highest
//! position written, records the batch's size (`newsroom_store_batch_size`) and answers each
//! append.
//!
//! Each store keeps its own way of running it: SQLite's writer is a thread of its own owning the
//! write connection, which drives [`run`] with `futures_executor::block_on` (waiting for appends
//! parks the thread, as `blocking_recv` would; a batch is written on that thread, never handed
//! to another); PostgreSQL's is a task on the runtime. What an append costs in the transaction,
//! and how a store tells a refusal from a failure, is the store's (`sqlite.rs`, `pg.rs`).

use cqrs_es::persist::SerializedEvent;
use newsroom_domain::DevelopmentChange;
use tokio::sync::{mpsc, oneshot, watch};

use crate::feed::{Position, SnapshotUpdate, StoreError, MAX_BATCH};

/// What an append is answered: the position given to each of its events, or why it wrote
/// nothing.
pub(crate) type Written = Result<Vec<Position>, StoreError>;

/// One story's events (and maybe its new snapshot), on their way to the writer.
pub(crate) struct Append {
    pub(crate) events: Vec<SerializedEvent>,
    pub(crate) snapshot: Option<SnapshotUpdate>,
    /// How the events change the index of developments, derived before they reach the writer.
    pub(crate) developments: Vec<DevelopmentChange>,
    pub(crate) reply: oneshot::Sender<Written>,
}

/// The queue of appends to a store's writer.
pub(crate) fn queue() -> (mpsc::Sender<Append>, mpsc::Receiver<Append>) {
    mpsc::channel(4 * MAX_BATCH)
}

/// Hands one story's events to the writer behind `writer` and waits for its answer.
pub(crate) async fn append(
    writer: &mpsc::Sender<Append>,
    events: Vec<SerializedEvent>,
    snapshot: Option<SnapshotUpdate>,
) -> Written {
    if events.is_empty() {
        return Ok(vec![]);
    }
    // Decoded here, on the caller's task, not by the writer every commit waits for.
    let developments = crate::developments::changes_of(&events)?;
    let (reply, answer) = oneshot::channel();
    writer
        .send(Append {
            events,
            snapshot,
            developments,
            reply,
        })
        .await
        .map_err(|_| StoreError::WriterGone)?;
    answer.await.map_err(|_| StoreError::WriterGone)?
}

/// How a store writes a batch of appends.
pub(crate) trait WriteBatch {
    /// Writes every append of `batch` in one transaction, each all-or-nothing: one answer per
    /// append, in the batch's order.
    async fn write_batch(&mut self, batch: &[Append]) -> Vec<Written>;
}

/// The writer: until every handle to the queue is gone, gathers the queued appends, writes
/// them through `store`, moves `head` and answers them.
pub(crate) async fn run(
    mut store: impl WriteBatch,
    mut queue: mpsc::Receiver<Append>,
    head: watch::Sender<Position>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let results = store.write_batch(&batch).await;
        if let Some(last) = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|p| p.last().copied()))
            .max()
        {
            head.send_replace(last);
        }
        metrics::histogram!("newsroom_store_batch_size").record(batch.len() as f64);
        for (append, result) in batch.drain(..).zip(results) {
            // A command that gave up waiting is not an error of the store.
            let _ = append.reply.send(result);
        }
    }
    tracing::debug!("event store writer stopped");
}
