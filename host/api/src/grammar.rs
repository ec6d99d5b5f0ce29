//! The grammar of the values the API reads: one type per kind of value,
//! each carrying both its check and its OpenAPI schema, so that the
//! document and the server accept exactly the same values.
//!
//! - [`AgentId`](fuelhost::AgentId), 1 to 64 characters of `a-z 0-9 - _`;
//! - [`ClientId`], an id a caller chooses (a transfer's, a grant's, an
//!   invocation's, ...), see [`fuelhost::check_id`];
//! - [`ArtifactRef`], `owner/name@version`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// An agent id's pattern.
pub const AGENT_ID: &str = "^[a-z0-9_-]{1,64}$";

/// The largest integer a request may carry (the ledger keeps 64-bit
/// signed integers): `JsonBody` refuses a larger one anywhere in a body.
pub const MAX_INTEGER: i64 = i64::MAX;

/// Action kinds the host puts to the policy chain.
pub const ACTION_KINDS: [&str; 8] =
    ["invoke", "upload", "transfer", "approve", "file-open", "http-request", "http-connect", "task-submit"];

/// The pattern of an id a caller chooses ([`fuelhost::check_id`]).
pub const CLIENT_ID: &str = "^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$";

/// An artifact id's pattern: `owner/name@version`.
pub const ARTIFACT_ID: &str = "^[a-z0-9_-]{1,64}/[a-z0-9_-]{1,64}@[A-Za-z0-9.+-]{1,32}$";

/// The pattern of an artifact's `name@version`, in a path.
pub const NAME_VERSION: &str = "^[a-z0-9_-]{1,64}@[A-Za-z0-9.+-]{1,32}$";

/// An API key id's pattern.
pub const KEY_ID: &str = "^k_[0-9a-f]{12}$";

/// A string schema with `pattern`, described by `description`.
pub fn pattern(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).into()
}

/// The schema of an [`AgentId`](fuelhost::AgentId) (a type of the host crate, described here).
pub struct AgentIdSchema;

impl PartialSchema for AgentIdSchema {
    fn schema() -> RefOr<Schema> {
        pattern(AGENT_ID, "An agent id: 1 to 64 characters of a-z, 0-9, '-' and '_'.")
    }
}

impl ToSchema for AgentIdSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AgentId")
    }
}

/// An id a caller chooses: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`,
/// not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        fuelhost::check_id("the id", &s)?;
        Ok(ClientId(s))
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> String {
        id.0
    }
}

impl PartialSchema for ClientId {
    fn schema() -> RefOr<Schema> {
        pattern(CLIENT_ID, "An id the caller chooses: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-', not starting with '.'.")
    }
}

impl ToSchema for ClientId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ClientId")
    }
}

/// An artifact id, `owner/name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactRef(String);

impl ArtifactRef {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is `owner/name@version` as manifests make them.
pub fn is_artifact_id(s: &str) -> bool {
    let Some((owner, rest)) = s.split_once('/') else { return false };
    let Some((name, version)) = rest.split_once('@') else { return false };
    let name_ok = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    name_ok(owner)
        && name_ok(name)
        && (1..=32).contains(&version.len())
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-')
}

impl TryFrom<String> for ArtifactRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if is_artifact_id(&s) {
            Ok(ArtifactRef(s))
        } else {
            Err(format!("`{}` is not an artifact id: use owner/name@version", s.escape_debug()))
        }
    }
}

impl From<ArtifactRef> for String {
    fn from(a: ArtifactRef) -> String {
        a.0
    }
}

impl PartialSchema for ArtifactRef {
    fn schema() -> RefOr<Schema> {
        pattern(ARTIFACT_ID, "An artifact id: owner/name@version.")
    }
}

impl ToSchema for ArtifactRef {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ArtifactRef")
    }
}

/// The schema of an [`Asset`](fuelhost::Asset).
pub struct AssetSchema;

impl PartialSchema for AssetSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["scrip", "fuel", "disk_bytes", "llm_tokens"]))
            .description(Some("An asset: scrip (money), or a resource budget: fuel, disk_bytes, llm_tokens."))
            .into()
    }
}

impl ToSchema for AssetSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Asset")
    }
}
