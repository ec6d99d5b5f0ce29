//! What commands read before they send: files (or stdin) parsed as the
//! request they hold, so a bad file is a local error naming it; ids and
//! names checked by the API's grammar; fresh ids for requests that are
//! idempotent by id.

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

use crate::client::random_hex;
use fuelhost_api::grammar::{ArtifactRef, ClientId};
use fuelhost_api::{AgentId, Asset};

/// What the user typed, refused before anything was sent (exit 2).
pub(super) fn usage(message: String) -> anyhow::Error {
    crate::exit::Usage(message).into()
}

/// A file's bytes, or stdin's for `-`.
pub(super) fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// How a file is named in messages.
fn name_of(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

/// The JSON file at `path` (`-`: stdin) read as `T`, which it must be:
/// `what` says what it should hold, for the message when it does not.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = read_input(path)?;
    serde_json::from_slice(&bytes).map_err(|e| usage(format!("{} is not {what}: {e}", name_of(path))))
}

/// The TOML file at `path` read as `T` (`what` as for [`read_json`]).
pub(super) fn read_toml<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = String::from_utf8(read_input(path)?).map_err(|_| usage(format!("{} is not UTF-8", name_of(path))))?;
    toml::from_str(&text).map_err(|e| usage(format!("{} is not {what}: {e}", name_of(path))))
}

/// `id` as an id a caller chooses, or what is wrong with it.
pub(super) fn client_id(id: String) -> Result<ClientId> {
    ClientId::try_from(id).map_err(|e| usage(e.to_string()))
}

/// `id` as an artifact id (`owner/name@version`), or what is wrong with it.
pub(super) fn artifact_ref(id: String) -> Result<ArtifactRef> {
    ArtifactRef::try_from(id).map_err(|e| usage(e.to_string()))
}

/// `id` as an agent id, or what is wrong with it.
pub(super) fn agent_id(id: String) -> Result<AgentId> {
    AgentId::try_from(id).map_err(|e| usage(e.to_string()))
}

/// The asset named `name`.
pub(super) fn asset(name: &str) -> Result<Asset> {
    Asset::parse(name).ok_or_else(|| {
        usage(format!("`{}` is not an asset: use scrip, fuel, disk_bytes or llm_tokens", name.escape_debug()))
    })
}

/// `id`, or a fresh one starting with `prefix` (`mint-3f09a1c2e4b5d6f7`).
pub(super) fn id_or_fresh(id: Option<String>, prefix: &str) -> Result<ClientId> {
    client_id(id.unwrap_or_else(|| format!("{prefix}-{}", random_hex(8))))
}

/// The route of the artifact `id` (`/v1/artifacts/OWNER/NAME@VERSION`).
pub(super) fn artifact_path(id: String) -> Result<String> {
    Ok(format!("/v1/artifacts/{}", artifact_ref(id)?.as_str()))
}

/// A time the user typed, as Unix milliseconds: an age (`90s`, `30m`,
/// `2h`, `7d`: that long ago), a UTC date or time (`2026-12-07`,
/// `2026-12-07T06:30:00Z`, `2026-12-07 06:30`), or milliseconds since the
/// epoch. The value parser of `--since` and `--until`.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let s = s.trim();
    let wrong = || {
        format!(
            "`{s}` is not a time: give an age (90s, 30m, 2h, 7d), a UTC date or time (2026-12-07, \
             2026-12-07T06:30:00Z), or milliseconds since the epoch"
        )
    };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let age = s.char_indices().last().and_then(|(i, unit)| Some((s[..i].parse::<i64>().ok()?, unit)));
    if let Some((n, unit)) = age {
        if n < 0 {
            return Err(wrong());
        }
        let ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return Err(wrong()),
        };
        return n.checked_mul(ms).and_then(|ago| now().checked_sub(ago)).ok_or_else(wrong);
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (s, ""),
    };
    let num = |t: &str| t.parse::<i64>().map_err(|_| wrong());
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d[..] else { return Err(wrong()) };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=days_in_month[(m - 1) as usize]).contains(&day) {
        return Err(wrong());
    }
    let t: Vec<&str> = if time.is_empty() { Vec::new() } else { time.split(':').collect() };
    if t.len() > 3 {
        return Err(wrong());
    }
    let part = |i: usize, max: i64| -> std::result::Result<i64, String> {
        let v = t.get(i).map_or(Ok(0), |p| num(p))?;
        if (0..max).contains(&v) {
            Ok(v)
        } else {
            Err(wrong())
        }
    };
    let secs = part(0, 24)? * 3_600 + part(1, 60)? * 60 + part(2, 61)?;
    Ok((days_from_civil(y, m, day) * 86_400 + secs) * 1_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_by_the_grammar_before_anything_is_sent() {
        assert_eq!(artifact_path("alice/echo@0.1.0".into()).ok().as_deref(), Some("/v1/artifacts/alice/echo@0.1.0"));
        let bad = artifact_path("echo".into()).map(|_| ()).unwrap_err().to_string();
        assert!(bad.contains("owner/name@version"), "{bad}");
        let bad = client_id(".x".into()).map(|_| ()).unwrap_err().to_string();
        assert!(bad.contains("`.x`"), "{bad}");
        assert!(agent_id("Bob".into()).is_err());
        assert!(asset("gold").is_err());
        assert!(id_or_fresh(None, "mint").is_ok_and(|id| id.as_str().starts_with("mint-")));
    }

    #[test]
    fn a_file_that_is_not_the_request_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alloc.json");
        std::fs::write(&path, r#"{"id": "a", "agent": "bob", "quota": {}}"#).unwrap();
        let e = read_json::<fuelhost_api::requests::NewAllocation>(&path, "an allocation request")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{} is not an allocation request: unknown field `quota`", path.display())),
            "{e}"
        );
    }

    #[test]
    fn times_are_ages_dates_or_milliseconds() {
        assert_eq!(parse_time("1796625536000"), Ok(1_796_625_536_000));
        assert_eq!(parse_time("2026-12-07T06:38:56Z"), Ok(1_796_625_536_000));
        assert_eq!(parse_time("2026-12-07 06:38:56"), Ok(1_796_625_536_000));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_time("2024-02-29T23:59"), Ok(1_709_251_140_000));
        let hour_ago = parse_time("1h").unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now - 3_600_000 - hour_ago).abs() < 5_000, "{hour_ago}");
        for bad in
            ["yesterday", "2026-13-01", "12h30", "2026-12-07T25:00", "5y", "2026-02-29", "-2h", "99999999999-01-01"]
        {
            let e = parse_time(bad).unwrap_err();
            assert!(e.contains("is not a time: give an age"), "{bad}: {e}");
        }
    }
}
