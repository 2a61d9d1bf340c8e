//! Services: a fresh stream and subject prefix per case on the machine's NATS, deleted at the end.

use newsroom_log::relay::StreamSettings;
use uuid::Uuid;

use crate::common::*;

/// A JetStream stream and subject prefix of their own, deleted when this is dropped.
pub(crate) struct Stream {
    pub(crate) settings: StreamSettings,
    pub(crate) nats_url: String,
}

impl Stream {
    pub(crate) fn new(nats_url: &str) -> Self {
        let tag = Uuid::new_v4().simple().to_string();
        Self {
            settings: StreamSettings {
                stream: format!("BENCH_{tag}"),
                subject_prefix: format!("bench.{tag}.events"),
                replicas: 1,
            },
            nats_url: nats_url.to_owned(),
        }
    }

    /// Messages the stream holds.
    pub(crate) async fn messages(&self, client: &async_nats::Client) -> Res<u64> {
        let js = async_nats::jetstream::new(client.clone());
        let mut s = js.get_stream(&self.settings.stream).await?;
        Ok(s.info().await?.state.messages)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let (url, name) = (self.nats_url.clone(), self.settings.stream.clone());
        newsroom_testkit::on_own_thread(move || async move {
            let Ok(client) = async_nats::connect(&url).await else {
                eprintln!("  could not reach NATS to delete stream {name}");
                return;
            };
            let js = async_nats::jetstream::new(client);
            // A stream never created (a case that failed early) is not an error here.
            let _ = js.delete_stream(&name).await;
        });
    }
}
