//! How the CLI prints what the server answers: aligned tables and
//! `label  value` blocks for people, made of [`Cell`]s taken from the
//! typed replies; the JSON as received for scripts (`--json`).

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

/// One value as shown: text (left-aligned in a table) or a number
/// (right-aligned). A missing value shows as `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    text: String,
    number: bool,
}

impl Cell {
    /// Text, shown as it is.
    pub fn text(v: impl Display) -> Cell {
        Cell { text: v.to_string(), number: false }
    }

    /// A number, right-aligned in a table.
    pub fn num(n: impl Display) -> Cell {
        Cell { text: n.to_string(), number: true }
    }

    /// A value the reply does not have: `-`.
    pub fn missing() -> Cell {
        Cell::text("-")
    }

    /// Text, or `-` when there is none.
    pub fn opt_text(v: Option<impl Display>) -> Cell {
        v.map_or_else(Cell::missing, Cell::text)
    }

    /// A number, or `-` when there is none.
    pub fn opt_num(n: Option<impl Display>) -> Cell {
        n.map_or_else(Cell::missing, Cell::num)
    }

    /// A time in milliseconds since the epoch, as a UTC time (a time not
    /// after the epoch stays the number it is).
    pub fn time(ms: i64) -> Cell {
        if ms > 0 {
            Cell::text(utc(ms))
        } else {
            Cell::num(ms)
        }
    }

    /// A number of bytes for people: `512 B`, `1.5 KiB`, `2.0 MiB`
    /// (right-aligned; `--json` keeps the exact number).
    pub fn bytes(n: u64) -> Cell {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if n < 1024 {
            return Cell::num(format!("{n} B"));
        }
        let mut v = n as f64 / 1024.0;
        let mut unit = 0;
        while v >= 1024.0 && unit < UNITS.len() - 1 {
            v /= 1024.0;
            unit += 1;
        }
        Cell::num(format!("{v:.1} {}", UNITS[unit]))
    }

    /// A duration in nanoseconds for people: `850 ns`, `12.3 µs`,
    /// `4.56 ms`, `1.20 s`.
    pub fn nanos(ns: u64) -> Cell {
        let text = match ns {
            0..=999 => format!("{ns} ns"),
            1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
            1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
            _ => format!("{:.2} s", ns as f64 / 1e9),
        };
        Cell::num(text)
    }

    /// A SHA-256 digest shortened for a table (its first 12 characters;
    /// `show` and `--json` give it whole).
    pub fn digest(d: &str) -> Cell {
        Cell::text(d.get(..12).unwrap_or(d))
    }

    /// A time, or `-` when there is none.
    pub fn opt_time(ms: Option<i64>) -> Cell {
        ms.map_or_else(Cell::missing, Cell::time)
    }

    /// Items joined with `,` (an empty list shows as nothing).
    pub fn list<T: Display>(items: impl IntoIterator<Item = T>) -> Cell {
        Cell::text(items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","))
    }

    /// A value by the name it has on the wire: an enum's snake_case name.
    pub fn wire(v: &impl Serialize) -> Cell {
        match serde_json::to_value(v) {
            Ok(Value::String(s)) => Cell::text(s),
            Ok(Value::Null) | Err(_) => Cell::missing(),
            Ok(other) => Cell::text(other),
        }
    }

    /// The text shown.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn width(&self) -> usize {
        self.text.chars().count()
    }
}

/// `rows` as an aligned table under `headings` (in ASCII capitals); numbers
/// right-aligned, text left; `(none)` under the headings when empty.
pub fn table(headings: &[&str], rows: Vec<Vec<Cell>>) -> String {
    let heads: Vec<Cell> = headings.iter().map(|h| Cell::text(h.to_ascii_uppercase())).collect();
    let widths: Vec<usize> = heads
        .iter()
        .enumerate()
        .map(|(i, h)| rows.iter().filter_map(|r| r.get(i)).map(Cell::width).chain([h.width()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[Cell]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(width.saturating_sub(cell.width()));
            if cell.number {
                text.push_str(&pad);
                text.push_str(&cell.text);
            } else {
                text.push_str(&cell.text);
                text.push_str(&pad);
            }
        }
        format!("{}\n", text.trim_end())
    };
    let mut out = line(&heads);
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// `label  value` lines, the values lined up after the longest label.
pub fn record(fields: &[(&str, Cell)]) -> String {
    let width = fields.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    fields.iter().map(|(label, cell)| format!("{label:<width$}  {}\n", cell.as_str())).collect()
}

/// The server's JSON, pretty-printed, for `--json`.
pub fn json(v: &Value) -> Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?))
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let rows = vec![vec![Cell::text("x"), Cell::num(5)], vec![Cell::text("longer"), Cell::num(12345)]];
        assert_eq!(table(&["name", "value"], rows), "NAME    VALUE\nx           5\nlonger  12345\n");
        assert_eq!(table(&["name"], Vec::new()), "NAME\n(none)\n");
        // Widths count characters, not bytes: `µ` is one column.
        let rows = vec![vec![Cell::text("bob"), Cell::num(0)]];
        assert_eq!(table(&["agent", "µUSD"], rows), "AGENT  µUSD\nbob       0\n");
    }

    #[test]
    fn records_line_up_their_values() {
        let r = record(&[("id", Cell::text("g-1")), ("fuel limit", Cell::num(5000))]);
        assert_eq!(r, "id          g-1\nfuel limit  5000\n");
    }

    #[test]
    fn timestamps_read_as_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_439_742_530), "2026-11-23 13:15:42 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        let t = table(&["at"], vec![vec![Cell::time(86_400_000)]]);
        assert_eq!(t, "AT\n1970-01-02 00:00:00 UTC\n");
        assert_eq!(Cell::time(0), Cell::num(0));
        assert_eq!(Cell::opt_time(Some(1_000)).as_str(), "1970-01-01 00:00:01 UTC");
    }

    #[test]
    fn sizes_and_durations_read_for_people() {
        assert_eq!(Cell::bytes(0).as_str(), "0 B");
        assert_eq!(Cell::bytes(1023).as_str(), "1023 B");
        assert_eq!(Cell::bytes(1536).as_str(), "1.5 KiB");
        assert_eq!(Cell::bytes(3 << 20).as_str(), "3.0 MiB");
        assert_eq!(Cell::bytes(u64::MAX).as_str(), "16384.0 PiB");
        assert_eq!(Cell::nanos(850).as_str(), "850 ns");
        assert_eq!(Cell::nanos(12_345).as_str(), "12.3 µs");
        assert_eq!(Cell::nanos(4_560_000).as_str(), "4.56 ms");
        assert_eq!(Cell::nanos(1_200_000_000).as_str(), "1.20 s");
        assert_eq!(Cell::digest("0123456789abcdef0123").as_str(), "0123456789ab");
        assert_eq!(Cell::digest("short").as_str(), "short");
    }

    #[test]
    fn missing_values_show_as_a_dash() {
        assert_eq!(Cell::opt_text(None::<&str>).as_str(), "-");
        assert_eq!(Cell::opt_num(None::<u64>).as_str(), "-");
        assert_eq!(Cell::opt_time(None).as_str(), "-");
        assert_eq!(Cell::list(["x", "y"]).as_str(), "x,y");
        let t = table(&["n", "s"], vec![vec![Cell::opt_num(None::<u64>), Cell::text("a")]]);
        assert_eq!(t, "N  S\n-  a\n");
    }

    #[test]
    fn enums_show_their_wire_names() {
        assert_eq!(Cell::wire(&fuelhost::Health::Healthy).as_str(), "healthy");
        assert_eq!(Cell::wire(&fuelhost::Effect::RequireApproval).as_str(), "require_approval");
        assert_eq!(Cell::wire(&None::<String>).as_str(), "-");
    }
}
