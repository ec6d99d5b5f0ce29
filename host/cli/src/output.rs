//! How the CLI prints what the server answers: aligned tables and
//! `key: value` blocks for people, the JSON as received for scripts
//! (`--json`).

use serde_json::Value;

/// One column: its heading and the dotted path of the field it shows
/// (`resources_consumed.fuel`).
pub struct Column {
    pub heading: &'static str,
    pub path: &'static str,
}

/// Shorthand for a column list.
pub fn cols(spec: &[(&'static str, &'static str)]) -> Vec<Column> {
    spec.iter().map(|(heading, path)| Column { heading, path }).collect()
}

/// The field at `path` in `v` (dotted; array indexes are numbers).
pub fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(v, |v, part| match v {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
        .unwrap_or(&Value::Null)
}

/// A value as a table cell: strings bare, null as `-`, lists joined.
pub fn cell(v: &Value) -> String {
    cell_at(v, "")
}

/// A cell for the field at `path`: timestamps (`*_ms` fields other than
/// durations) as UTC times.
fn cell_at(v: &Value, path: &str) -> String {
    let is_time = ["at_ms", "created_ms", "revoked_ms", "uploaded_ms"].iter().any(|s| path.ends_with(s));
    if let (true, Some(ms)) = (is_time, v.as_i64()) {
        if ms > 0 {
            return utc(ms);
        }
    }
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

fn numeric(v: &Value) -> bool {
    v.is_number()
}

/// `rows` as an aligned table with `columns`; numbers right-aligned.
pub fn table(rows: &[Value], columns: &[Column]) -> String {
    let cells: Vec<Vec<(String, bool)>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    let v = field(r, c.path);
                    let text = cell_at(v, c.path);
                    let right = numeric(v) && text.parse::<f64>().is_ok();
                    (text, right)
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].0.chars().count()).chain([c.heading.len()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, parts: Vec<(String, bool)>| {
        let mut text = String::new();
        for (i, (s, right)) in parts.into_iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(s.chars().count());
            if right {
                text.push_str(&" ".repeat(pad));
                text.push_str(&s);
            } else {
                text.push_str(&s);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, columns.iter().map(|c| (c.heading.to_ascii_uppercase(), false)).collect());
    if cells.is_empty() {
        out.push_str("(none)\n");
    }
    for row in cells {
        line(&mut out, row);
    }
    out
}

/// The rows of `v[key]` (an empty list when absent).
pub fn rows<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `label: value` lines for the given fields of one object.
pub fn record(v: &Value, fields: &[(&str, &str)]) -> String {
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    fields.iter().map(|(label, path)| format!("{label:<width$}  {}\n", cell_at(field(v, path), path))).collect()
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
    use serde_json::json;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let rows = [json!({"a": "x", "n": {"v": 5}}), json!({"a": "longer", "n": {"v": 12345}})];
        let t = table(&rows, &cols(&[("name", "a"), ("value", "n.v")]));
        assert_eq!(t, "NAME    VALUE\nx           5\nlonger  12345\n");
        assert_eq!(table(&[], &cols(&[("name", "a")])), "NAME\n(none)\n");
    }

    #[test]
    fn timestamps_read_as_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_439_742_530), "2026-11-23 13:15:42 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        let t = table(&[json!({"created_ms": 0, "at_ms": 86_400_000})], &cols(&[("at", "at_ms")]));
        assert_eq!(t, "AT\n1970-01-02 00:00:00 UTC\n");
    }

    #[test]
    fn missing_fields_show_as_a_dash() {
        assert_eq!(cell(field(&json!({"a": 1}), "b.c")), "-");
        assert_eq!(cell(&json!(["x", "y"])), "x,y");
    }
}
