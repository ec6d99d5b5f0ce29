//! Request bodies as JSON: the one extractor every JSON route reads its
//! body with, so that every route accepts exactly what the document says.
//!
//! - The body is `application/json` and a JSON object (serde would take a
//!   struct from an array of its fields in order).
//! - A number that is an integer in JSON's sense reads as that integer,
//!   exactly, however it is written (`360.0`, `3.6e2`): the text is
//!   rewritten before parsing, so no float rounding ever touches an amount.
//! - No integer past the ledger's 64-bit signed range is accepted anywhere.
//! - A refusal is the API's `400`, saying what was wrong.
//!
//! The body's size was already held to the limit by `read_body_first`.

use std::borrow::Cow;
use std::ops::Range;

use axum::extract::{FromRequest, Request};
use axum::http::header;

use super::ApiError;
use crate::grammar::MAX_INTEGER;

/// A request's JSON body read as `T`.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(ApiError::bad_request("send the body as JSON, with `Content-Type: application/json`"));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("the request body could not be read to its end"))?;
        read(&bytes).map(JsonBody)
    }
}

/// `bytes` as `T`, by the rules of the module docs.
pub(crate) fn read<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("the body must be a JSON object: `{...}`"));
    }
    let text = integral_numbers_as_integers(bytes);
    if let Some(n) = integer_beyond_i64(&text) {
        return Err(ApiError::bad_request(format!(
            "the body holds the number {n}, beyond {}: no amount, limit or time is that large",
            MAX_INTEGER
        )));
    }
    serde_json::from_slice(&text).map_err(|e| ApiError::bad_request(format!("the body is not a valid request: {e}")))
}

/// The number tokens of the JSON text `bytes`, outside its strings (a
/// linear scan; malformed JSON is left to the parser).
fn numbers(bytes: &[u8]) -> Vec<Range<usize>> {
    let (mut out, mut in_string, mut escaped, mut start) = (Vec::new(), false, false, None::<usize>);
    for (i, &b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E') && start.is_some() || b == b'-' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(s..i);
        }
        in_string = b == b'"';
    }
    out
}

/// The integer a JSON number token written with a fraction or an exponent
/// stands for, in plain digits, when it is one (`2.50e1` -> `25`); `None`
/// when it is written as an integer already, is not integral, or is
/// absurdly long.
fn exact_integer(token: &str) -> Option<String> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    if !token.contains(['.', 'e', 'E']) {
        return None;
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = [whole, fraction].concat();
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    // The value is `digits` x 10^(exponent - fraction.len()).
    let shift = exponent.checked_sub(fraction.len() as i64)?;
    let integer = if shift >= 0 {
        if digits.len() as i64 + shift > 40 {
            return None;
        }
        format!("{digits}{}", "0".repeat(shift as usize))
    } else {
        let cut = digits.len() as i64 + shift;
        let (int, frac) = if cut <= 0 { ("", digits) } else { digits.split_at(cut as usize) };
        if !frac.bytes().all(|b| b == b'0') {
            return None;
        }
        if int.is_empty() {
            "0".to_string()
        } else {
            int.to_string()
        }
    };
    Some(if negative && integer != "0" { format!("-{integer}") } else { integer })
}

/// `bytes` with every integral number written as an integer.
fn integral_numbers_as_integers(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for range in numbers(bytes) {
        let Some(integer) = std::str::from_utf8(&bytes[range.clone()]).ok().and_then(exact_integer) else {
            continue;
        };
        let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
        buf.extend_from_slice(&bytes[copied..range.start]);
        buf.extend_from_slice(integer.as_bytes());
        copied = range.end;
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&bytes[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(bytes),
    }
}

/// An integer in the JSON text `bytes` (outside its strings) beyond the
/// 64-bit signed range, if there is one.
fn integer_beyond_i64(bytes: &[u8]) -> Option<String> {
    numbers(bytes).into_iter().find_map(|range| {
        let token = std::str::from_utf8(&bytes[range]).ok()?;
        if token.contains(['.', 'e', 'E']) {
            return None;
        }
        let digits = token.trim_start_matches('-');
        let fits = match token.starts_with('-') {
            true => digits.parse::<u64>().is_ok_and(|n| n <= i64::MIN.unsigned_abs()),
            false => digits.parse::<i64>().is_ok(),
        };
        (!fits && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| token.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_are_found_outside_strings_only() {
        assert_eq!(integer_beyond_i64(br#"{"a": 9223372036854775808}"#).as_deref(), Some("9223372036854775808"));
        assert_eq!(integer_beyond_i64(br#"{"a": 9223372036854775807}"#), None);
        assert_eq!(integer_beyond_i64(br#"{"a": "99999999999999999999"}"#), None);
        assert_eq!(integer_beyond_i64(br#"{"a": "\"99999999999999999999"}"#), None);
        assert_eq!(integer_beyond_i64(br#"{"a": 1.99999999999999999999, "b": 1e99999999999999999999}"#), None);
        assert_eq!(integer_beyond_i64(br#"[-1, 2, 99999999999999999999]"#).as_deref(), Some("99999999999999999999"));
        assert_eq!(integer_beyond_i64(br#"{"t": -9223372036854775808}"#), None);
        assert_eq!(integer_beyond_i64(br#"{"t": -9223372036854775809}"#).as_deref(), Some("-9223372036854775809"));
    }

    #[test]
    fn integral_numbers_are_rewritten_exactly() {
        for (token, integer) in [
            ("360.0", Some("360")),
            ("2251799813685247.0", Some("2251799813685247")),
            ("9007199254740993.0", Some("9007199254740993")),
            ("3.6e2", Some("360")),
            ("2.50E+1", Some("25")),
            ("1e3", Some("1000")),
            ("-4.0", Some("-4")),
            ("-0.0", Some("0")),
            ("0.000", Some("0")),
            ("1500e-3", None),
            ("1000e-3", Some("1")),
            ("1.5", None),
            ("1e-1", None),
            ("42", None),
            ("1e400", None),
        ] {
            assert_eq!(exact_integer(token).as_deref(), integer, "{token}");
        }
        let text = br#"{"a": 360.0, "b": [1.5, 2.0e0], "c": "3.0", "d": 9223372036854775807.0}"#;
        assert_eq!(
            &*integral_numbers_as_integers(text),
            br#"{"a": 360, "b": [1.5, 2], "c": "3.0", "d": 9223372036854775807}"#.as_slice()
        );
        assert_eq!(
            integer_beyond_i64(&integral_numbers_as_integers(br#"{"a": 1e19}"#)).as_deref(),
            Some("10000000000000000000")
        );
    }

    #[test]
    fn only_objects_are_bodies() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Two {
            a: Option<u64>,
            b: Option<u64>,
        }
        assert!(read::<Two>(b"[null, null]").is_err());
        assert!(read::<Two>(b" {\"a\": 1.0}").is_ok_and(|t| t.a == Some(1)));
        assert!(read::<Two>(b"{\"a\": 1.5}").is_err());
    }
}
