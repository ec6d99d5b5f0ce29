//! How a guest's output bytes travel in JSON: once, as text when they are
//! UTF-8 (`"output": "..."`), else as base64 (`"output_base64": "..."`);
//! exactly one of the two is present. Used with
//! `#[serde(flatten, with = "crate::guest_output")]` on a `Vec<u8>` field.

use base64::Engine as _;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serializer};

/// Serialize `bytes` as one entry: `output` (text) or `output_base64`.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    match std::str::from_utf8(bytes) {
        Ok(text) => map.serialize_entry("output", text)?,
        Err(_) => map.serialize_entry("output_base64", &base64::engine::general_purpose::STANDARD.encode(bytes))?,
    }
    map.end()
}

/// Read what [`serialize`] wrote (neither field: no output).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    #[derive(Deserialize)]
    struct Wire {
        output: Option<String>,
        output_base64: Option<String>,
    }
    let wire = Wire::deserialize(deserializer)?;
    match (wire.output, wire.output_base64) {
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).map_err(D::Error::custom),
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err(D::Error::custom("give `output` or `output_base64`, not both")),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Report {
        id: u32,
        #[serde(flatten, with = "super")]
        output: Vec<u8>,
    }

    #[test]
    fn text_travels_as_text_and_bytes_as_base64_once() {
        let text = Report { id: 1, output: b"hi".to_vec() };
        assert_eq!(serde_json::to_string(&text).unwrap(), r#"{"id":1,"output":"hi"}"#);
        let bytes = Report { id: 2, output: vec![0xff, 0] };
        assert_eq!(serde_json::to_string(&bytes).unwrap(), r#"{"id":2,"output_base64":"/wA="}"#);
        for r in [text, bytes] {
            let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
    }
}
