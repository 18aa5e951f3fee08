//! Time as a plain value. The core never reads a clock: hosts pass `Millis` in.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC), as given by the host.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating.
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `2025-01-24T10:30:00.000Z`
    pub fn to_iso8601(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }

    /// `2025-01-24T10-30-00-000Z`: the ISO form made safe for file names.
    pub fn to_file_stamp(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}-{ms:03}Z")
    }

    fn civil(self) -> (i64, u32, u32, u64, u64, u64, u64) {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let (h, mi, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
        (y, mo, d, h, mi, s, ms)
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the ISO-8601 form [`Millis::to_iso8601`] writes (`2025-01-24T10:30:00.123Z`;
/// the fraction is optional).
pub fn parse_iso8601(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !s.ends_with('Z')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let frac = &s[19..s.len() - 1];
    let ms = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(digits)
            if (1..=9).contains(&digits.len()) && digits.bytes().all(|c| c.is_ascii_digit()) =>
        {
            format!("{digits:0<3}")[..3].parse::<u64>().ok()?
        }
        _ => return None,
    };
    let days = u64::try_from(days_from_civil(y as i64, mo as u32, d as u32)).ok()?;
    Some(Millis(
        (days * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms,
    ))
}

/// Parses an RFC 3339 time, as Anthropic's rate-limit resets are written:
/// `2025-01-24T10:30:07Z`, `2025-01-24T10:30:07.25+01:00`, `t`/`z`/space allowed.
/// `None` for anything else, and for times before 1970.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let s = s.trim();
    if s.len() < 20 || !s.is_char_boundary(19) {
        return None;
    }
    let (main, zone) = match s.as_bytes()[s.len() - 1] {
        b'Z' | b'z' => (&s[..s.len() - 1], 0i64),
        _ => {
            let cut = s.len() - 6;
            let (main, offset) = (s.get(..cut)?, s.get(cut..)?);
            let o = offset.as_bytes();
            let sign = match o[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if o[3] != b':' {
                return None;
            }
            let h: i64 = offset.get(1..3)?.parse().ok()?;
            let m: i64 = offset.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            (main, sign * (h * 60 + m) * 60_000)
        }
    };
    let mut utc = String::with_capacity(main.len() + 1);
    utc.push_str(main);
    utc.push('Z');
    // RFC 3339 allows a lowercase or space separator; parse_iso8601 checks the rest.
    if matches!(utc.as_bytes().get(10), Some(b't' | b' ')) {
        utc.replace_range(10..11, "T");
    }
    let local = parse_iso8601(&utc)?;
    let at = i64::try_from(local.0).ok()?.checked_sub(zone)?;
    u64::try_from(at).ok().map(Millis)
}

/// Serde `with` module: [`Millis`] as an ISO-8601 string.
pub mod iso8601 {
    use super::{parse_iso8601, Millis};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Writes `2025-01-24T10:30:00.000Z`.
    pub fn serialize<S: Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_iso8601())
    }

    /// Reads what `serialize` writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        parse_iso8601(&text)
            .ok_or_else(|| D::Error::custom(format!("not an ISO-8601 UTC time: {text:?}")))
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form `Retry-After`
/// uses for dates.
pub fn parse_http_date(s: &str) -> Option<Millis> {
    let mut parts = s.split_whitespace();
    let _weekday = parts.next()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // The year has four digits (RFC 9110); a longer one would overflow below.
    if parts.next()? != "GMT"
        || !(1..=31).contains(&day)
        || !(0..=9999).contains(&year)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if days < 0 {
        return None;
    }
    Some(Millis(
        (days as u64 * 86_400 + h * 3600 + mi * 60 + sec) * 1000,
    ))
}

/// Parses a Go-style duration as OpenAI's `x-ratelimit-reset-*` headers give it:
/// `1s`, `6m0s`, `20ms`, `1h2m3.5s`, `0.5s`. Returns milliseconds (rounded up).
pub fn parse_go_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total_us: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor_us = match &rest[..unit_end] {
            "h" => 3_600_000_000.0,
            "m" => 60_000_000.0,
            "s" => 1_000_000.0,
            "ms" => 1_000.0,
            "us" | "µs" => 1.0,
            "ns" => 0.001,
            _ => return None,
        };
        total_us += value * factor_us;
        rest = &rest[unit_end..];
    }
    Some((total_us / 1000.0).ceil() as u64)
}

/// A duration for people: `45s`, `2m 15s`, `1h 5m 3s`.
pub fn format_duration(ms: u64) -> String {
    hours_minutes_seconds(ms, &(ms / 1000 % 60).to_string(), " ")
}

/// A duration in Go's `time.Duration.String` style, as OpenAI sends it in
/// `x-ratelimit-reset-*` (and [`parse_go_duration`] reads it): `0s`, `20ms`,
/// `1s`, `1.5s`, `6m0s`, `1h2m3s`.
pub fn format_go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let rest = ms % 60_000;
    let (secs, frac) = (rest / 1000, rest % 1000);
    let s = if frac == 0 {
        secs.to_string()
    } else {
        let f = format!("{frac:03}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    };
    hours_minutes_seconds(ms, &s, "")
}

/// `{h}h{sep}{m}m{sep}{s}s` of `ms`, without the leading units that are zero;
/// the seconds written as given.
fn hours_minutes_seconds(ms: u64, s: &str, sep: &str) -> String {
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    if h > 0 {
        format!("{h}h{sep}{m}m{sep}{s}s")
    } else if m > 0 {
        format!("{m}m{sep}{s}s")
    } else {
        format!("{s}s")
    }
}

/// Seconds with two decimals, for per-image times: `2.70s`.
pub fn format_seconds(ms: u64) -> String {
    let centis = (ms + 5) / 10;
    format!("{}.{:02}s", centis / 100, centis % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_from_epoch_millis() {
        assert_eq!(Millis(0).to_iso8601(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Millis(1_737_714_600_123).to_iso8601(),
            "2025-01-24T10:30:00.123Z"
        );
        assert_eq!(
            Millis(1_737_714_600_123).to_file_stamp(),
            "2025-01-24T10-30-00-123Z"
        );
        // A leap day.
        assert_eq!(
            Millis(951_782_400_000).to_iso8601(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn iso8601_round_trips() {
        for t in [0, 951_782_400_000, 1_737_714_600_123, 4_102_444_799_999] {
            assert_eq!(parse_iso8601(&Millis(t).to_iso8601()), Some(Millis(t)));
        }
        assert_eq!(
            parse_iso8601("2025-01-24T10:30:00Z"),
            Some(Millis(1_737_714_600_000))
        );
        assert_eq!(
            parse_iso8601("2025-01-24T10:30:00.5Z"),
            Some(Millis(1_737_714_600_500))
        );
        for bad in [
            "",
            "2025-01-24 10:30:00Z",
            "2025-13-24T10:30:00.000Z",
            "2025-01-24T10:30:00.000",
            "2025-01-24T10:30:00.Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_date_round_trips_through_civil_days() {
        assert_eq!(
            parse_http_date("Fri, 24 Jan 2025 10:30:00 GMT"),
            Some(Millis(1_737_714_600_000))
        );
        assert_eq!(parse_http_date("Fri, 24 Jan 2025 10:30:00 PST"), None);
        assert_eq!(parse_http_date("120"), None);
        assert_eq!(parse_http_date(""), None);
    }

    /// Found by the `ratelimit` fuzz target: a `retry-after` date with a year of
    /// more than four digits overflowed the day arithmetic (a panic in debug
    /// builds, a wrong wait in release ones).
    #[test]
    fn http_date_with_a_huge_year_is_refused_not_overflowed() {
        for year in [
            "99999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "10000",
        ] {
            let date = format!("Fri, 31 Dec {year} 23:59:59 GMT");
            assert_eq!(parse_http_date(&date), None, "{date}");
        }
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(Millis(253_402_300_799_000))
        );
    }

    #[test]
    fn go_durations() {
        for (text, ms) in [
            ("1s", 1000),
            ("6m0s", 360_000),
            ("20ms", 20),
            ("1h2m3.5s", 3_723_500),
            ("0.5s", 500),
            ("7.66s", 7660),
        ] {
            assert_eq!(parse_go_duration(text), Some(ms), "{text}");
            // Written again, it reads back the same.
            assert_eq!(parse_go_duration(&format_go_duration(ms)), Some(ms));
        }
        for bad in ["10", "s", "3x"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(format_duration(135_000), "2m 15s");
        assert_eq!(format_duration(2_550_000), "42m 30s");
        assert_eq!(format_duration(45_999), "45s");
        assert_eq!(format_duration(3_903_000), "1h 5m 3s");
        assert_eq!(format_seconds(2700), "2.70s");
        assert_eq!(format_seconds(2705), "2.71s");
        assert_eq!(format_seconds(999), "1.00s");
        assert_eq!(format_seconds(0), "0.00s");
    }

    #[test]
    fn rfc3339_times_with_offsets() {
        let utc = parse_rfc3339("2025-01-24T10:30:07Z").unwrap();
        assert_eq!(utc.to_iso8601(), "2025-01-24T10:30:07.000Z");
        assert_eq!(parse_rfc3339("2025-01-24t10:30:07z"), Some(utc));
        assert_eq!(parse_rfc3339("2025-01-24 10:30:07Z"), Some(utc));
        assert_eq!(parse_rfc3339("2025-01-24T11:30:07+01:00"), Some(utc));
        assert_eq!(parse_rfc3339("2025-01-24T05:00:07-05:30"), Some(utc));
        assert_eq!(
            parse_rfc3339("2025-01-24T10:30:07.25Z"),
            Some(utc.plus(250))
        );
        for bad in [
            "",
            "2025-01-24T10:30:07",
            "2025-01-24T10:30:07+0100",
            "2025-01-24T10:30:07+24:00",
            "2025-13-24T10:30:07Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+00:01",
            "2025-01-24T10:30:07Zé",
            "é025-01-24T10:30:07Z",
            "2025-01-24T10:30:07+01:0é",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
