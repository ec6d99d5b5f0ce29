//! Agent identifiers: the names of the principals that own artifacts, call
//! them and hold balances.

use serde::{Deserialize, Serialize};

/// A validated agent id: 1 to 64 characters of `a-z`, `0-9`, `-`, `_`.
/// System accounts (`@mint`, `@consumed`) can never be agent ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentId(String);

/// An agent id that is not well formed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid agent id `{0}`: use 1 to 64 characters of a-z, 0-9, '-' and '_'")]
pub struct InvalidAgentId(pub String);

impl AgentId {
    /// Validate `id`.
    pub fn new(id: impl Into<String>) -> Result<AgentId, InvalidAgentId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(AgentId(id))
        } else {
            Err(InvalidAgentId(id))
        }
    }

    /// An id read back from storage, validated when it was written (a
    /// storage backend's use; anything else goes through [`AgentId::new`]).
    pub fn trusted(id: String) -> AgentId {
        AgentId(id)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AgentId {
    type Error = InvalidAgentId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AgentId::new(s)
    }
}

impl TryFrom<&str> for AgentId {
    type Error = InvalidAgentId;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        AgentId::new(s)
    }
}

impl From<AgentId> for String {
    fn from(a: AgentId) -> String {
        a.0
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
