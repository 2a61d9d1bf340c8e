//! The newsroom's time zone: the desk shows times and takes "when it happened" in it, and stores
//! UTC. It is read once, when the desk is built, from `NEWSROOM_TIME_ZONE` (an IANA name such as
//! `Europe/Berlin`); unset or unknown, it is UTC.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The variable that names the newsroom's time zone.
pub const TIME_ZONE_VARIABLE: &str = "NEWSROOM_TIME_ZONE";

/// The format of an `<input type="datetime-local">` value, to the minute.
const INPUT_FORMAT: &str = "%Y-%m-%dT%H:%M";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The zone named by `NEWSROOM_TIME_ZONE`, or UTC (an unknown name is logged, not fatal:
    /// the desk still works, in UTC).
    pub fn from_env() -> Self {
        match std::env::var(TIME_ZONE_VARIABLE) {
            Ok(name) if !name.trim().is_empty() => Self::parse(&name).unwrap_or_else(|| {
                tracing::warn!(
                    variable = TIME_ZONE_VARIABLE,
                    value = %name,
                    "unknown time zone; the desk uses UTC"
                );
                Self::UTC
            }),
            _ => Self::UTC,
        }
    }

    /// A zone by its IANA name (`Europe/Berlin`, `UTC`).
    pub fn parse(name: &str) -> Option<Self> {
        name.trim().parse::<Tz>().ok().map(Zone)
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The value of a `datetime-local` input showing `at` in this zone.
    pub fn input_value(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0).format(INPUT_FORMAT).to_string()
    }

    /// What a reader of the desk sees: "1 Mar 2026, 10:30 CET".
    pub fn display(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.0)
            .format("%-d %b %Y, %H:%M %Z")
            .to_string()
    }

    /// Parses a `datetime-local` value (with or without seconds) as a time in this zone.
    /// A time that a clock change skips is refused; one that it repeats is the earlier.
    pub fn parse_input(&self, raw: &str) -> Result<DateTime<Utc>, String> {
        let raw = raw.trim();
        let naive = NaiveDateTime::parse_from_str(raw, INPUT_FORMAT)
            .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f"))
            .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M"))
            .map_err(|_| {
                "must be a date and time, like 2026-03-01T09:30 (year-month-day, then hours and minutes)".to_owned()
            })?;
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
            LocalResult::None => Err(format!(
                "does not exist in {}: the clocks skip that time",
                self.name()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn local_times_are_stored_as_utc() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.parse_input("2026-03-01T10:30").unwrap(),
            utc("2026-03-01T09:30:00Z")
        );
        assert_eq!(
            berlin.parse_input("2026-07-01T10:30:15").unwrap(),
            utc("2026-07-01T08:30:15Z"),
            "summer time"
        );
        assert_eq!(
            Zone::UTC.parse_input("2026-03-01T10:30").unwrap(),
            utc("2026-03-01T10:30:00Z")
        );
    }

    #[test]
    fn inputs_show_the_local_time_and_round_trip() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let at = utc("2026-03-01T09:30:00Z");
        assert_eq!(berlin.input_value(at), "2026-03-01T10:30");
        assert_eq!(berlin.parse_input(&berlin.input_value(at)).unwrap(), at);
        assert_eq!(berlin.display(at), "1 Mar 2026, 10:30 CET");
        assert_eq!(Zone::UTC.display(at), "1 Mar 2026, 09:30 UTC");
    }

    #[test]
    fn clock_changes_are_handled() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 29 March 2026: 02:00 becomes 03:00.
        let err = berlin.parse_input("2026-03-29T02:30").unwrap_err();
        assert!(err.contains("Europe/Berlin"), "{err}");
        // 25 October 2026: 03:00 becomes 02:00 again; the first 02:30 is meant.
        assert_eq!(
            berlin.parse_input("2026-10-25T02:30").unwrap(),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn nonsense_is_refused_with_an_example() {
        let err = Zone::UTC.parse_input("yesterday").unwrap_err();
        assert!(err.contains("2026-03-01T09:30"), "{err}");
        assert!(Zone::parse("Mars/Olympus").is_none());
    }
}
