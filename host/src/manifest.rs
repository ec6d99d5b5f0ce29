//! The artifact manifest: what an uploader declares about a component (who
//! owns it, what it costs, who pays for its resources, its limits). Plain
//! serde with `deny_unknown_fields`, readable as TOML or JSON.

use serde::{Deserialize, Serialize};

use crate::host_limits::HostLimits;
use fuelhost_ledger::AgentId;
pub use fuelhost_ledger::ResourcePolicy;
pub use fuelhost_runtime::Metering;

/// Per-invocation limits an artifact declares. Every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most fuel one call may burn. Default: 1,000,000,000.
    pub fuel: u64,
    /// Most linear memory, in bytes, summed over the component's memories.
    /// Default: 256 MiB.
    pub memory_bytes: u64,
    /// Wall-clock deadline of one call, in milliseconds. Default: 10,000.
    /// Under deterministic fuel (`EngineSettings::deterministic_fuel`) a
    /// fuel-metered call's timeout is counted in fuel instead, at the cost
    /// model's rate.
    pub timeout_ms: u64,
    /// Largest input one call takes, bytes; a larger one is refused before
    /// anything is charged. Default: 1 MiB.
    pub input_bytes: u64,
    /// Largest output one call may return, bytes; a larger one ends the
    /// call `output_limit` (charged what it burned, no price). Default:
    /// 1 MiB.
    pub output_bytes: u64,
    /// Most bytes one call may log through the `log` import; past it the
    /// call ends `log_limit`. Default: 64 KiB.
    pub log_bytes: u64,
    /// Most lines one call may log; past it the call ends `log_limit`.
    /// Default: 1,000.
    pub log_lines: u64,
    /// Most nested invocations one call may make; past it the `invoke`
    /// import answers `unavailable`. Default: 64.
    pub nested_calls: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 1_000_000_000,
            memory_bytes: 256 << 20,
            timeout_ms: 10_000,
            input_bytes: 1 << 20,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
            log_lines: 1_000,
            nested_calls: 64,
        }
    }
}

impl Limits {
    /// These limits held to the host's maxima (an artifact stored before a
    /// maximum was lowered runs under the new one).
    pub fn within(&self, host: &HostLimits, max_memory_bytes: u64) -> Limits {
        Limits {
            fuel: self.fuel.min(host.max_fuel),
            memory_bytes: self.memory_bytes.min(max_memory_bytes),
            timeout_ms: self.timeout_ms.min(host.max_timeout_ms),
            input_bytes: self.input_bytes.min(host.max_input_bytes),
            output_bytes: self.output_bytes.min(host.max_output_bytes),
            log_bytes: self.log_bytes.min(host.max_log_bytes),
            log_lines: self.log_lines.min(host.max_log_lines),
            nested_calls: self.nested_calls.min(host.max_nested_calls),
        }
    }
}

/// What an uploader declares about an artifact.
///
/// ```toml
/// owner = "alice"
/// name = "echo"
/// version = "0.1.0"
/// price = 5
/// resource_policy = "caller_pays"
/// [limits]
/// fuel = 50_000_000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The agent that owns the artifact and receives its price.
    pub owner: AgentId,
    /// Name, unique per owner: 1 to 64 characters of `a-z`, `0-9`, `-`, `_`.
    pub name: String,
    /// Version; an uploaded version is immutable, publish a new one instead.
    pub version: String,
    /// Scrip the caller pays the owner for each successful call.
    #[serde(default)]
    pub price: u64,
    /// Who pays for resources.
    pub resource_policy: ResourcePolicy,
    /// One line saying what the artifact does.
    #[serde(default)]
    pub description: String,
    /// Limits per call.
    #[serde(default)]
    pub limits: Limits,
    /// How calls are metered: `fuel` (the default) or `cpu_time`.
    #[serde(default)]
    pub metering: Metering,
    /// What the artifact can do (`summarize`, `translate`, ...): a task
    /// that names a capability instead of an artifact is handed to one of
    /// the artifacts declaring it. At most 16, each like a name.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The owner's claim of the artifact's quality, 0 to 100 (default 50),
    /// one of the four things routing by capability weighs.
    #[serde(default)]
    pub quality: Option<u8>,
    /// For a `wasi:cli/command` artifact: the arguments and environment
    /// its `main` starts with (`[command]`).
    #[serde(default, skip_serializing_if = "CommandStart::is_empty")]
    pub command: CommandStart,
}

/// What a `wasi:cli/command` artifact starts with: the arguments after
/// its name (`args`) and its environment (`env`). Nothing of the host's
/// own environment reaches it.
///
/// ```toml
/// [command]
/// args = ["--verbose"]
/// env = { LANG = "C" }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandStart {
    /// Arguments after the program's name (at most 64, each at most 4 KiB).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables (at most 64; names without `=`, values at
    /// most 4 KiB).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
}

impl CommandStart {
    /// Whether it sets nothing (then the manifest does not show it).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty() && self.env.is_empty()
    }
}

/// A manifest that cannot be accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// The text is not a valid manifest.
    #[error("manifest is not valid: {0}")]
    Parse(String),
    /// A field has a value outside its range.
    #[error("manifest field `{field}`: {problem}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
}

/// Whether `s` is a name (an artifact's, a capability's): 1 to 64
/// characters of `a-z`, `0-9`, `-`, `_`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+')
}

impl Manifest {
    /// Parse a TOML manifest and check it.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Parse a JSON manifest and check it.
    pub fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Check every field's range.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let field = |field, problem: &str| Err(ManifestError::Field { field, problem: problem.to_string() });
        if !valid_name(&self.name) {
            return field("name", "use 1 to 64 characters of a-z, 0-9, '-' and '_'");
        }
        if !valid_version(&self.version) {
            return field("version", "use 1 to 32 characters of letters, digits, '.', '-' and '+'");
        }
        if self.price > i64::MAX as u64 {
            return field("price", "must be at most 9223372036854775807");
        }
        if self.limits.fuel == 0 || self.limits.fuel > i64::MAX as u64 {
            return field("limits.fuel", "must be between 1 and 9223372036854775807");
        }
        if self.limits.memory_bytes < 64 << 10 {
            return field("limits.memory_bytes", "must be at least 65536 (one wasm page)");
        }
        if self.limits.timeout_ms == 0 || self.limits.timeout_ms > 3_600_000 {
            return field("limits.timeout_ms", "must be between 1 and 3600000 (one hour)");
        }
        if self.capabilities.len() > 16 || !self.capabilities.iter().all(|c| valid_name(c)) {
            return field("capabilities", "at most 16, each 1 to 64 characters of a-z, 0-9, '-' and '_'");
        }
        if self.quality.is_some_and(|q| q > 100) {
            return field("quality", "must be between 0 and 100");
        }
        if self.command.args.len() > 64 || self.command.args.iter().any(|a| a.len() > 4096) {
            return field("command.args", "at most 64 arguments, each at most 4096 bytes");
        }
        let bad_name = |k: &str| k.is_empty() || k.contains('=') || k.contains('\0');
        if self.command.env.len() > 64 || self.command.env.iter().any(|(k, v)| bad_name(k) || v.len() > 4096) {
            return field(
                "command.env",
                "at most 64 variables, each named without '=' (and not empty), each value at most 4096 bytes",
            );
        }
        Ok(())
    }

    /// Check the manifest against what this host allows (`host`, and the
    /// engine's largest memory): each field over its maximum is refused,
    /// naming the maximum and the setting that raises it.
    pub fn validate_within(&self, host: &HostLimits, max_memory_bytes: u64) -> Result<(), ManifestError> {
        let over = |field: &'static str, asked: u64, max: u64, setting: &str| {
            if asked > max {
                Err(ManifestError::Field {
                    field,
                    problem: format!(
                        "{asked} is over this host's maximum of {max}; ask for at most {max}, or have the operator \
                         raise `{setting}`"
                    ),
                })
            } else {
                Ok(())
            }
        };
        let l = &self.limits;
        over("price", self.price, host.max_price, "max_price")?;
        over("limits.fuel", l.fuel, host.max_fuel, "max_fuel")?;
        over("limits.memory_bytes", l.memory_bytes, max_memory_bytes, "max_memory_bytes")?;
        over("limits.timeout_ms", l.timeout_ms, host.max_timeout_ms, "max_timeout_ms")?;
        over("limits.input_bytes", l.input_bytes, host.max_input_bytes, "max_input_bytes")?;
        over("limits.output_bytes", l.output_bytes, host.max_output_bytes, "max_output_bytes")?;
        over("limits.log_bytes", l.log_bytes, host.max_log_bytes, "max_log_bytes")?;
        over("limits.log_lines", l.log_lines, host.max_log_lines, "max_log_lines")?;
        over("limits.nested_calls", l.nested_calls, host.max_nested_calls, "max_nested_calls")
    }

    /// The artifact id: `owner/name@version`.
    pub fn artifact_id(&self) -> String {
        format!("{}/{}@{}", self.owner, self.name, self.version)
    }
}
