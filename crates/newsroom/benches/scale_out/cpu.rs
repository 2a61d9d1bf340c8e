//! Where the CPU went: /proc, in clock ticks (USER_HZ = 100 on Linux).

use std::collections::HashMap;

use newsroom_testkit::procfs::{proc_ticks, TICKS_PER_SECOND};

#[derive(Debug, Default)]
pub(crate) struct CpuSnapshot {
    /// pid → (command name, start time, user + system ticks).
    pub(crate) procs: HashMap<u32, (String, u64, u64)>,
    /// The machine's busy and total ticks over all CPUs.
    pub(crate) busy: u64,
    total: u64,
}

pub(crate) fn cpu_snapshot() -> CpuSnapshot {
    let mut snap = CpuSnapshot::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            if v.len() >= 8 {
                snap.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                snap.total = snap.busy + v[3] + v[4];
            }
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return snap;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A kernel worker's name changes with its work: the start time tells processes apart.
        if let Some(t) = proc_ticks(&entry.path().join("stat")) {
            snap.procs.insert(pid, (t.comm, t.start, t.ticks));
        }
    }
    snap
}

/// CPU seconds used between two snapshots, by group; and the machine's busy and total seconds.
#[derive(Debug, Default)]
pub(crate) struct CpuUse {
    pub(crate) groups: Vec<(String, f64)>,
    pub(crate) busy: f64,
    total: f64,
}

pub(crate) fn cpu_use(
    before: &CpuSnapshot,
    after: &CpuSnapshot,
    names: &[(u32, String)],
) -> CpuUse {
    let me = std::process::id();
    let mut groups: Vec<(String, f64)> = names
        .iter()
        .map(|(_, n)| (n.clone(), 0.0))
        .chain(
            ["PostgreSQL", "NATS", "bench process", "other processes"]
                .iter()
                .map(|n| (n.to_string(), 0.0)),
        )
        .collect();
    for (pid, (comm, start, ticks)) in &after.procs {
        let used = match before.procs.get(pid) {
            Some((_, s, t)) if s == start => ticks.saturating_sub(*t),
            // Started during the window.
            _ => *ticks,
        };
        if used == 0 {
            continue;
        }
        let group = if let Some((_, n)) = names.iter().find(|(p, _)| p == pid) {
            n.as_str()
        } else if *pid == me {
            "bench process"
        } else if comm == "postgres" {
            "PostgreSQL"
        } else if comm == "nats-server" {
            "NATS"
        } else {
            "other processes"
        };
        if let Some(g) = groups.iter_mut().find(|(n, _)| n == group) {
            g.1 += used as f64 / TICKS_PER_SECOND;
        }
    }
    CpuUse {
        groups,
        busy: after.busy.saturating_sub(before.busy) as f64 / TICKS_PER_SECOND,
        total: after.total.saturating_sub(before.total) as f64 / TICKS_PER_SECOND,
    }
}

impl CpuUse {
    /// CPU-seconds of the system under test: the newsroom processes, PostgreSQL and NATS.
    pub(crate) fn system(&self) -> f64 {
        self.groups
            .iter()
            .filter(|(n, _)| n != "bench process" && n != "other processes")
            .map(|(_, s)| s)
            .sum()
    }

    pub(crate) fn describe(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|(n, s)| format!("{n} {s:.1}"))
            .collect();
        let attributed: f64 = self.groups.iter().map(|(_, s)| s).sum();
        format!(
            "{}; machine busy {:.1} of {:.1} CPU-seconds ({:.1} in processes that ended during the window, or not attributed)",
            parts.join(", "),
            self.busy,
            self.total,
            (self.busy - attributed).max(0.0)
        )
    }
}
