//! The figures and lines of a bench's Markdown report: numbers with thousands separators,
//! latencies in µs or ms, percentiles of histograms and of plain samples, the verdict on a
//! target, table heads and rows, and what the report says of the machine (CPUs, load average,
//! the commit the bench was built from).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What a cell shows when there is no figure.
pub const DASH: &str = "–";

// ---------------------------------------------------------------------------------------------
// Numbers

/// `v` rounded, with `,` between thousands: `1,234,568`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds: `850 µs`, `1.25 ms`, `12.5 ms`.
pub fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else if v >= 1000 {
        format!("{:.2} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

/// A duration as [`us`] writes it.
pub fn ms(d: Duration) -> String {
    us(d.as_micros() as u64)
}

/// Seconds with two decimals: `1.50 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Whether a target was met, as the report's tables say it.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histograms

/// Microseconds, 1 µs to 10 min, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Nanoseconds, 1 ns to 100 s, 3 significant figures.
pub fn histogram_ns() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` in a microsecond histogram (at least 1 µs; past the bounds, the highest value).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// The value at quantile `q`, or `None` when nothing was recorded.
pub fn quantile(h: &Histogram<u64>, q: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q))
}

/// The value at quantile `q` as [`us`] writes it, or a dash when nothing was recorded.
pub fn quantile_us(h: &Histogram<u64>, q: f64) -> String {
    quantile(h, q).map_or_else(|| DASH.into(), us)
}

/// p50, p99 and max, or dashes when nothing was recorded.
pub fn quantiles(h: &Histogram<u64>) -> (String, String, String) {
    if h.is_empty() {
        return (DASH.into(), DASH.into(), DASH.into());
    }
    (
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.max()),
    )
}

/// `num ÷ den` of two figures that may be missing; `None` when one is, or `den` is 0.
pub fn ratio(num: Option<u64>, den: Option<u64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Plain samples

/// Nearest-rank percentile of (unsorted) signed values; NaN when there are none.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The mean; 0 when there are no values.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The median (the upper one of an even count), or `None` when there are none.
pub fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied()
}

// ---------------------------------------------------------------------------------------------
// Tables

/// A table's head and separator line, each ending in a newline: `| a | b |\n| --- | --- |\n`.
pub fn table_head(columns: &[&str]) -> String {
    let mut out = table_row(columns);
    out.push('\n');
    out.push_str(&table_row(&vec!["---"; columns.len()]));
    out.push('\n');
    out
}

/// One row: `| a | b |`, without a newline.
pub fn table_row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = String::from("|");
    for c in cells {
        out.push(' ');
        out.push_str(c.as_ref());
        out.push_str(" |");
    }
    out
}

/// A ratio cell: two decimals, or a dash.
pub fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| DASH.into(), |x| format!("{x:.2}"))
}

/// A target's cell: [`verdict`], or a dash where the row has no target.
pub fn met_cell(met: Option<bool>) -> &'static str {
    met.map_or(DASH, verdict)
}

/// The report's closing lines: each note as a bullet, then whether the run stopped early.
pub fn closing<E: std::fmt::Display>(notes: &[String], outcome: &Result<(), E>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for n in notes {
        writeln!(out, "- {n}").expect("writing to a String");
    }
    if let Err(e) = outcome {
        writeln!(out, "\n**The run stopped early:** {e}").expect("writing to a String");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The machine and the build

/// The CPUs this process may use (0 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The machine's 1-minute load average (`/proc/loadavg`), or `n/a`: other work on the machine
/// shows here and skews every figure.
pub fn load_average() -> String {
    read_loadavg(|l| l.split_whitespace().next().map(str::to_owned))
}

/// The 1-, 5- and 15-minute load averages, space-separated, or `n/a`.
pub fn load_averages() -> String {
    read_loadavg(|l| Some(l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")))
}

fn read_loadavg(pick: impl FnOnce(&str) -> Option<String>) -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| pick(&l))
        .unwrap_or_else(|| "n/a".to_owned())
}

/// When a bench started, and the machine's 1-minute load average then.
#[derive(Debug, Clone)]
pub struct Started {
    pub at: Instant,
    pub load: String,
}

impl Started {
    pub fn now() -> Self {
        Self {
            at: Instant::now(),
            load: load_average(),
        }
    }

    /// Seconds since the start.
    pub fn secs(&self) -> f64 {
        self.at.elapsed().as_secs_f64()
    }

    /// The report's words on the run as a whole, the load average read now for its end:
    /// `total 95 s; 1-minute load average 0.52 at the start, 1.10 at the end`.
    pub fn summary(&self) -> String {
        format!(
            "total {:.0} s; 1-minute load average {} at the start, {} at the end",
            self.secs(),
            self.load,
            load_average()
        )
    }
}

/// The commit the bench was built from (`git rev-parse --short HEAD`), or "unknown".
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_rounds_and_groups_by_three() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(100_000.0), "100,000");
    }

    #[test]
    fn microseconds_switch_to_milliseconds_at_one_and_ten() {
        assert_eq!(us(999), "999 µs");
        assert_eq!(us(1000), "1.00 ms");
        assert_eq!(us(9_999), "10.00 ms");
        assert_eq!(us(10_000), "10.0 ms");
        assert_eq!(us(123_456), "123.5 ms");
        assert_eq!(ms(Duration::from_micros(1_500)), "1.50 ms");
        assert_eq!(secs(Duration::from_millis(1_505)), "1.50 s");
    }

    #[test]
    fn an_empty_histogram_gives_dashes_not_zeroes() {
        let h = histogram();
        assert_eq!(quantile(&h, 0.5), None);
        assert_eq!(quantile_us(&h, 0.99), DASH);
        assert_eq!(quantiles(&h), (DASH.into(), DASH.into(), DASH.into()));
    }

    #[test]
    fn histogram_quantiles_are_in_microseconds_and_at_least_one() {
        let mut h = histogram();
        record(&mut h, Duration::from_nanos(10));
        for ms in 1..=100 {
            record(&mut h, Duration::from_millis(ms));
        }
        assert_eq!(h.min(), 1);
        let (p50, p99, max) = quantiles(&h);
        assert_eq!((p50.as_str(), p99.as_str()), ("50.0 ms", "99.0 ms"));
        // Three significant figures: 100 ms is kept as 100.0xx ms.
        assert!(max.starts_with("100."), "{max}");
        assert_eq!(quantile(&h, 0.0), Some(1));
    }

    #[test]
    fn a_ratio_needs_both_figures_and_a_divisor() {
        assert_eq!(ratio(Some(3), Some(2)), Some(1.5));
        assert_eq!(ratio(Some(3), Some(0)), None);
        assert_eq!(ratio(None, Some(2)), None);
        assert_eq!(ratio(Some(3), None), None);
    }

    #[test]
    fn percentile_is_nearest_rank_of_the_sorted_values() {
        let v = [4.0, -1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.75), 3.0);
        assert_eq!(percentile(&v, 0.99), 4.0);
        assert_eq!(percentile(&v, 0.0), -1.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn mean_and_median_of_nothing_are_defined() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert_eq!(median(&[]), None);
        let d = Duration::from_millis;
        assert_eq!(median(&[d(3), d(1), d(2)]), Some(d(2)));
        assert_eq!(median(&[d(4), d(1), d(3), d(2)]), Some(d(3)));
    }

    #[test]
    fn the_summary_gives_whole_seconds_and_both_load_averages() {
        let started = Started {
            at: Instant::now() - Duration::from_millis(95_400),
            load: "0.52".into(),
        };
        let summary = started.summary();
        assert!(
            summary.starts_with("total 95 s; 1-minute load average 0.52 at the start, "),
            "{summary}"
        );
        assert!(summary.ends_with(" at the end"), "{summary}");
    }

    #[test]
    fn the_closing_lists_the_notes_and_says_why_the_run_stopped() {
        let notes = vec!["one".to_owned(), "two".to_owned()];
        assert_eq!(closing(&notes, &Ok::<(), String>(())), "- one\n- two\n");
        assert_eq!(
            closing(&[], &Err::<(), _>("the server died")),
            "\n**The run stopped early:** the server died\n"
        );
    }

    #[test]
    fn tables_are_markdown() {
        assert_eq!(
            table_head(&["case", "result"]),
            "| case | result |\n| --- | --- |\n"
        );
        assert_eq!(table_row(&["a", "b", ""]), "| a | b |  |");
        assert_eq!(ratio_cell(Some(1.234)), "1.23");
        assert_eq!(ratio_cell(None), DASH);
        assert_eq!(met_cell(Some(true)), "met");
        assert_eq!(met_cell(Some(false)), "**missed**");
        assert_eq!(met_cell(None), DASH);
        assert_eq!(verdict(false), "**missed**");
    }
}
