//! The content-addressed code cache: component bytes under their SHA-256,
//! and the engine's precompiled code under SHA-256 plus a hash of the
//! engine's compilation settings. It survives restarts, so a component is
//! compiled once per machine and engine configuration, not once per start.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Component bytes and precompiled code, keyed by content.
pub struct CodeCache {
    blobs: PathBuf,
    compiled: PathBuf,
    compilations: AtomicU64,
    hits: AtomicU64,
}

/// How often the cache compiled and how often it reused precompiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Components compiled by this process.
    pub compilations: u64,
    /// Components loaded from precompiled code.
    pub hits: u64,
}

/// Write `bytes` to `path` atomically (temp file, then rename), so a crash
/// never leaves a truncated file under a valid name. The temp name is unique
/// per write: two threads (or processes) sharing one cache may compile the
/// same component at once, and each must rename its own complete file.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

impl CodeCache {
    /// A cache keeping component bytes in `blobs` and compiled code in
    /// `compiled` (created if missing), for any engine: compiled code is
    /// filed under the settings of the engine that compiled it.
    pub fn open(blobs: PathBuf, compiled: PathBuf) -> io::Result<CodeCache> {
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&compiled)?;
        Ok(CodeCache { blobs, compiled, compilations: AtomicU64::new(0), hits: AtomicU64::new(0) })
    }

    /// Keep the component bytes (idempotent).
    pub fn put_bytes(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.blobs.join(format!("{digest}.wasm"));
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, bytes)
    }

    /// Whether the bytes of `digest` are kept here.
    pub fn has_bytes(&self, digest: &str) -> bool {
        self.blobs.join(format!("{digest}.wasm")).exists()
    }

    /// The component bytes stored under `digest`.
    pub fn get_bytes(&self, digest: &str) -> io::Result<Vec<u8>> {
        fs::read(self.blobs.join(format!("{digest}.wasm")))
    }

    /// Keep a small description of `digest`'s component (what `kind`
    /// names: its exports, say), which any engine's code shares.
    pub fn put_note(&self, digest: &str, kind: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.compiled.join(format!("{digest}.{kind}.json")), bytes)
    }

    /// The description of `digest`'s component that [`Self::put_note`]
    /// kept under `kind`, if there is one.
    pub fn note(&self, digest: &str, kind: &str) -> Option<Vec<u8>> {
        fs::read(self.compiled.join(format!("{digest}.{kind}.json"))).ok()
    }

    fn compiled_path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        self.compiled.join(format!("{digest}-{:016x}.cwasm", h.finish()))
    }

    /// Whether the cache has `digest` precompiled for `engine`.
    pub fn has_compiled(&self, engine: &Engine, digest: &str) -> bool {
        self.compiled_path(engine, digest).exists()
    }

    /// The compiled component for `digest`: precompiled code when the cache
    /// has it, else compiled from `bytes` (or the stored bytes) and cached.
    pub fn component(&self, engine: &Engine, digest: &str, bytes: Option<&[u8]>) -> wasmtime::Result<Component> {
        let path = self.compiled_path(engine, digest);
        if path.exists() {
            match load_precompiled(engine, &path) {
                Ok(c) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "precompiled code unusable; recompiling"),
            }
        }
        let owned;
        let bytes = match bytes {
            Some(b) => b,
            None => {
                owned = self.get_bytes(digest)?;
                &owned
            }
        };
        let component = Component::new(engine, bytes)?;
        self.compilations.fetch_add(1, Ordering::Relaxed);
        write_atomic(&path, &component.serialize()?)?;
        Ok(component)
    }

    /// Counters since this cache was opened.
    pub fn stats(&self) -> CacheStats {
        CacheStats { compilations: self.compilations.load(Ordering::Relaxed), hits: self.hits.load(Ordering::Relaxed) }
    }
}

/// Load code this cache wrote.
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of an engine
    // with the same compatibility hash (part of its name) and written
    // atomically into the host's own data directory; wasmtime further
    // checks its header and engine compatibility on load.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests share one compile cache, so two threads may write the same
    /// compiled file at once; each write must still succeed and leave a
    /// whole file.
    #[test]
    fn concurrent_writes_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("same.cwasm");
        let payload = vec![7u8; 256 * 1024];
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        write_atomic(&path, &payload).unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read(&path).unwrap(), payload);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp files left behind");
    }
}
