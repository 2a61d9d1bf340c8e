//! What a rebuild's fold (`rebuild.rs`) hands the writer of the views' database (`sqlite.rs`,
//! `pg.rs`): parts of rows in order, requests to read back developments it let go of, and, at the
//! end, the position the rebuilt views reflect. The writer answers a waiting read-back before it
//! takes the next part, and counts the parts it wrote (the fold lets go of what is written).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::rows::BatchRows;
use newsroom_readmodel::model::DevelopmentView;

/// What the fold hands the writer, in order: parts of rows.
pub(crate) type Work = Box<BatchRows>;

/// A request of the fold to read back the developments recorded at these positions, from the
/// parts written so far; the writer answers it before it takes the next part.
pub(crate) type Load = (Vec<i64>, oneshot::Sender<Vec<DevelopmentView>>);

/// A rebuild's writer's side of the hand-over.
pub(crate) struct Handover {
    pub(crate) work: mpsc::Receiver<Work>,
    pub(crate) loads: mpsc::Receiver<Load>,
    /// How many parts the writer wrote.
    pub(crate) written_parts: Arc<AtomicU64>,
    /// The position the rebuilt views reflect, sent once the log was read and folded to its
    /// end; dropped (the rebuild stopped) if either failed.
    pub(crate) decision: oneshot::Receiver<i64>,
}

/// The writer's next job: a read-back first, if one is waiting.
pub(crate) async fn next_job(
    work: &mut mpsc::Receiver<Work>,
    loads: &mut mpsc::Receiver<Load>,
) -> Option<Result<Work, Load>> {
    tokio::select! {
        biased;
        Some(load) = loads.recv() => Some(Err(load)),
        rows = work.recv() => rows.map(Ok),
    }
}
