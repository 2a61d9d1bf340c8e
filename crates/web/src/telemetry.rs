//! Process-wide metrics recorder. Installed once per process; every application built in the
//! process (tests build many) renders the same registry.
//!
//! Every metric is described here (its `# HELP`), and every distribution is a histogram with
//! fixed buckets: buckets of several scale-out processes add up in Prometheus, where summaries'
//! quantiles cannot be combined (and drop to 0 while idle).

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets of latencies, in seconds: 0.5 ms to 10 s.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of sizes (events in a batch): powers of two.
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The Prometheus handle, installing the recorder on first use.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZES))
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (by an embedding program); then ours
            // simply records nothing and renders empty.
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
                keep_up(handle.clone());
            }
            handle
        })
        .clone()
}

/// How often the recorder folds the samples its histograms gathered into their buckets.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The name of the thread that does it.
pub const UPKEEP_THREAD: &str = "metrics-upkeep";

/// A histogram keeps every sample it is given until the recorder's upkeep (or a scrape of
/// `/metrics`) folds them into its buckets: a process nobody scrapes would hold every sample
/// of its life. A thread of its own folds them every [`UPKEEP_EVERY`], so what the recorder
/// holds is bounded whether or not anyone scrapes.
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name(UPKEEP_THREAD.into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread");
    }
}

/// The help text of every metric newsroom records.
fn describe() {
    // The command side.
    describe_counter!(
        "newsroom_commands_total",
        "Commands handled, by command and outcome (ok, refused, conflict, failed)."
    );
    describe_histogram!(
        "newsroom_command_seconds",
        Unit::Seconds,
        "Time to decide and durably append a command's events, by command."
    );
    describe_histogram!(
        "newsroom_store_append_lock_wait_seconds",
        Unit::Seconds,
        "Time a command waited for the PostgreSQL log's append (order) lock, counted once per \
         command of the batch that waited."
    );
    describe_histogram!(
        "newsroom_store_batch_size",
        Unit::Count,
        "Commands appended together by the log's writer in one transaction."
    );
    describe_gauge!(
        "newsroom_feed_head_position",
        "Position of the newest event in the log, as this process last read it."
    );
    describe_counter!(
        "newsroom_connections_refused_total",
        "Connections refused because their client address had too many open."
    );
    describe_counter!(
        "newsroom_stream_messages_set_aside_total",
        "Messages of a JetStream stream that could not be decoded and were set aside, by stream."
    );
    // The projection side.
    describe_counter!(
        "newsroom_projection_events_total",
        "Events applied to the views by this process's projector."
    );
    describe_counter!(
        "newsroom_projection_batches_total",
        "Batches (transactions) in which this process's projector applied events."
    );
    describe_gauge!(
        "newsroom_projection_position",
        "Position of the last event the views hold."
    );
    describe_gauge!(
        "newsroom_live_streams",
        "Readers' live streams open on this process."
    );
    describe_counter!(
        "newsroom_live_streams_cut_total",
        "Readers' live streams closed because they fell behind (the client resumes)."
    );
    // The notifier.
    describe_counter!(
        "newsroom_alerts_queued_total",
        "Alerts queued for subscribers by the matcher."
    );
    describe_counter!(
        "newsroom_matcher_batches_total",
        "Batches of events the matcher read from the feed and matched, each in one transaction."
    );
    describe_counter!(
        "newsroom_alert_parts_total",
        "Transactions an embedded matcher queued a big fan-out's alerts in, each sent as it committed."
    );
    describe_counter!(
        "newsroom_deliveries_total",
        "Delivery attempts, by endpoint kind and outcome."
    );
    describe_gauge!(
        "newsroom_notifier_partitions_owned",
        "Notifier partitions this copy holds the lease of (PostgreSQL mode)."
    );
    describe_counter!(
        "newsroom_alerts_pruned_total",
        "Alerts removed after the retention period."
    );
    describe_gauge!(
        "newsroom_alert_streams",
        "Subscribers' alert streams open on this process."
    );
    describe_counter!(
        "newsroom_alert_stream_reads_total",
        "Reads of the alert queue made for subscribers' alert streams."
    );
    describe_counter!(
        "newsroom_alert_stream_checks_total",
        "Checks of open alert streams' tokens and subscribers."
    );
    describe_counter!(
        "newsroom_alert_streams_revoked_total",
        "Alert streams closed because their token was revoked or their subscriber forgotten."
    );
    describe_counter!(
        "newsroom_alert_streams_cut_total",
        "Alert streams closed because they fell behind (the client resumes)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread that folds histogram samples runs once the recorder is installed, whether
    /// or not anyone scrapes `/metrics`.
    #[test]
    fn the_recorder_is_kept_up_without_scrapes() {
        let _ = metrics_handle();
        let threads = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .expect("this process's threads")
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        };
        // A new thread takes its name once it runs.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut names = threads();
        while !names.iter().any(|n| n == UPKEEP_THREAD) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            names = threads();
        }
        assert!(
            names.iter().any(|n| n == UPKEEP_THREAD),
            "no {UPKEEP_THREAD} thread among {names:?}"
        );
    }
}
