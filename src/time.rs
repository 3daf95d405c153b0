//! Trace time: nanoseconds since the Unix epoch, taken from packet
//! timestamps and never from the wall clock, so that replaying a capture
//! always yields the same flows and timeouts.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A packet timestamp in nanoseconds since 1970-01-01T00:00:00Z.
///
/// `i64` nanoseconds cover the years 1678 to 2262, which includes every
/// timestamp a pcap (32-bit unsigned seconds, up to 2106) can hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and nanoseconds, saturating at
    /// the ends of the representable range.
    pub fn from_parts(secs: i64, nanos: i64) -> Self {
        Self(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            SystemTime::UNIX_EPOCH + magnitude
        } else {
            SystemTime::UNIX_EPOCH - magnitude
        }
    }
}

/// RFC 3339 in UTC with nanoseconds, e.g. `2014-12-09T17:16:09.924505488Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            // humantime formats only times after the epoch; a capture with a
            // negative timestamp is damaged, so show the raw value.
            return write!(f, "{}ns-before-epoch", self.0.unsigned_abs());
        }
        write!(f, "{}", humantime::format_rfc3339_nanos(self.to_system_time()))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_nanoseconds() {
        assert_eq!(
            Timestamp::from_parts(1_418_145_369, 924_505_488).to_string(),
            "2014-12-09T17:16:09.924505488Z"
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        // 2106-02-07, the last second a classic pcap can hold.
        assert_eq!(
            Timestamp::from_parts(u32::MAX as i64, 0).to_string(),
            "2106-02-07T06:28:15.000000000Z"
        );
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_parts(10, 0);
        let b = Timestamp::from_parts(12, 5);
        assert_eq!(b.since(a), Duration::new(2, 5));
        assert_eq!(a.since(b), Duration::ZERO);
    }
}
