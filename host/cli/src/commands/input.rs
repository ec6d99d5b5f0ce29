//! What commands read before they send: files (or stdin) parsed as the
//! request they hold, so a bad file is a local error naming it; ids and
//! names checked by the API's grammar; fresh ids for requests that are
//! idempotent by id.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;

use crate::client::random_hex;
use fuelhost_api::grammar::{ArtifactRef, ClientId};
use fuelhost_api::{AgentId, Asset};

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
    serde_json::from_slice(&bytes).map_err(|e| anyhow!("{} is not {what}: {e}", name_of(path)))
}

/// The TOML file at `path` read as `T` (`what` as for [`read_json`]).
pub(super) fn read_toml<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = String::from_utf8(read_input(path)?).map_err(|_| anyhow!("{} is not UTF-8", name_of(path)))?;
    toml::from_str(&text).map_err(|e| anyhow!("{} is not {what}: {e}", name_of(path)))
}

/// `id` as an id a caller chooses, or what is wrong with it.
pub(super) fn client_id(id: String) -> Result<ClientId> {
    ClientId::try_from(id).map_err(|e| anyhow!(e))
}

/// `id` as an artifact id (`owner/name@version`), or what is wrong with it.
pub(super) fn artifact_ref(id: String) -> Result<ArtifactRef> {
    ArtifactRef::try_from(id).map_err(|e| anyhow!(e))
}

/// `id` as an agent id, or what is wrong with it.
pub(super) fn agent_id(id: String) -> Result<AgentId> {
    AgentId::try_from(id).map_err(|e| anyhow!(e))
}

/// The asset named `name`.
pub(super) fn asset(name: &str) -> Result<Asset> {
    Asset::parse(name)
        .ok_or_else(|| anyhow!("`{}` is not an asset: use scrip, fuel or disk_bytes", name.escape_debug()))
}

/// `id`, or a fresh one starting with `prefix` (`mint-3f09a1c2e4b5d6f7`).
pub(super) fn id_or_fresh(id: Option<String>, prefix: &str) -> Result<ClientId> {
    client_id(id.unwrap_or_else(|| format!("{prefix}-{}", random_hex(8))))
}

/// The route of the artifact `id` (`/v1/artifacts/OWNER/NAME@VERSION`).
pub(super) fn artifact_path(id: String) -> Result<String> {
    Ok(format!("/v1/artifacts/{}", artifact_ref(id)?.as_str()))
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
}
