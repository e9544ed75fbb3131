//! Go's two duration parsers, as the API server uses them.
//!
//! - [`go_parse_duration`] is Go's `time.ParseDuration`: cel-go's `duration('…')` and the
//!   compile-time check of a literal argument use it.
//! - [`strfmt_parse_duration`] is kube-openapi `pkg/validation/strfmt/duration.go`
//!   `ParseDuration`: `time.ParseDuration` first, then a Scala-like `3d`, `2 weeks`, `1hour`
//!   syntax. It decides whether a string passes `format: duration`, and whether CEL sees such
//!   a string as a duration (apiserver `pkg/cel/common/valuesunstructured.go`).

use std::sync::LazyLock;

use regex::Regex;

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
/// 1<<63, the magnitude of Go's smallest `time.Duration`.
const LIMIT: u64 = 1 << 63;

/// Go `time` `leadingInt`: the leading digits of `s` and the rest, or `None` on overflow.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s[..end].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// Go `time` `leadingFraction`: the leading digits of `s` as a fraction `x / scale`; digits
/// past what fits are dropped, not an error.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    for b in s[..end].bytes() {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// Go's `time.ParseDuration` (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`), in nanoseconds.
pub(crate) fn go_parse_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return None;
        }
        let before = rest.len();
        let (mut v, after_int) = leading_int(rest)?;
        rest = after_int;
        let pre = before != rest.len();
        let (mut f, mut scale, mut post) = (0, 1.0, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (x, sc, after_fraction) = leading_fraction(after_dot);
            post = after_fraction.len() != after_dot.len();
            (f, scale, rest) = (x, sc, after_fraction);
        }
        if !pre && !post {
            return None;
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => NANOSECOND,
            // U+00B5 micro sign and U+03BC Greek small letter mu.
            "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
            "ms" => MILLISECOND,
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            _ => return None,
        };
        rest = &rest[unit_end..];
        if v > LIMIT / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            // As Go does: float64 keeps fractions of an hour nanosecond-accurate.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return None;
            }
        }
        // Go's uint64 addition wraps; so does this.
        total = total.wrapping_add(v);
        if total > LIMIT {
            return None;
        }
    }
    if negative {
        return Some(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).ok()
}

/// kube-openapi strfmt `durationMatcher`, `((\d+)\s*([A-Za-zµ]+))`, with RE2's ASCII-only
/// `\d` and `\s` spelled out.
static SCALA_DURATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(([0-9]+)[\t\n\x0C\r ]*([A-Za-zµ]+))").expect("valid regex"));

/// kube-openapi strfmt `timeUnits`: a unit's spellings, the first also naming its multiplier;
/// the last matches as a prefix (`hours`, `weeks`), the others exactly (case-insensitively).
const TIME_UNITS: [(&[&str], i64); 8] = [
    (&["ns", "nano"], 1),
    (&["us", "µs", "micro"], 1_000),
    (&["ms", "milli"], 1_000_000),
    (&["s", "sec"], 1_000_000_000),
    (&["m", "min"], 60_000_000_000),
    (&["h", "hr", "hour"], 3_600_000_000_000),
    (&["d", "day"], 86_400_000_000_000),
    (&["w", "wk", "week"], 604_800_000_000_000),
];

/// kube-openapi strfmt `ParseDuration`, in nanoseconds. The Scala-like fallback sums every
/// `<digits><unit>` it finds anywhere in the string, ignores the rest, and (as Go's
/// `time.Duration` arithmetic does) wraps on overflow.
pub(crate) fn strfmt_parse_duration(s: &str) -> Option<i64> {
    if let Some(d) = go_parse_duration(s) {
        return Some(d);
    }
    let mut total: i64 = 0;
    let mut ok = false;
    for m in SCALA_DURATION.captures_iter(s) {
        // strconv.Atoi: a factor past int64 is an error for the whole string.
        let factor: i64 = m[2].parse().ok()?;
        let unit = m[3].trim().to_lowercase();
        for (variants, multiplier) in TIME_UNITS {
            let last = variants.len() - 1;
            for (i, variant) in variants.iter().enumerate() {
                if (i == last && unit.starts_with(variant)) || variant.eq_ignore_ascii_case(&unit) {
                    ok = true;
                    total = total.wrapping_add(factor.wrapping_mul(multiplier));
                }
            }
        }
    }
    ok.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from Go's src/time/time_test.go `parseDurationTests` and
    // `parseDurationErrorTests`.
    #[test]
    fn go_parse_duration_matches_go() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND as i64),
            ("30s", 30 * SECOND as i64),
            ("1478s", 1478 * SECOND as i64),
            ("-5s", -5 * SECOND as i64),
            ("+5s", 5 * SECOND as i64),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND as i64),
            ("5.6s", 5 * SECOND as i64 + 600 * MILLISECOND as i64),
            ("5.s", 5 * SECOND as i64),
            (".5s", 500 * MILLISECOND as i64),
            ("1.0s", SECOND as i64),
            ("1.00s", SECOND as i64),
            ("1.004s", SECOND as i64 + 4 * MILLISECOND as i64),
            ("100.00100s", 100 * SECOND as i64 + MILLISECOND as i64),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND as i64),
            ("12µs", 12 * MICROSECOND as i64),
            ("12μs", 12 * MICROSECOND as i64),
            ("13ms", 13 * MILLISECOND as i64),
            ("14s", 14 * SECOND as i64),
            ("15m", 15 * MINUTE as i64),
            ("16h", 16 * HOUR as i64),
            ("3h30m", 3 * HOUR as i64 + 30 * MINUTE as i64),
            (
                "10.5s4m",
                4 * MINUTE as i64 + 10 * SECOND as i64 + 500 * MILLISECOND as i64,
            ),
            (
                "-2m3.4s",
                -(2 * MINUTE as i64 + 3 * SECOND as i64 + 400 * MILLISECOND as i64),
            ),
            (
                "1h2m3s4ms5us6ns",
                (HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6) as i64,
            ),
            ("39h9m14.425s", 140_954_425 * MILLISECOND as i64),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * MINUTE as i64),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE as i64),
            (
                "0.830103483285477580700h",
                49 * MINUTE as i64 + 48 * SECOND as i64 + 372_539_827,
            ),
        ];
        for (s, want) in ok {
            assert_eq!(go_parse_duration(s), Some(*want), "{s}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ffff}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "2562048h",
        ] {
            assert_eq!(go_parse_duration(bad), None, "{bad:?}");
        }
    }

    // kube-openapi pkg/validation/strfmt/duration_test.go `TestDurationParser`, `TestDuration`,
    // `TestDurationParser_Failed` and `TestIsDuration_Failed`.
    #[test]
    fn strfmt_parse_duration_matches_kube_openapi() {
        const MS: i64 = 1_000_000;
        const S: i64 = 1_000 * MS;
        const H: i64 = 3_600 * S;
        let units: &[(&str, i64)] = &[
            ("ns", 1),
            ("us", 1_000),
            ("µs", 1_000),
            ("ms", MS),
            ("s", S),
            ("m", 60 * S),
            ("h", H),
            ("hr", H),
            ("d", 24 * H),
            ("w", 7 * 24 * H),
            ("wk", 7 * 24 * H),
            ("nanoseconds", 1),
            ("nanos", 1),
            ("microseconds", 1_000),
            ("micros", 1_000),
            ("millis", MS),
            ("milliseconds", MS),
            ("second", S),
            ("sec", S),
            ("min", 60 * S),
            ("minute", 60 * S),
            ("hour", H),
            ("day", 24 * H),
            ("week", 7 * 24 * H),
        ];
        for (unit, want) in units {
            for spaces in ["", "  "] {
                let s = format!("1{spaces}{unit}");
                assert_eq!(strfmt_parse_duration(&s), Some(*want), "{s:?}");
            }
        }
        assert_eq!(strfmt_parse_duration("0ms"), Some(0));
        assert_eq!(strfmt_parse_duration("2ms"), Some(2 * MS));
        // Every `<digits><unit>` counts, wherever it stands.
        assert_eq!(strfmt_parse_duration("1 DAYS and 2 h"), Some(26 * H));
        for bad in [
            "yada",
            "three week",
            "9999999999999999999999999999999999999999999999999999999 weeks",
            "12 parsecs",
            "12 y",
            "45 wekk",
            "45 weeekks",
            "",
        ] {
            assert_eq!(strfmt_parse_duration(bad), None, "{bad:?}");
        }
    }
}
