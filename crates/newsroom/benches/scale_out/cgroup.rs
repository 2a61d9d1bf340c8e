//! A cgroup v1 `cpu` group per notifier copy, limiting it to `BENCH_COPY_CORES` cores.

use uuid::Uuid;

use crate::common::*;

/// A cgroup v1 `cpu` group of its own for one process, removed when dropped (after the
/// process has ended).
pub(crate) struct CpuGroup {
    pub(crate) path: std::path::PathBuf,
}

impl CpuGroup {
    pub(crate) fn limit(pid: u32, cores: f64) -> Res<Self> {
        let path = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/newsroom-bench-{}",
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let group = Self { path };
        let quota = ((cores * 100_000.0).round() as u64).max(1000);
        for (file, value) in [
            ("cpu.cfs_period_us", "100000".to_owned()),
            ("cpu.cfs_quota_us", quota.to_string()),
            ("cgroup.procs", pid.to_string()),
        ] {
            let at = group.path.join(file);
            std::fs::write(&at, value).map_err(|e| format!("write {}: {e}", at.display()))?;
        }
        Ok(group)
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.path) {
            eprintln!("  could not remove {}: {e}", self.path.display());
        }
    }
}
