//! A CronJob's schedule: standard cron (five fields, or `@yearly`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`) in `spec.timeZone` (default UTC, upstream: the controller
//! manager's local zone, which is UTC in a cluster), and the times it fires.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;

/// Upstream stops counting missed start times here and asks for `startingDeadlineSeconds`.
pub const TOO_MANY_MISSED: usize = 100;

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

/// Why a schedule or time zone was refused (upstream: the `UnparseableSchedule` and
/// `UnknownTimeZone` events).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Not standard cron.
    #[error("unparseable schedule {schedule:?}: {reason}")]
    Unparseable {
        /// The schedule.
        schedule: String,
        /// What the parser said.
        reason: String,
    },
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Berlin")]
    UnknownTimeZone(String),
}

fn to_chrono(t: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(
        t.as_second(),
        u32::try_from(t.subsec_nanosecond()).unwrap_or(0),
    )
    .single()
    .unwrap_or_default()
}

fn to_jiff<Z: TimeZone>(t: &DateTime<Z>) -> Timestamp {
    Timestamp::new(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Schedule {
    /// Parses `schedule` in `zone` (UTC when `None`).
    ///
    /// # Errors
    /// A schedule that is not five-field cron or a macro, or an unknown zone.
    pub fn parse(schedule: &str, zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let zone = match zone {
            None => Tz::UTC,
            Some(name) => {
                Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimeZone(name.to_owned()))?
            }
        };
        let macro_ = match schedule.trim() {
            "@midnight" => "@daily",
            other => other,
        };
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(macro_)
            .map_err(|e| ScheduleError::Unparseable {
                schedule: schedule.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Schedule { cron, zone })
    }

    /// The first time the schedule fires strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = to_chrono(after).with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| to_jiff(&t))
    }

    /// The most recent time the schedule fired in `(earliest, now]`, and how many times it
    /// fired there (counting stops past [`TOO_MANY_MISSED`]), as upstream's
    /// `mostRecentScheduleTime`.
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> (Option<Timestamp>, usize) {
        let mut last = None;
        let mut missed = 0;
        let mut t = earliest;
        while let Some(next) = self.next_after(t) {
            if next > now {
                break;
            }
            last = Some(next);
            missed += 1;
            if missed > TOO_MANY_MISSED {
                // Jump to the end: only the latest time matters from here on.
                if let Ok(latest) = self
                    .cron
                    .find_previous_occurrence(&to_chrono(now).with_timezone(&self.zone), true)
                {
                    last = Some(to_jiff(&latest));
                }
                break;
            }
            t = next;
        }
        (last, missed)
    }

    /// `t` as the scheduled-timestamp annotation writes it (RFC 3339 in the schedule's zone).
    pub fn format(&self, t: Timestamp) -> String {
        to_chrono(t).with_timezone(&self.zone).to_rfc3339()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn macros_fields_and_time_zones() {
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            hourly.next_after(at("2026-01-01T10:15:00Z")),
            Some(at("2026-01-01T11:00:00Z"))
        );
        let berlin = Schedule::parse("30 9 * * 1-5", Some("Europe/Berlin")).unwrap();
        // 2026-01-02 is a Friday; 09:30 in Berlin (winter) is 08:30 UTC.
        assert_eq!(
            berlin.next_after(at("2026-01-02T00:00:00Z")),
            Some(at("2026-01-02T08:30:00Z"))
        );
        assert_eq!(
            berlin.next_after(at("2026-01-02T09:00:00Z")),
            Some(at("2026-01-05T08:30:00Z"))
        );
        assert!(
            Schedule::parse("0 0 * * * *", None).is_err(),
            "six fields are not standard cron"
        );
        assert!(Schedule::parse("61 * * * *", None).is_err());
        let err = Schedule::parse("@daily", Some("Mars/Olympus"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn most_recent_counts_missed_times() {
        let every5 = Schedule::parse("*/5 * * * *", None).unwrap();
        let (last, missed) =
            every5.most_recent(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:17:00Z"));
        assert_eq!((last, missed), (Some(at("2026-01-01T10:15:00Z")), 3));
        assert_eq!(
            every5.most_recent(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:04:00Z")),
            (None, 0)
        );
        let (last, missed) =
            every5.most_recent(at("2026-01-01T00:00:00Z"), at("2026-01-03T00:01:00Z"));
        assert_eq!(last, Some(at("2026-01-03T00:00:00Z")));
        assert!(missed > TOO_MANY_MISSED);
    }
}
