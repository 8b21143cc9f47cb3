//! Number formatting with units and aligned Markdown tables, shared by the
//! Markdown exporter and (for consistency) by other front ends.

/// `value` with `decimals` decimals, never "-0.00": a figure that rounds to
/// zero is printed as zero whatever its sign (-0.0 comes out of sums of
/// tiny negatives and of `0.0 * -1.0`).
fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    match text.strip_prefix('-') {
        Some(unsigned) if unsigned.bytes().all(|b| b == b'0' || b == b'.') => unsigned.to_string(),
        _ => text,
    }
}

/// Milliseconds with three significant figures: "0.420 ms", "28.3 ms", "212 ms"
/// (up to "9999 ms"); below 0.1 ms in the unit that keeps three figures
/// ("28.8 µs", "3.10 µs", "412 ns"), so "0.03 ms" never stands next to
/// "4.11 µs" and "0.13 ms" never next to "50.6 µs"; from 10 s in seconds,
/// and from 2 minutes as [`age_s`] ("3.9 h", not "14035953 ms").
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let abs = value.abs();
    if abs >= 10_000.0 {
        let seconds = value / 1000.0;
        return if abs < 120_000.0 {
            format!("{} s", fixed(seconds, 1))
        } else if seconds < 0.0 {
            format!("-{}", age_s(-seconds))
        } else {
            age_s(seconds)
        };
    }
    if abs == 0.0 {
        "0.00 ms".to_string()
    } else if abs < 0.1 {
        duration_ns(value * 1e6)
    } else {
        format!("{} ms", three_figures(value))
    }
}

/// `value` with three significant figures for magnitudes from 0.001 up
/// (whole numbers from 100), the decimals chosen after rounding: 9.996 is
/// "10.0", not "10.00", and 0.9996 is "1.00".
fn three_figures(value: f64) -> String {
    let decimals_for = |magnitude: f64| -> usize {
        if magnitude >= 100.0 || magnitude == 0.0 {
            0
        } else {
            (2 - magnitude.log10().floor() as i32).clamp(0, 5) as usize
        }
    };
    let decimals = decimals_for(value.abs());
    let text = fixed(value, decimals);
    // Rounding up may reach the next power of ten, which takes one decimal less.
    let rounded = text.trim_start_matches('-').parse::<f64>().unwrap_or(0.0);
    let fewer = decimals_for(rounded);
    if fewer < decimals {
        fixed(value, fewer)
    } else {
        text
    }
}

/// Nanoseconds shown in the most readable unit: "412 ns", "61.0 µs", "1.20 ms";
/// a positive value below 1 ns keeps three significant figures ("0.100 ns",
/// "1.00e-7 ns"), so a tiny SLO is not shown as "0 ns". A negative value that
/// rounds to zero prints "0 ns".
pub fn duration_ns(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    if value < 0.0 && fixed(value, 0) != "0" {
        return format!("-{}", duration_ns(-value));
    }
    if value > 0.0 && value < SUB_NS_LIMIT {
        return sub_ns(value);
    }
    let value = value.abs();
    if value < 1e3 {
        format!("{} ns", fixed(value, 0))
    } else if value < 1e6 {
        significant(value / 1e3, "µs")
    } else if value < 1e9 {
        significant(value / 1e6, "ms")
    } else {
        significant(value / 1e9, "s")
    }
}

/// Below this a positive duration would round to "0 ns" or "1 ns" with no
/// decimals; [`sub_ns`] gives it three significant figures instead.
const SUB_NS_LIMIT: f64 = 0.9995;

/// A positive duration below [`SUB_NS_LIMIT`] ns with three significant
/// figures: "0.500 ns", "0.0123 ns", then in exponent form from 1e-3 ns.
fn sub_ns(value: f64) -> String {
    if value >= 1e-3 {
        // 2 - floor(log10) decimals: 0.1..1 -> 3, 0.01..0.1 -> 4, 0.001..0.01 -> 5.
        let decimals = (2 - value.log10().floor() as i32).clamp(3, 5) as usize;
        format!("{value:.decimals$} ns")
    } else {
        format!("{value:.2e} ns")
    }
}

/// "1 sample", "3 samples": a count with its noun (plural by `s`).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Three significant figures (whole numbers from 100), with a unit.
fn significant(value: f64, unit: &str) -> String {
    format!("{} {unit}", three_figures(value))
}

/// Dollars with cents and thousands separators: "$1,425.60".
pub fn usd(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let cents = (value.abs() * 100.0).round();
    let whole = (cents / 100.0).trunc();
    let frac = cents - whole * 100.0;
    let sign = if value < 0.0 && cents > 0.0 { "-" } else { "" };
    format!("{sign}${}.{frac:02.0}", thousands(whole))
}

/// Small dollar amounts (per million predictions) with four significant figures: "$0.1375".
pub fn usd_small(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    if value.abs() >= 100.0 {
        return usd(value);
    }
    let magnitude = if value == 0.0 {
        0
    } else {
        value.abs().log10().floor() as i32
    };
    // Four figures however small: a batch job's $2e-7 per million had
    // printed "$0.00000020" beside others' four.
    let decimals = (3 - magnitude).clamp(2, 12) as usize;
    let digits = fixed(value, decimals);
    match digits.strip_prefix('-') {
        Some(unsigned) => format!("-${unsigned}"),
        None => format!("${digits}"),
    }
}

/// Watts with three significant figures down to µW: a device's average draw
/// can be a few mW ("0.00 W" said nothing).
pub fn watts(w: f64) -> String {
    let (value, unit) = if w >= 1.0 || w <= 0.0 || !w.is_finite() {
        (w, "W")
    } else if w >= 1e-3 {
        (w * 1e3, "mW")
    } else {
        (w * 1e6, "µW")
    };
    let decimals = if value >= 100.0 || value == 0.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// A whole number with thousands separators: "100,000".
pub fn thousands(whole: f64) -> String {
    let digits = format!("{whole:.0}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A fraction in 0..=1 as a percentage: "99.62%", "41%".
pub fn percent(fraction: f64, decimals: usize) -> String {
    if !fraction.is_finite() {
        return "n/a".to_string();
    }
    format!("{}%", fixed(fraction * 100.0, decimals))
}

/// Throughput: "400 req/s", "12.5 req/s".
pub fn rps(value: f64) -> String {
    per_second(value, "req/s")
}

/// Predictions per second, where a request asks several of them (the unit
/// of `min_throughput_per_s`): "85,964 predictions/s".
pub fn predictions_per_s(value: f64) -> String {
    per_second(value, "predictions/s")
}

/// A rate in `unit` ("req/s"): whole numbers with separators from 100, one
/// decimal from 1, two significant figures below.
fn per_second(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    if value >= 100.0 {
        format!("{} {unit}", thousands(value.round()))
    } else if value >= 1.0 || value <= 0.0 {
        format!("{} {unit}", fixed(value, 1))
    } else {
        // Two significant figures: 0.05 req/s is not "0.1 req/s".
        let decimals = (1 - value.log10().floor() as i32).clamp(1, 12) as usize;
        format!("{value:.decimals$} {unit}")
    }
}

/// An agreement with the reference model as a percentage ("99.36%"), or
/// "unknown" for 0: the figure plan.json writes for a plan whose variant (or
/// the reference) declares no `accuracy` (docs/plan-format.md), which a table
/// must not show as a measured "0.00%".
pub fn agreement(fraction: f64, decimals: usize) -> String {
    if fraction == 0.0 {
        "unknown".to_string()
    } else {
        percent(fraction, decimals)
    }
}

/// GFLOP/s with three significant figures.
pub fn gflops(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    if value >= 999.5 {
        format!("{} GFLOP/s", thousands(value.round()))
    } else {
        significant(value, "GFLOP/s")
    }
}

/// A measured byte count, "-" when none was recorded.
pub fn recorded_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".to_string(),
        |b| crate::scenario::format_bytes(b as f64),
    )
}

/// Seconds as the largest sensible unit: "45 s", "12.0 min", "12.0 h", "2.5 d";
/// under 10 s with a decimal ("1.6 s", not "2 s"), under 1 s in milliseconds.
pub fn age_s(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".to_string();
    }
    if seconds > 0.0 && seconds < 0.9995 {
        ms(seconds * 1000.0)
    } else if seconds > 0.0 && seconds < 9.95 {
        format!("{} s", fixed(seconds, 1))
    } else if seconds < 120.0 {
        format!("{} s", fixed(seconds, 0))
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} d", seconds / 86_400.0)
    }
}

/// Column alignment in a Markdown table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Render a Markdown table whose columns are padded to equal width, so it
/// reads well as plain text too. Pipes in cells are escaped.
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let escaped: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| cell.replace('|', "\\|").replace(['\n', '\r'], " "))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|(h, _)| h.chars().count().max(3))
        .collect();
    for row in &escaped {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let pad = |text: &str, width: usize, align: Align| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        match align {
            Align::Left => format!("{text}{fill}"),
            Align::Right => format!("{fill}{text}"),
        }
    };
    let mut out = String::new();
    let header_cells: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|((h, a), w)| pad(h, *w, *a))
        .collect();
    out.push_str(&format!("| {} |\n", header_cells.join(" | ")));
    let rule: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|((_, a), w)| match a {
            Align::Left => "-".repeat(*w),
            Align::Right => format!("{}:", "-".repeat(w - 1)),
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in &escaped {
        let cells: Vec<String> = headers
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, ((_, a), w))| pad(row.get(i).map_or("", String::as_str), *w, *a))
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_keep_their_digits_when_tiny() {
        assert_eq!(ms(212.4), "212 ms");
        assert_eq!(ms(9_999.0), "9999 ms");
        assert_eq!(ms(14_200.0), "14.2 s");
        assert_eq!(ms(14_035_953.0), "3.9 h");
        assert_eq!(ms(-14_200.0), "-14.2 s");
        assert_eq!(ms(0.42), "0.420 ms");
        assert_eq!(ms(0.0), "0.00 ms");
        assert!(ms(0.0031).contains("µs"), "{}", ms(0.0031));
        assert!(!ms(0.0031).starts_with("0.00"));
        assert_eq!(ms(0.0288), "28.8 µs");
        assert_eq!(ms(0.1), "0.100 ms");
        assert_eq!(ms(-0.0288), "-28.8 µs");
    }

    /// A tiny SLO (`latency_ms = 1e-7`) printed as "0 ns" beside a real latency.
    #[test]
    fn sub_nanosecond_durations_keep_their_value() {
        assert_eq!(ms(1e-7), "0.100 ns");
        assert_eq!(duration_ns(0.1), "0.100 ns");
        assert_eq!(duration_ns(0.5), "0.500 ns");
        assert_eq!(duration_ns(0.0123), "0.0123 ns");
        assert_eq!(duration_ns(0.001_5), "0.00150 ns");
        assert_eq!(ms(1e-12), "1.00e-6 ns");
        assert_eq!(duration_ns(0.9999), "1 ns");
        assert_eq!(duration_ns(3.0), "3 ns");
        assert_eq!(duration_ns(0.0), "0 ns");
        assert_eq!(duration_ns(-0.0), "0 ns");
        // Negative values that round to zero stay "0 ns" (see below).
        assert_eq!(ms(-1e-7), "0 ns");
    }

    /// Three significant figures throughout: face-unlock's table had
    /// "0.13 ms" beside "50.6 µs", and the kernel table "10.00 GFLOP/s"
    /// (9.996 rounded up past the decimals chosen for it).
    #[test]
    fn three_significant_figures_on_both_sides_of_a_power_of_ten() {
        assert_eq!(ms(0.13316), "0.133 ms");
        assert_eq!(ms(0.11), "0.110 ms");
        assert_eq!(ms(0.0506), "50.6 µs");
        assert_eq!(ms(0.9996), "1.00 ms");
        assert_eq!(ms(9.996), "10.0 ms");
        assert_eq!(ms(99.96), "100 ms");
        assert_eq!(ms(-0.42), "-0.420 ms");
        assert_eq!(duration_ns(99_960.0), "100 µs");
        assert_eq!(gflops(9.9996), "10.0 GFLOP/s");
        assert_eq!(gflops(99.6), "99.6 GFLOP/s");
        assert_eq!(gflops(0.43), "0.430 GFLOP/s");
        assert_eq!(gflops(999.7), "1,000 GFLOP/s");
        assert_eq!(watts(2.5), "2.50 W");
    }

    /// A batch run of 1.6076 s read "each taking 2 s".
    #[test]
    fn short_ages_keep_a_decimal() {
        assert_eq!(age_s(1.6076), "1.6 s");
        assert_eq!(age_s(9.9), "9.9 s");
        assert_eq!(age_s(9.96), "10 s");
        assert_eq!(age_s(45.0), "45 s");
        assert_eq!(age_s(0.25), "250 ms");
        assert_eq!(age_s(0.0), "0 s");
        assert_eq!(age_s(7200.0), "2.0 h");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1u32, "sample"), "1 sample");
        assert_eq!(count(0u32, "sample"), "0 samples");
        assert_eq!(count(3u64, "sample"), "3 samples");
    }

    #[test]
    fn money_has_separators_and_cents() {
        assert_eq!(usd(1425.6), "$1,425.60");
        assert_eq!(usd(0.004), "$0.00");
        assert_eq!(usd(1_000_000.0), "$1,000,000.00");
        assert_eq!(usd(-12.345), "-$12.35");
        assert_eq!(usd_small(0.137_5), "$0.1375");
        assert_eq!(usd_small(0.000_123_4), "$0.0001234");
        assert_eq!(usd_small(2.034e-7), "$0.0000002034");
        assert_eq!(usd_small(12.5), "$12.50");
    }

    /// A figure that rounds to zero prints as zero, never "-0": sums of tiny
    /// negative cost lines and `0.0 * -1.0` give -0.0.
    #[test]
    fn negative_zero_prints_as_zero() {
        assert_eq!(usd(-0.0), "$0.00");
        assert_eq!(usd(-0.001), "$0.00");
        assert_eq!(usd(0.39), "$0.39");
        assert_eq!(usd_small(-0.0), "$0.000");
        assert_eq!(usd_small(-0.5), "-$0.5000");
        assert_eq!(ms(-0.0), "0.00 ms");
        assert_eq!(ms(-0.001), "-1.00 µs");
        assert_eq!(duration_ns(-0.2), "0 ns");
        assert_eq!(percent(-0.0, 2), "0.00%");
        assert_eq!(percent(-0.000_01, 1), "0.0%");
        assert_eq!(rps(-0.0), "0.0 req/s");
        assert_eq!(age_s(-0.1), "0 s");
        assert_eq!(fixed(-0.004, 2), "0.00");
        assert_eq!(fixed(-0.006, 2), "-0.01");
    }

    #[test]
    fn durations_pick_units() {
        assert_eq!(ms(2.345), "2.35 ms");
        assert_eq!(rps(0.05), "0.050 req/s");
        assert_eq!(rps(0.0012), "0.0012 req/s");
        assert_eq!(rps(12.5), "12.5 req/s");
        assert_eq!(rps(1_000_000.0), "1,000,000 req/s");
        assert_eq!(ms(28.34), "28.3 ms");
        assert_eq!(ms(212.4), "212 ms");
        assert_eq!(ms(f64::NAN), "n/a");
        assert_eq!(duration_ns(412.0), "412 ns");
        assert_eq!(duration_ns(61_000.0), "61.0 µs");
        assert_eq!(duration_ns(1_200_000.0), "1.20 ms");
        assert_eq!(age_s(43_200.0), "12.0 h");
    }

    /// The throughput floor counts predictions: its unit reads so, with the
    /// figures formatted as requests per second are.
    #[test]
    fn predictions_per_second_read_as_requests_per_second_do() {
        assert_eq!(predictions_per_s(85_964.2), "85,964 predictions/s");
        assert_eq!(predictions_per_s(12.5), "12.5 predictions/s");
        assert_eq!(predictions_per_s(0.05), "0.050 predictions/s");
        assert_eq!(rps(85_964.2), "85,964 req/s");
    }

    /// plan.json writes 0 for an agreement nobody knows (no declared
    /// `accuracy`); report.md had shown it as "0.00%".
    #[test]
    fn an_unknown_agreement_reads_unknown() {
        assert_eq!(agreement(0.0, 2), "unknown");
        assert_eq!(agreement(0.9936, 2), "99.36%");
        assert_eq!(agreement(0.98, 2), "98.00%");
    }

    #[test]
    fn table_columns_are_aligned() {
        let text = table(
            &[("name", Align::Left), ("value", Align::Right)],
            &[
                vec!["a".to_string(), "1".to_string()],
                vec!["long|name".to_string(), "12345".to_string()],
            ],
        );
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
        assert!(text.contains("long\\|name"));
        assert!(text.lines().nth(1).is_some_and(|l| l.ends_with(": |")));
    }
}
