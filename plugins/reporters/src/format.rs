//! How the human-readable reporters (markdown, html) print numbers: fixed decimals, signed
//! deltas, "–" for anything missing, so absent optional keys never fail a report.

/// Printed for an absent or `null` value.
pub const DASH: &str = "–";

/// A rate or other metric, three decimals.
pub fn rate(x: Option<f64>) -> String {
    x.map_or_else(|| DASH.to_owned(), |x| format!("{x:.3}"))
}

/// A difference, signed, three decimals.
pub fn delta(x: Option<f64>) -> String {
    x.map_or_else(|| DASH.to_owned(), |x| format!("{x:+.3}"))
}

/// A confidence interval `[lo, hi]` of a difference.
pub fn ci(x: Option<(f64, f64)>) -> String {
    x.map_or_else(
        || DASH.to_owned(),
        |(lo, hi)| format!("[{lo:+.3}, {hi:+.3}]"),
    )
}

/// A p-value: three decimals, or scientific below 0.001.
pub fn p_value(x: Option<f64>) -> String {
    match x {
        None => DASH.to_owned(),
        Some(p) if p > 0.0 && p < 1e-3 => format!("{p:.1e}"),
        Some(p) => format!("{p:.3}"),
    }
}

/// A count.
pub fn count(x: Option<u64>) -> String {
    x.map_or_else(|| DASH.to_owned(), |x| x.to_string())
}

/// An optional text.
pub fn text(x: Option<&str>) -> String {
    x.map_or_else(|| DASH.to_owned(), str::to_owned)
}

/// Mean of the present values, `None` when there is none.
pub fn mean(xs: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_missing_as_dash_and_signs_deltas() {
        assert_eq!(rate(None), "–");
        assert_eq!(delta(Some(-0.5)), "-0.500");
        assert_eq!(delta(Some(0.25)), "+0.250");
        assert_eq!(ci(Some((-0.6, -0.4))), "[-0.600, -0.400]");
        assert_eq!(p_value(Some(0.0004)), "4.0e-4");
        assert_eq!(p_value(Some(0.05)), "0.050");
        assert_eq!(mean([Some(1.0), None, Some(2.0)]), Some(1.5));
        assert_eq!(mean([None]), None);
    }
}
