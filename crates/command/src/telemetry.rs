//! Process-wide metrics recorder. Installed once per process; every application built in the
//! process (tests build many) renders the same registry.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The Prometheus handle, installing the recorder on first use.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (by an embedding program); then ours
            // simply records nothing and renders empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
