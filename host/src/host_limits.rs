//! What the host accepts from outside: the most an artifact's manifest may
//! ask for and a request may carry ([`HostLimits`]), and the grammar of the
//! ids callers choose ([`check_id`]).
//!
//! A manifest asking for more than the host allows is refused at upload,
//! naming the field, the host's maximum and how to change it; a request
//! over a limit is refused before anything is charged. Artifacts stored
//! before a maximum was lowered keep running, held to the new maximum.

use serde::{Deserialize, Serialize};

/// The most a manifest may ask for, per call, and what the host allows
/// each agent at once. Every field documents its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostLimits {
    /// Most fuel one call may be given (`limits.fuel`). Default:
    /// 10,000,000,000,000.
    pub max_fuel: u64,
    /// Longest wall-clock timeout of one call, ms (`limits.timeout_ms`).
    /// Default: 3,600,000 (one hour).
    pub max_timeout_ms: u64,
    /// Highest price of one call, scrip (`price`). Default:
    /// 1,000,000,000,000.
    pub max_price: u64,
    /// Largest input of one call, bytes (`limits.input_bytes`). Default:
    /// 16 MiB.
    pub max_input_bytes: u64,
    /// Largest output of one call, bytes (`limits.output_bytes`). Default:
    /// 16 MiB.
    pub max_output_bytes: u64,
    /// Most bytes one call may log (`limits.log_bytes`). Default: 1 MiB.
    pub max_log_bytes: u64,
    /// Most lines one call may log (`limits.log_lines`). Default: 10,000.
    pub max_log_lines: u64,
    /// Most nested invocations one call may make (`limits.nested_calls`).
    /// Default: 1,000.
    pub max_nested_calls: u64,
    /// Most files, directories and links in one agent's directory; a
    /// create past it fails with WASI's `quota` error. Default: 10,000.
    pub max_dir_entries: u64,
    /// Most calls (nested ones included) one agent may have running at
    /// once; past it a call is refused `busy`, so no agent can hold every
    /// instance slot: a quarter of them always stays for the others.
    /// Default: three quarters of the instance slots, at least 1 (`0` here
    /// means that default).
    pub max_calls_per_agent: u32,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_fuel: 10_000_000_000_000,
            max_timeout_ms: 3_600_000,
            max_price: 1_000_000_000_000,
            max_input_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            max_log_bytes: 1 << 20,
            max_log_lines: 10_000,
            max_nested_calls: 1_000,
            max_dir_entries: 10_000,
            max_calls_per_agent: 0,
        }
    }
}

impl HostLimits {
    /// Calls one agent may run at once with `slots` instance slots.
    pub fn calls_per_agent(&self, slots: u32) -> u32 {
        match self.max_calls_per_agent {
            0 => (slots - slots / 4).max(1),
            n => n.min(slots).max(1),
        }
    }
}

/// Longest id a caller may choose, bytes.
pub const MAX_ID_LEN: usize = 128;

/// Check an id a caller chose (an invocation id, a task id): 1 to
/// [`MAX_ID_LEN`] characters of `A-Z a-z 0-9 . _ : -`, not starting with
/// `.`. Ids the host makes contain `/` (a nested call is `<id>/n<k>`, a
/// task's attempt `task/<id>/<k>`), which this grammar excludes, so a
/// caller's id can never collide with one the host made. `what` names the
/// id in the message.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("{what} must be 1 to {MAX_ID_LEN} characters long (it is {})", id.len()));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))) {
        return Err(format!(
            "{what} `{}` contains {bad:?}: use only A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            id.escape_debug()
        ));
    }
    if id.starts_with('.') {
        return Err(format!("{what} `{id}` must not start with '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_a_safe_charset_and_never_a_host_made_shape() {
        for ok in ["inv-1", "job.2026-12-06:a_b", "A", &"x".repeat(MAX_ID_LEN)] {
            assert_eq!(check_id("id", ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/n1", "task/x/1", "..", ".hidden", "a\0b", "a b", "é", &"x".repeat(MAX_ID_LEN + 1)] {
            assert!(check_id("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_id("invocation id", "a/b").unwrap_err().contains("'/'"));
    }

    #[test]
    fn one_agent_leaves_a_quarter_of_the_slots_to_the_others_by_default() {
        let l = HostLimits::default();
        assert_eq!((l.calls_per_agent(64), l.calls_per_agent(2), l.calls_per_agent(1)), (48, 2, 1));
        let l = HostLimits { max_calls_per_agent: 100, ..l };
        assert_eq!(l.calls_per_agent(8), 8);
    }
}
