//! Provenance helpers: build identity and wall-clock stamps (which belong in run.json only,
//! never in results.json).

/// `git describe --always --dirty --tags` of the valex source at build time.
pub const GIT_DESCRIBE: &str = env!("VALEX_GIT_DESCRIBE");

/// Current UTC time as `YYYYMMDD-HHMMSS` (for default run directory names).
pub fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs, false)
}

/// Current UTC time as RFC 3339 (`2026-11-27T02:18:51Z`).
pub fn utc_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs, true)
}

fn format_utc(secs: u64, rfc: bool) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    if rfc {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0, true), "1970-01-01T00:00:00Z");
        // 2026-11-27T02:18:51Z
        assert_eq!(format_utc(1_795_745_931, true), "2026-11-27T02:18:51Z");
        assert_eq!(format_utc(951_782_400, false), "20000229-000000");
    }
}
