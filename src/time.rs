//! Trace time: nanoseconds since the Unix epoch, taken from packet
//! timestamps and never from the wall clock, so that replaying a capture
//! always yields the same flows and timeouts.

use std::fmt;
use std::time::Duration;

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

    /// The UTC date, `YYYY-MM-DD`.
    pub fn date(self) -> String {
        String::from_utf8_lossy(&self.rfc3339()[..10]).into_owned()
    }

    /// The wall clock, for dating data files (never for packets).
    pub fn wall_clock() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        Timestamp(since.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// RFC 3339 in UTC with nanoseconds, e.g.
    /// `2014-12-09T17:16:09.924505488Z`, as 30 ASCII bytes.
    pub fn rfc3339(self) -> [u8; 30] {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let tod = secs.rem_euclid(86_400) as u32;
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        // i64 nanoseconds span the years 1677 to 2262: always four digits.
        put(0, 4, year as u32);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, tod / 3600);
        put(14, 2, tod / 60 % 60);
        put(17, 2, tod % 60);
        put(20, 9, nanos);
        out
    }
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid for the whole proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 in UTC with nanoseconds, e.g. `2014-12-09T17:16:09.924505488Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // rfc3339() writes ASCII digits and punctuation only.
        f.write_str(std::str::from_utf8(&self.rfc3339()).unwrap_or_default())
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
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            Timestamp::from_parts(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(Timestamp(i64::MAX).to_string(), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(Timestamp::from_parts(1_418_145_369, 0).date(), "2014-12-09");
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
