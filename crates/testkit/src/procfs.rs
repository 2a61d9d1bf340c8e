//! What `/proc` says of a process: CPU time in clock ticks (USER_HZ = 100 on Linux), resident
//! memory in bytes, and whether a process has gone quiet. Linux only; elsewhere every reading is
//! `None`.

use std::path::Path;
use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/<pid>/stat`.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// One process's `/proc/<pid>/stat`: its command name, start time and user + system ticks (all
/// its threads). A pid is the same process while its start time is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTicks {
    pub comm: String,
    pub start: u64,
    pub ticks: u64,
}

/// Reads a `/proc/<pid>/stat` file.
pub fn proc_ticks(stat_path: &Path) -> Option<ProcTicks> {
    parse_stat(&std::fs::read_to_string(stat_path).ok()?)
}

/// Parses the text of a `/proc/<pid>/stat` file.
pub fn parse_stat(stat: &str) -> Option<ProcTicks> {
    // pid (comm) state ppid … utime stime … starttime: the name may hold spaces and
    // parentheses, so split at the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| rest.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(ProcTicks {
        comm,
        start: field(19)?,
        ticks: field(11)? + field(12)?,
    })
}

/// Bytes a running process has handed to `write`-like calls so far (`wchar` of `/proc/<pid>/io`:
/// every thread, files and sockets alike, whether or not they reached a disk).
pub fn written_bytes(pid: u32) -> Option<u64> {
    figure(
        &std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?,
        "wchar:",
    )
}

/// The first number after `field` on the line of `text` (a `/proc` file) that starts with it.
fn figure(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a running process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) this process has used so far.
pub fn own_cpu_seconds() -> Option<f64> {
    stat_seconds("/proc/self/stat")
}

fn stat_seconds(path: &str) -> Option<f64> {
    proc_ticks(Path::new(path)).map(|t| t.ticks as f64 / TICKS_PER_SECOND)
}

/// A running process's resident memory (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// A figure of this process's `/proc/self/status` (`VmRSS:`, `VmHWM:`), in bytes.
pub fn own_status_bytes(field: &str) -> Option<u64> {
    status_bytes("/proc/self/status", field)
}

fn status_bytes(path: &str, field: &str) -> Option<u64> {
    parse_status_bytes(&std::fs::read_to_string(path).ok()?, field)
}

/// The figure of the line starting with `field` in the text of a `/proc/<pid>/status` file,
/// given there in kB, in bytes.
pub fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    Some(figure(status, field)? * 1024)
}

/// Starts measuring this process's peak resident memory afresh (Linux resets `VmHWM` to the
/// current RSS when `5` is written to `clear_refs`); false if it cannot.
pub fn reset_own_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What [`settle`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub waited: Duration,
    pub quiet: bool,
    /// CPU ticks (1/100 s) the process used in the last second watched.
    pub ticks: u64,
}

/// Waits until process `pid` is quiet: over a whole second it used at most 5 % of a core above
/// `floor` ticks (what it uses idle in its state, e.g. with streams open), for at most `cap`.
/// `None` when its ticks could not be read (it has exited).
pub async fn settle(pid: u32, cap: Duration, floor: u64) -> Option<Settled> {
    let started = Instant::now();
    let stat = std::path::PathBuf::from(format!("/proc/{pid}/stat"));
    let ticks = || proc_ticks(&stat).map(|t| t.ticks);
    let mut last = ticks();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = ticks();
        let used = now?.saturating_sub(last?);
        if is_quiet(used, floor) || started.elapsed() >= cap {
            return Some(Settled {
                waited: started.elapsed(),
                quiet: is_quiet(used, floor),
                ticks: used,
            });
        }
        last = now;
    }
}

/// Quiet: at most 5 ticks a second (5 % of a core) above `floor`, and a fifth of `floor` for
/// its noise.
pub fn is_quiet(used: u64, floor: u64) -> bool {
    used <= floor + floor / 5 + 5
}

#[cfg(test)]
mod tests {
    use super::*;

    // A process whose name holds a space and a parenthesis: utime 1500, stime 250,
    // starttime 98765.
    const STAT: &str = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 9045 0 0 0 1500 250 0 0 20 0 9 0 98765 1030000000 5000 18446744073709551615";

    #[test]
    fn stat_names_the_process_and_adds_user_and_system_ticks() {
        let t = parse_stat(STAT).expect("parsed");
        assert_eq!(t.comm, "tokio (rt) 1");
        assert_eq!(t.ticks, 1750);
        assert_eq!(t.start, 98765);
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses"), None);
    }

    #[test]
    fn status_figures_are_kilobytes() {
        let status = "Name:\tnewsroom\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_bytes(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(parse_status_bytes(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(parse_status_bytes(status, "VmSwap:"), None);
    }

    #[test]
    fn quiet_allows_five_ticks_and_a_fifth_over_the_floor() {
        assert!(is_quiet(5, 0));
        assert!(!is_quiet(6, 0));
        assert!(is_quiet(65, 50));
        assert!(!is_quiet(66, 50));
    }

    #[test]
    fn this_process_can_be_read_where_there_is_a_proc() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        assert!(own_cpu_seconds().is_some());
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
        let me = proc_ticks(Path::new("/proc/self/stat")).expect("own stat");
        assert!(!me.comm.is_empty());
    }
}
