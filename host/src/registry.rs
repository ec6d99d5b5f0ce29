//! The registry: artifacts and policy plugins as uploaded components.
//!
//! An upload is checked (size, manifest, owner, id free), recognised as a
//! component, compiled once through the [`CodeCache`], linked against the
//! world it claims (every import satisfiable, every export present and of
//! the right type) and only then recorded in the database. A refused
//! upload leaves the registry as it was. Each artifact keeps an
//! [`ArtifactPre`] so an invocation only instantiates.
//!
//! At start, a stored artifact whose precompiled code is in the cache is
//! loaded at once; one whose code must be compiled is held *cold*: the
//! host compiles it in the background once it serves ([`Registry::warm_one`]),
//! or its first call does ([`Registry::get`]), so a start with a cold
//! compile cache serves at once instead of compiling every artifact
//! first. [`Registry::warming`] says how many are left.
//!
//! Loaded code costs memory and mappings (about 210 KiB and 3 mappings for
//! a small Rust artifact; `vm.max_map_count` stops a process near 65,000
//! mappings), so at most `max_loaded` artifacts are held loaded. Past
//! that, the ones called least recently are unloaded (held cold again,
//! their code still in the compile cache) and loaded again, from the
//! cache, by their next call. Artifacts of the same bytes share their code
//! ([`Registry::linked`]), so only distinct code is costly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use fuelhost_store::{self as store, params, Backend, Commit, Sql, StoreError};
use serde::Serialize;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::Engine;
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::p3::bindings::CommandPre as AsyncCommandPre;
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::bindings::artifact::ArtifactPre;
use crate::error::{HostError, UploadError};
use crate::manifest::{Manifest, Metering};
use crate::sandbox::Sandbox;
use crate::typed::ExportedFunction;
use fuelhost_ledger::now_ms;
use fuelhost_policy::PolicyPlugin;
use fuelhost_policy::PolicyPluginPre;
use fuelhost_runtime::Engines;
use fuelhost_runtime::{digest, CodeCache};

/// What the registry knows about an uploaded artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ArtifactInfo {
    /// `owner/name@version`.
    pub id: String,
    /// As uploaded.
    pub manifest: Manifest,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// Size of the component, bytes.
    pub size: usize,
    /// When it was uploaded, Unix ms.
    pub uploaded_ms: i64,
}

/// An artifact ready to instantiate.
pub struct LoadedArtifact {
    /// Its metadata.
    pub info: ArtifactInfo,
    /// Its compiled and linked code, shared with every other artifact of
    /// the same bytes and metering.
    pub(crate) pre: Arc<Code>,
}

impl LoadedArtifact {
    /// How it is called: `run` (the `artifact` world), `exports` (its
    /// functions, by name), `command` (`wasi:cli/command`) or `http`
    /// (`wasi:http/proxy`).
    pub fn kind(&self) -> &'static str {
        self.pre.kind()
    }

    /// How it is called: its kind and exports.
    pub fn interface(&self) -> Interface {
        self.pre.interface()
    }
}

/// How an artifact is called, read from its component's type: what
/// listings show (`GET /v1/artifacts/{id}`, MCP's `tools/list`) without
/// loading its code. The same for every artifact of the same bytes, kept
/// beside the compiled code (`CodeCache::put_note`) once it was linked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interface {
    /// `run`, `exports`, `command` or `http` (see [`LoadedArtifact::kind`]).
    pub kind: String,
    /// Its functions called by name (for `exports`; else none).
    pub exports: Vec<ExportedFunction>,
}

/// The name an [`Interface`] is kept under in the code cache.
const INTERFACE_NOTE: &str = "interface";

/// An artifact's linked code, and how an invocation calls it.
pub(crate) enum Code {
    /// Of the `artifact` world: `run(input)` returns the output.
    Run(ArtifactPre<Sandbox>),
    /// Functions of its own interfaces (or top-level ones), called by name
    /// with JSON arguments, their results returned as JSON (see `typed`).
    Exports {
        /// Linked, ready to instantiate.
        pre: InstancePre<Sandbox>,
        /// The functions, in the order the component declares them.
        functions: Vec<ExportedFunction>,
        /// Whether it uses component-model-async (an `async func` export,
        /// a WASI 0.3 import): its calls run concurrently
        /// (`fuelhost_runtime::concurrent`).
        concurrent: bool,
    },
    /// A `wasi:cli/command` of WASI 0.2: its `main` runs with the input as
    /// stdin and its stdout as the output; exit code 0 is success.
    Command(CommandPre<Sandbox>),
    /// A `wasi:cli/command` of WASI 0.3 (an async `run`), called as the
    /// WASI 0.2 one is, through `run_concurrent`.
    AsyncCommand(AsyncCommandPre<Sandbox>),
    /// A `wasi:http/proxy`: an HTTP request to its route is handed to its
    /// incoming handler, its response streamed back (see `crate::proxy`).
    Http(ProxyPre<Sandbox>),
    /// A WASI 0.3 HTTP service (`wasi:http/handler@0.3`), called as the
    /// `wasi:http/proxy` one is, through `run_concurrent`.
    AsyncHttp(ServicePre<Sandbox>),
}

/// Interfaces kept in memory at most (a few hundred bytes to some
/// kilobytes each); past it they are read from the code cache again.
const MAX_INTERFACES_KNOWN: usize = 16_384;

impl Code {
    /// How it is called.
    fn interface(&self) -> Interface {
        let exports = match self {
            Code::Exports { functions, .. } => functions.clone(),
            _ => Vec::new(),
        };
        Interface { kind: self.kind().to_string(), exports }
    }

    /// `run`, `exports`, `command` or `http`.
    fn kind(&self) -> &'static str {
        match self {
            Code::Run(_) => "run",
            Code::Exports { .. } => "exports",
            Code::Command(_) | Code::AsyncCommand(_) => "command",
            Code::Http(_) | Code::AsyncHttp(_) => "http",
        }
    }

    /// The engine it was compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Code::Run(pre) => pre.engine(),
            Code::Exports { pre, .. } => pre.engine(),
            Code::Command(pre) => pre.engine(),
            Code::AsyncCommand(pre) => pre.instance_pre().engine(),
            Code::Http(pre) => pre.engine(),
            Code::AsyncHttp(pre) => pre.instance_pre().engine(),
        }
    }
}

/// An artifact as the registry holds it.
enum Entry {
    /// Compiled and linked.
    Ready(Arc<LoadedArtifact>),
    /// Stored, its code not loaded (see the module docs): `compiled` when
    /// the compile cache has it (unloaded to bound the code held), not
    /// when it is still to be compiled.
    Cold { info: Box<ArtifactInfo>, compiled: bool },
}

impl Entry {
    fn info(&self) -> &ArtifactInfo {
        match self {
            Entry::Ready(a) => &a.info,
            Entry::Cold { info, .. } => info,
        }
    }
}

/// An entry and when it was last called (a tick of [`Registry::tick`]).
struct Slot {
    entry: Entry,
    used: AtomicU64,
}

/// Which compiled code an artifact runs: its bytes' digest, on the engine
/// of its metering.
type CodeKey = (String, Metering);

/// Artifacts and plugins, compiled and linked.
pub struct Registry {
    engines: Engines,
    db: Arc<dyn Sql>,
    cache: CodeCache,
    artifact_linker: Linker<Sandbox>,
    /// The artifact linker of the CPU-time engine, made with that engine.
    cpu_time_linker: OnceLock<Linker<Sandbox>>,
    /// The linkers of the concurrent engines (fuel, then CPU time), built
    /// with them: WASI 0.3 too.
    concurrent_linkers: [OnceLock<Linker<Sandbox>>; 2],
    /// How each digest's code is called, for artifacts not loaded (see
    /// [`Registry::interface`]).
    interfaces: Mutex<HashMap<String, Arc<Interface>>>,
    plugin_linker: Linker<fuelhost_policy::PluginStore>,
    artifacts: RwLock<HashMap<String, Slot>>,
    /// How many artifacts are cold because their code is not compiled yet.
    cold: AtomicUsize,
    /// How many artifacts are loaded, and the most that may be.
    loaded: AtomicUsize,
    max_loaded: usize,
    /// Counts calls, to date each slot's last use.
    tick: AtomicU64,
    /// The ids of the artifacts held cold at start, for the background to
    /// compile, each once (one whose code fails to compile is not tried
    /// again until its next call).
    to_warm: Mutex<Vec<String>>,
    /// Held while a cold artifact's code is compiled: the background and a
    /// first call never compile the same code twice.
    compiling: Mutex<()>,
    /// The linked code of each digest in use: a second artifact of the same
    /// bytes maps no code of its own and links nothing again.
    linked: Mutex<HashMap<CodeKey, Weak<Code>>>,
    max_component_bytes: usize,
    /// Held from a change's database write (an upload, a delete, a plugin
    /// stored or removed) until what this host holds agrees with it, and
    /// from a refresh's read until it is applied: a refresh that read the
    /// row before a change here cannot apply it after, which would bring
    /// back an artifact just deleted or a plugin just replaced.
    in_step: Mutex<()>,
}

/// Refuse what is not a component, with a hint for the common mistakes.
fn check_component_header(bytes: &[u8]) -> Result<(), UploadError> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(UploadError::NotAComponent(
            "upload is not a WebAssembly binary (no \\0asm header); upload the .wasm file your build produced".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(UploadError::NotAComponent(
            "upload is a core WebAssembly module, not a component; build for wasm32-wasip2, or wrap it with `wasm-tools component new`".into(),
        ));
    }
    Ok(())
}

/// The component must export `name` as a function.
fn require_func_export(
    engine: &Engine,
    component: &Component,
    name: &str,
    world: &'static str,
) -> Result<(), UploadError> {
    let ty = component.component_type();
    let found: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(n, item)| (n.to_string(), matches!(item.ty, ComponentItem::ComponentFunc(_))))
        .collect();
    match found.iter().find(|(n, _)| n == name) {
        Some((_, true)) => Ok(()),
        Some((_, false)) => Err(UploadError::MissingExport(format!("export `{name}` is not a function"), world)),
        None => Err(UploadError::MissingExport(
            format!(
                "missing export `{name}` (it exports: {})",
                if found.is_empty() {
                    "nothing".to_string()
                } else {
                    found.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                }
            ),
            world,
        )),
    }
}

impl Slot {
    fn new(entry: Entry) -> Slot {
        Slot { entry, used: AtomicU64::new(0) }
    }
}

/// The topic of changes to artifacts (see `fuelhost_store::Tx::notify`):
/// the key is the artifact's id.
pub(crate) const ARTIFACTS: &str = "artifacts";
/// The topic of changes to policy plugins: the key is the plugin's name.
pub(crate) const PLUGINS: &str = "plugins";

/// The columns [`StoredArtifact::from_row`] reads.
const ARTIFACT_COLUMNS: &str = "id, manifest, digest, size, created_ms";

/// An artifact's row.
struct StoredArtifact {
    id: String,
    manifest: String,
    digest: String,
    size: usize,
    uploaded_ms: i64,
}

impl StoredArtifact {
    fn from_row(r: &fuelhost_store::Row) -> Result<StoredArtifact, StoreError> {
        Ok(StoredArtifact {
            id: r.get(0)?,
            manifest: r.get(1)?,
            digest: r.get(2)?,
            size: r.get(3)?,
            uploaded_ms: r.get(4)?,
        })
    }

    /// What the registry knows of it, or why its manifest is unreadable.
    fn info(self) -> Result<ArtifactInfo, String> {
        let manifest = Manifest::from_json(&self.manifest).map_err(|e| e.to_string())?;
        Ok(ArtifactInfo { id: self.id, manifest, digest: self.digest, size: self.size, uploaded_ms: self.uploaded_ms })
    }
}

fn storage(e: impl std::fmt::Display) -> UploadError {
    UploadError::Storage(e.to_string())
}

impl Registry {
    /// Open the registry and load every stored artifact (from precompiled
    /// code when the cache has it).
    pub fn open(
        engines: Engines,
        db: Arc<dyn Sql>,
        cache: CodeCache,
        max_component_bytes: usize,
        max_loaded: usize,
    ) -> Result<Registry, HostError> {
        let artifact_linker = crate::capabilities::artifact_linker(engines.fuel(), false)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        let plugin_linker =
            fuelhost_policy::plugin_linker(engines.policy()).map_err(|e| HostError::Engine(e.to_string()))?;
        let registry = Registry {
            engines,
            cpu_time_linker: OnceLock::new(),
            concurrent_linkers: [OnceLock::new(), OnceLock::new()],
            interfaces: Mutex::new(HashMap::new()),
            db,
            cache,
            artifact_linker,
            plugin_linker,
            artifacts: RwLock::new(HashMap::new()),
            cold: AtomicUsize::new(0),
            loaded: AtomicUsize::new(0),
            max_loaded: max_loaded.max(1),
            tick: AtomicU64::new(0),
            to_warm: Mutex::new(Vec::new()),
            compiling: Mutex::new(()),
            linked: Mutex::new(HashMap::new()),
            max_component_bytes,
            in_step: Mutex::new(()),
        };
        let stored: Vec<StoredArtifact> = store::read(&*registry.db, |tx| {
            tx.query(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts ORDER BY created_ms"), params![])?
                .iter()
                .map(StoredArtifact::from_row)
                .collect::<Result<_, StoreError>>()
        })?;
        for stored in stored {
            let id = stored.id.clone();
            let info = stored.info().map_err(|reason| HostError::Load { id: id.clone(), reason })?;
            let load = |reason: String| HostError::Load { id: id.clone(), reason };
            let compiled = registry.compiled(&info).map_err(|e| load(e.to_string()))?;
            let entry = if compiled && registry.loaded.load(Ordering::SeqCst) < registry.max_loaded {
                let pre =
                    registry.linked(&info.digest, info.manifest.metering, None).map_err(|e| load(e.to_string()))?;
                registry.loaded.fetch_add(1, Ordering::SeqCst);
                Entry::Ready(Arc::new(LoadedArtifact { info, pre }))
            } else {
                if !compiled {
                    registry.cold.fetch_add(1, Ordering::SeqCst);
                    registry.to_warm.lock().unwrap_or_else(|p| p.into_inner()).push(id.clone());
                }
                Entry::Cold { info: Box::new(info), compiled }
            };
            registry.artifacts.write().unwrap_or_else(|p| p.into_inner()).insert(id, Slot::new(entry));
        }
        if registry.cold.load(Ordering::SeqCst) > 0 {
            tracing::info!(
                cold = registry.cold.load(Ordering::SeqCst),
                "artifacts without precompiled code: compiled in the background, or on their first call"
            );
        }
        Ok(registry)
    }

    /// Whether `info`'s code needs no compiling: another artifact of its
    /// bytes runs it, or the cache has it precompiled.
    fn compiled(&self, info: &ArtifactInfo) -> Result<bool, UploadError> {
        let key = (info.digest.clone(), info.manifest.metering);
        if self.linked.lock().unwrap_or_else(|p| p.into_inner()).get(&key).is_some_and(|c| c.strong_count() > 0) {
            return Ok(true);
        }
        let metering = info.manifest.metering;
        Ok(self.cache.has_compiled(self.engine(metering)?, &info.digest)
            || self.engines.concurrent_if_built(metering).is_some_and(|e| self.cache.has_compiled(e, &info.digest)))
    }

    /// How many artifacts still wait for their code to be compiled; `None`
    /// when none does.
    pub fn warming(&self) -> Option<usize> {
        Some(self.cold.load(Ordering::SeqCst)).filter(|&n| n > 0)
    }

    /// Compile the next artifact held cold at start, if any is left;
    /// returns whether one was. The host calls it from a thread of its own
    /// until it returns false.
    pub fn warm_one(&self) -> bool {
        let Some(id) = self.to_warm.lock().unwrap_or_else(|p| p.into_inner()).pop() else { return false };
        let info = match self.artifacts.read().unwrap_or_else(|p| p.into_inner()).get(&id).map(|s| &s.entry) {
            Some(Entry::Cold { info, compiled: false }) => (**info).clone(),
            _ => return true,
        };
        // With the loaded set full, compile into the cache only: loading it
        // would unload an artifact that calls are using.
        let result = if self.loaded.load(Ordering::SeqCst) >= self.max_loaded {
            self.compile_only(&info)
        } else {
            self.load_cold(info, false).map(drop)
        };
        if let Err(e) = result {
            tracing::error!(artifact = %id, error = %e, "compiling a stored artifact failed");
        }
        true
    }

    /// Compile a cold artifact's code into the compile cache and mark it
    /// compiled, without loading it.
    fn compile_only(&self, info: &ArtifactInfo) -> Result<(), UploadError> {
        let _compiling = self.compiling.lock().unwrap_or_else(|p| p.into_inner());
        if !self.compiled(info)? {
            drop(self.artifact_component(info.manifest.metering, &info.digest, None)?);
        }
        let mut artifacts = self.artifacts.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = artifacts.get_mut(&info.id) {
            if let Entry::Cold { info: held, compiled } = &mut slot.entry {
                if **held == *info && !*compiled {
                    *compiled = true;
                    self.cold.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    /// Load a cold artifact's code (compiling it when `compiled` is false:
    /// then under the `compiling` lock, so no code is compiled twice), link
    /// it and hold it ready, unloading the least recently called artifacts
    /// if that makes too many loaded. `Ok(None)`: the artifact was deleted
    /// meanwhile; one uploaded again under its id is the one returned.
    fn load_cold(&self, info: ArtifactInfo, compiled: bool) -> Result<Option<Arc<LoadedArtifact>>, UploadError> {
        let _compiling = (!compiled).then(|| self.compiling.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(Slot { entry: Entry::Ready(a), .. }) =
            self.artifacts.read().unwrap_or_else(|p| p.into_inner()).get(&info.id)
        {
            return Ok(Some(a.clone()));
        }
        let started = std::time::Instant::now();
        let pre = self.linked(&info.digest, info.manifest.metering, None)?;
        let loaded = Arc::new(LoadedArtifact { info, pre });
        let mut artifacts = self.artifacts.write().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = artifacts.get_mut(&loaded.info.id) else { return Ok(None) };
        let (held, was_compiled) = match &slot.entry {
            // Loaded meanwhile (by another call, or uploaded again).
            Entry::Ready(a) => return Ok(Some(a.clone())),
            Entry::Cold { info, compiled } => (info, *compiled),
        };
        if **held != loaded.info {
            // Deleted and uploaded again meanwhile: load what is there now.
            let info = (**held).clone();
            drop(artifacts);
            drop(_compiling);
            return self.load_cold(info, was_compiled);
        }
        if !was_compiled {
            self.cold.fetch_sub(1, Ordering::SeqCst);
            tracing::info!(artifact = %loaded.info.id, ms = started.elapsed().as_millis() as u64, "artifact compiled");
        }
        slot.entry = Entry::Ready(loaded.clone());
        slot.used.store(self.tick.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.loaded.fetch_add(1, Ordering::SeqCst);
        let unloaded = self.unload_over_max(&mut artifacts);
        drop(artifacts);
        // The unloaded code is unmapped here, not under the lock.
        drop(unloaded);
        Ok(Some(loaded))
    }

    /// With more than `max_loaded` artifacts loaded, unload the least
    /// recently called down to seven eighths of it (so that a host calling
    /// more artifacts than it may hold sorts its table once every
    /// `max_loaded / 8` loads, not at each). A call running one holds its
    /// code until it ends.
    /// Returns the unloaded code, for the caller to drop once it has let
    /// the table go.
    fn unload_over_max(&self, artifacts: &mut HashMap<String, Slot>) -> Vec<Entry> {
        let loaded = self.loaded.load(Ordering::SeqCst);
        if loaded <= self.max_loaded {
            return Vec::new();
        }
        let keep = self.max_loaded - self.max_loaded / 8;
        let mut ready: Vec<(u64, &String)> = artifacts
            .iter()
            .filter(|(_, slot)| matches!(slot.entry, Entry::Ready(_)))
            .map(|(id, slot)| (slot.used.load(Ordering::Relaxed), id))
            .collect();
        ready.sort_unstable();
        let oldest: Vec<String> =
            ready[..ready.len().saturating_sub(keep)].iter().map(|(_, id)| (*id).clone()).collect();
        let mut unloaded = Vec::with_capacity(oldest.len());
        for id in &oldest {
            if let Some(slot) = artifacts.get_mut(id) {
                let info = Box::new(slot.entry.info().clone());
                unloaded.push(std::mem::replace(&mut slot.entry, Entry::Cold { info, compiled: true }));
            }
        }
        self.loaded.fetch_sub(unloaded.len(), Ordering::SeqCst);
        tracing::debug!(
            unloaded = unloaded.len(),
            max_loaded = self.max_loaded,
            "unloaded the artifacts called least recently"
        );
        unloaded
    }

    /// How many artifacts are loaded now (at most `max_loaded`).
    pub fn loaded(&self) -> usize {
        self.loaded.load(Ordering::SeqCst)
    }

    /// How many artifacts there are.
    pub fn len(&self) -> usize {
        self.artifacts.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The engine for artifacts metered by `metering`.
    fn engine(&self, metering: Metering) -> Result<&Engine, UploadError> {
        self.engines
            .get(metering)
            .map_err(|e| UploadError::Invalid(format!("building the {} engine: {e:#}", metering.as_str())))
    }

    /// The artifact linker for `metering`'s engine.
    fn artifact_linker(&self, metering: Metering) -> Result<&Linker<Sandbox>, UploadError> {
        match metering {
            Metering::Fuel => Ok(&self.artifact_linker),
            Metering::CpuTime => {
                if let Some(l) = self.cpu_time_linker.get() {
                    return Ok(l);
                }
                let linker = crate::capabilities::artifact_linker(self.engine(metering)?, false)
                    .map_err(|e| UploadError::Invalid(format!("linking the cpu_time engine: {e:#}")))?;
                Ok(self.cpu_time_linker.get_or_init(|| linker))
            }
        }
    }

    /// The concurrent engine for `metering` and its linker, built on first
    /// use.
    fn concurrent_engine(&self, metering: Metering) -> Result<(&Engine, &Linker<Sandbox>), UploadError> {
        let engine = self.engines.concurrent(metering).map_err(|e| {
            UploadError::Invalid(format!("building the concurrent {} engine: {e:#}", metering.as_str()))
        })?;
        let cell = &self.concurrent_linkers[metering as usize];
        if let Some(l) = cell.get() {
            return Ok((engine, l));
        }
        let linker = crate::capabilities::artifact_linker(engine, true)
            .map_err(|e| UploadError::Invalid(format!("linking the concurrent engine: {e:#}")))?;
        Ok((engine, cell.get_or_init(|| linker)))
    }

    /// The compiled artifact component of `digest` (see [`Self::component`]),
    /// and whether it is component-model-async code: compiled for the
    /// engine of its metering, or, when that engine finds it uses
    /// component-model-async or it imports WASI 0.3, for the concurrent
    /// one.
    fn artifact_component(
        &self,
        metering: Metering,
        digest: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Component, bool), UploadError> {
        if let Some(engine) = self.engines.concurrent_if_built(metering) {
            if self.cache.has_compiled(engine, digest) {
                return Ok((self.component(engine, digest, bytes)?, true));
            }
        }
        let engine = self.engine(metering)?;
        match self.component(engine, digest, bytes) {
            // WASI 0.3 is linked on the concurrent engines alone (a
            // component may import its synchronous functions only).
            Ok(component) if !imports_wasi_p3(engine, &component) => Ok((component, false)),
            Err(UploadError::Invalid(why)) if !needs_concurrency(&why) => Err(UploadError::Invalid(why)),
            Err(e) if !matches!(e, UploadError::Invalid(_)) => Err(e),
            _ => {
                let (engine, _) = self.concurrent_engine(metering)?;
                Ok((self.component(engine, digest, bytes)?, true))
            }
        }
    }

    /// What an upload must pass before anything is compiled (or parked for
    /// an approval): the manifest, a known owner, a free id, the size and
    /// the header. The component's digest when it passes.
    pub fn check_upload(&self, manifest: &Manifest, bytes: &[u8], owner_exists: bool) -> Result<String, UploadError> {
        manifest.validate()?;
        if !owner_exists {
            return Err(UploadError::UnknownOwner(manifest.owner.to_string()));
        }
        let id = manifest.artifact_id();
        if self.info(&id).is_some() {
            return Err(UploadError::AlreadyExists(id));
        }
        self.checked_digest(bytes)
    }

    /// The digest of an uploaded component, once its size and header pass.
    fn checked_digest(&self, bytes: &[u8]) -> Result<String, UploadError> {
        if bytes.len() > self.max_component_bytes {
            return Err(UploadError::TooLarge { size: bytes.len(), max: self.max_component_bytes });
        }
        check_component_header(bytes)?;
        Ok(digest(bytes))
    }

    /// The linked code of `digest` for `metering`: the code another
    /// artifact of the same bytes already runs, else loaded from the cache
    /// (compiled from `bytes` when the cache lacks it) and linked now.
    fn linked(&self, digest: &str, metering: Metering, bytes: Option<&[u8]>) -> Result<Arc<Code>, UploadError> {
        let key = (digest.to_string(), metering);
        if let Some(pre) = self.linked.lock().unwrap_or_else(|p| p.into_inner()).get(&key).and_then(Weak::upgrade) {
            return Ok(pre);
        }
        // Compiled and linked outside the lock; two uploads of new bytes at
        // once may both link them, and the later one's is kept.
        let (component, concurrent) = self.artifact_component(metering, digest, bytes)?;
        let pre = Arc::new(self.link_artifact(&component, metering, concurrent)?);
        self.note_interface(digest, &pre);
        let mut linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
        if linked.len() >= 64 && linked.len().is_power_of_two() {
            linked.retain(|_, code| code.strong_count() > 0);
        }
        linked.insert(key, Arc::downgrade(&pre));
        Ok(pre)
    }

    /// Link `component` as an artifact: of the `artifact` world when it
    /// exports `run`, an HTTP handler when it exports
    /// `wasi:http/incoming-handler` (or WASI 0.3's `wasi:http/handler`), a
    /// command when it exports `wasi:cli/run` (of WASI 0.2 or 0.3), else by the functions it
    /// exports (at least one).
    fn link_artifact(&self, component: &Component, metering: Metering, concurrent: bool) -> Result<Code, UploadError> {
        let (engine, linker) = match concurrent {
            false => (self.engine(metering)?, self.artifact_linker(metering)?),
            true => self.concurrent_engine(metering)?,
        };
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| UploadError::UnsatisfiableImport(unlinked_import(engine, component, e), "artifact"))?;
        let exports: Vec<String> = component.component_type().exports(engine).map(|(n, _)| n.to_string()).collect();
        let has_run = exports.iter().any(|n| n == "run");
        if !has_run && exports.iter().any(|n| n.starts_with("wasi:http/handler@0.3.")) {
            return ServicePre::new(pre).map(Code::AsyncHttp).map_err(|e| {
                UploadError::MissingExport(format!("a WASI 0.3 HTTP service that does not link: {e:#}"), "artifact")
            });
        }
        if !has_run && exports.iter().any(|n| n.starts_with("wasi:cli/run@0.3.")) {
            return AsyncCommandPre::new(pre).map(Code::AsyncCommand).map_err(|e| {
                UploadError::MissingExport(
                    format!("a WASI 0.3 `wasi:cli/command` that does not link: {e:#}"),
                    "artifact",
                )
            });
        }
        if !has_run && exports.iter().any(|n| n.starts_with("wasi:http/incoming-handler@0.2.")) {
            return ProxyPre::new(pre).map(Code::Http).map_err(|e| {
                UploadError::MissingExport(format!("a `wasi:http/proxy` that does not link: {e:#}"), "artifact")
            });
        }
        if !has_run && exports.iter().any(|n| n.starts_with("wasi:cli/run@0.2.")) {
            return CommandPre::new(pre).map(Code::Command).map_err(|e| {
                UploadError::MissingExport(format!("a `wasi:cli/command` that does not link: {e:#}"), "artifact")
            });
        }
        if component.component_type().get_export(engine, "run").is_none() {
            let functions = crate::typed::exported_functions(engine, component);
            if !functions.is_empty() {
                let concurrent = functions.iter().any(|f| f.lifted_async) || imports_wasi_p3(engine, component);
                return Ok(Code::Exports { pre, functions, concurrent });
            }
        }
        require_func_export(engine, component, "run", "artifact")?;
        ArtifactPre::new(pre).map(Code::Run).map_err(|e| UploadError::MissingExport(format!("{e:#}"), "artifact"))
    }

    /// Validate, compile and record an artifact. `owner_exists` is the
    /// ledger's answer for the manifest's owner.
    pub fn upload(&self, manifest: Manifest, bytes: &[u8], owner_exists: bool) -> Result<ArtifactInfo, UploadError> {
        let digest = self.check_upload(&manifest, bytes, owner_exists)?;
        let id = manifest.artifact_id();
        let pre = self.linked(&digest, manifest.metering, Some(bytes))?;
        self.cache.put_bytes(&digest, bytes).map_err(storage)?;
        let json = serde_json::to_string(&manifest).map_err(storage)?;
        let uploaded_ms = now_ms();
        let _in_step = self.in_step();
        let inserted = store::write(&*self.db, Commit::Durable, |tx| {
            self.keep_bytes(tx, &digest, bytes)?;
            let inserted = tx.execute(
                "INSERT INTO artifacts (id, owner, name, version, digest, manifest, size, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                params![
                    &id,
                    manifest.owner.as_str(),
                    &manifest.name,
                    &manifest.version,
                    &digest,
                    &json,
                    bytes.len(),
                    uploaded_ms
                ],
            )?;
            // Refused (the id is taken): nothing for other hosts to load.
            if inserted > 0 {
                tx.notify(ARTIFACTS, &id)?;
            }
            Ok::<_, StoreError>(inserted)
        })?;
        if inserted == 0 {
            return Err(UploadError::AlreadyExists(id));
        }
        let info = ArtifactInfo { id: id.clone(), manifest, digest, size: bytes.len(), uploaded_ms };
        let mut artifacts = self.artifacts.write().unwrap_or_else(|p| p.into_inner());
        let slot = Slot::new(Entry::Ready(Arc::new(LoadedArtifact { info: info.clone(), pre })));
        slot.used.store(self.tick.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        let replaced = artifacts.insert(id, slot);
        // Only a delete racing this upload can have left a slot here; its
        // counts go with it.
        match replaced.as_ref().map(|s| &s.entry) {
            Some(Entry::Ready(_)) => {}
            Some(Entry::Cold { compiled, .. }) => {
                if !compiled {
                    self.cold.fetch_sub(1, Ordering::SeqCst);
                }
                self.loaded.fetch_add(1, Ordering::SeqCst);
            }
            None => drop(self.loaded.fetch_add(1, Ordering::SeqCst)),
        }
        let unloaded = self.unload_over_max(&mut artifacts);
        drop(artifacts);
        drop(_in_step);
        drop((replaced, unloaded));
        tracing::info!(artifact = %info.id, digest = %info.digest, size = info.size, "artifact uploaded");
        Ok(info)
    }

    /// The artifact `id` (`owner/name@version`), ready to instantiate: a
    /// cold one is loaded (compiled, if it never was) now. `Ok(None)` if
    /// there is no such artifact; `Err` if its stored code cannot be
    /// loaded (logged, with the reason).
    pub fn get(&self, id: &str) -> Result<Option<Arc<LoadedArtifact>>, UploadError> {
        let (info, compiled) = {
            let artifacts = self.artifacts.read().unwrap_or_else(|p| p.into_inner());
            let Some(slot) = artifacts.get(id) else { return Ok(None) };
            match &slot.entry {
                Entry::Ready(a) => {
                    // Dated by the last load: every artifact called since
                    // then is as recent as any other, and a busy artifact's
                    // slot is written once per load, not once per call.
                    let now = self.tick.load(Ordering::Relaxed);
                    if slot.used.load(Ordering::Relaxed) != now {
                        slot.used.store(now, Ordering::Relaxed);
                    }
                    return Ok(Some(a.clone()));
                }
                Entry::Cold { info, compiled } => ((**info).clone(), *compiled),
            }
        };
        self.load_cold(info, compiled).inspect_err(|e| {
            tracing::error!(artifact = %id, error = %e, "loading a stored artifact's code failed");
        })
    }

    /// How artifact `id` is called: from its code when it is loaded, else
    /// from what was noted when its bytes were last linked (on this
    /// machine), else by loading it. `None` if there is no such artifact.
    pub fn interface(&self, id: &str) -> Result<Option<Arc<Interface>>, UploadError> {
        let digest = {
            let artifacts = self.artifacts.read().unwrap_or_else(|p| p.into_inner());
            match artifacts.get(id).map(|s| &s.entry) {
                None => return Ok(None),
                Some(Entry::Ready(a)) => return Ok(Some(Arc::new(a.interface()))),
                Some(Entry::Cold { info, .. }) => info.digest.clone(),
            }
        };
        if let Some(known) = self.interfaces.lock().unwrap_or_else(|p| p.into_inner()).get(&digest) {
            return Ok(Some(known.clone()));
        }
        let noted = self.cache.note(&digest, INTERFACE_NOTE).and_then(|b| serde_json::from_slice::<Interface>(&b).ok());
        if let Some(interface) = noted {
            let interface = Arc::new(interface);
            self.remember_interface(&digest, &interface);
            return Ok(Some(interface));
        }
        Ok(self.get(id)?.map(|a| Arc::new(a.interface())))
    }

    /// Note how the code of `digest` is called, in memory and beside its
    /// compiled code, the first time it is linked here.
    fn note_interface(&self, digest: &str, code: &Code) {
        if self.interfaces.lock().unwrap_or_else(|p| p.into_inner()).contains_key(digest) {
            return;
        }
        let interface = Arc::new(code.interface());
        if self.cache.note(digest, INTERFACE_NOTE).is_none() {
            let written = serde_json::to_vec(&*interface)
                .map_err(std::io::Error::other)
                .and_then(|json| self.cache.put_note(digest, INTERFACE_NOTE, &json));
            if let Err(e) = written {
                tracing::warn!(digest, error = %e, "noting an artifact's interface failed");
            }
        }
        self.remember_interface(digest, &interface);
    }

    /// Keep `interface` in memory, a bounded number of them.
    fn remember_interface(&self, digest: &str, interface: &Arc<Interface>) {
        let mut known = self.interfaces.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_INTERFACES_KNOWN {
            known.clear();
        }
        known.insert(digest.to_string(), interface.clone());
    }

    /// What the registry knows about artifact `id`, compiled or not.
    pub fn info(&self, id: &str) -> Option<ArtifactInfo> {
        self.artifacts.read().unwrap_or_else(|p| p.into_inner()).get(id).map(|s| s.entry.info().clone())
    }

    /// The id of `owner`'s artifact `name` of the highest version
    /// (versions compared part by part, numerically where both parts are
    /// numbers), if there is one.
    pub fn latest(&self, owner: &str, name: &str) -> Option<String> {
        let prefix = format!("{owner}/{name}@");
        let artifacts = self.artifacts.read().unwrap_or_else(|p| p.into_inner());
        artifacts
            .keys()
            .filter_map(|id| id.strip_prefix(&prefix).map(|v| (v, id)))
            .max_by(|(a, _), (b, _)| compare_versions(a, b))
            .map(|(_, id)| id.clone())
    }

    /// Forget the artifact `id`: its row is deleted (so it stays gone after
    /// a restart) and it leaves the in-memory table, so no new invocation
    /// finds it; invocations already running hold their own reference and
    /// finish. The component bytes stay in the content-addressed cache,
    /// which other artifacts may share. Returns what was removed, or `None`
    /// when there was no such artifact.
    pub fn delete(&self, id: &str) -> Result<Option<ArtifactInfo>, HostError> {
        let _in_step = self.in_step();
        let deleted = store::write(&*self.db, Commit::Durable, |tx| {
            let n = tx.execute("DELETE FROM artifacts WHERE id = ?1", params![id])?;
            tx.notify(ARTIFACTS, id)?;
            Ok::<_, StoreError>(n)
        })?;
        let removed = self.forget(id);
        if deleted == 0 && removed.is_none() {
            return Ok(None);
        }
        tracing::info!(artifact = %id, "artifact deleted");
        Ok(removed)
    }

    /// Take `id` out of the in-memory table (its counts with it); what it
    /// was.
    fn forget(&self, id: &str) -> Option<ArtifactInfo> {
        let removed = self.artifacts.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        match removed.as_ref().map(|s| &s.entry) {
            Some(Entry::Cold { compiled: false, .. }) => drop(self.cold.fetch_sub(1, Ordering::SeqCst)),
            Some(Entry::Ready(_)) => drop(self.loaded.fetch_sub(1, Ordering::SeqCst)),
            _ => {}
        }
        removed.map(|s| s.entry.info().clone())
    }

    /// Make the in-memory table agree with the database on `id` (another
    /// host uploaded or deleted it): a new artifact is held cold, loaded
    /// by its first call here; one gone is forgotten.
    pub(crate) fn refresh(&self, id: &str) -> Result<(), HostError> {
        let _in_step = self.in_step();
        let stored = store::read(&*self.db, |tx| {
            tx.query_opt(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?1"), params![id])?
                .map(|r| StoredArtifact::from_row(&r))
                .transpose()
        })?;
        self.agree(id, stored)
    }

    /// [`Registry::refresh`] for every artifact (changes may have been
    /// missed).
    pub(crate) fn refresh_all(&self) -> Result<(), HostError> {
        let _in_step = self.in_step();
        let stored: Vec<StoredArtifact> = store::read(&*self.db, |tx| {
            tx.query(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts"), params![])?
                .iter()
                .map(StoredArtifact::from_row)
                .collect::<Result<_, StoreError>>()
        })?;
        let known: Vec<String> = self.artifacts.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        let kept: std::collections::HashSet<&str> = stored.iter().map(|a| a.id.as_str()).collect();
        for gone in known.iter().filter(|id| !kept.contains(id.as_str())) {
            self.forget(gone);
        }
        for artifact in stored {
            let id = artifact.id.clone();
            self.agree(&id, Some(artifact))?;
        }
        Ok(())
    }

    /// Hold `stored` as artifact `id` (or forget `id`, when it is gone),
    /// unless the table has it already.
    fn agree(&self, id: &str, stored: Option<StoredArtifact>) -> Result<(), HostError> {
        let Some(stored) = stored else {
            if self.forget(id).is_some() {
                tracing::info!(artifact = %id, "artifact deleted by another host");
            }
            return Ok(());
        };
        let info = stored.info().map_err(|reason| HostError::Load { id: id.to_string(), reason })?;
        if self.info(id).is_some_and(|held| held.digest == info.digest && held.uploaded_ms == info.uploaded_ms) {
            return Ok(());
        }
        let compiled =
            self.compiled(&info).map_err(|e| HostError::Load { id: id.to_string(), reason: e.to_string() })?;
        drop(self.forget(id));
        if !compiled {
            self.cold.fetch_add(1, Ordering::SeqCst);
        }
        let entry = Entry::Cold { info: Box::new(info), compiled };
        self.artifacts.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), Slot::new(entry));
        tracing::info!(artifact = %id, "artifact uploaded through another host");
        Ok(())
    }

    /// Hold off other changes to what this host keeps of artifacts and
    /// plugins (see the field): for a plugin, from its write or its read
    /// until the policy chain has it.
    pub(crate) fn in_step(&self) -> std::sync::MutexGuard<'_, ()> {
        self.in_step.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every artifact, sorted by id.
    pub fn list(&self) -> Vec<ArtifactInfo> {
        let mut v: Vec<ArtifactInfo> =
            self.artifacts.read().unwrap_or_else(|p| p.into_inner()).values().map(|s| s.entry.info().clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn link_plugin(&self, name: &str, digest: String, component: &Component) -> Result<PolicyPlugin, UploadError> {
        let engine = self.engines.policy();
        require_func_export(engine, component, "fuelhost:host/policy@0.1.0", "policy-plugin").or_else(|_| {
            // The export is an interface (an instance), not a function.
            let has = component.component_type().exports(engine).any(|(n, item)| {
                n == "fuelhost:host/policy@0.1.0" && matches!(item.ty, ComponentItem::ComponentInstance(_))
            });
            if has {
                Ok(())
            } else {
                Err(UploadError::MissingExport("missing export `fuelhost:host/policy@0.1.0`".into(), "policy-plugin"))
            }
        })?;
        let pre = self
            .plugin_linker
            .instantiate_pre(component)
            .map_err(|e| UploadError::UnsatisfiableImport(format!("{e:#}"), "policy-plugin"))?;
        let pre =
            PolicyPluginPre::new(pre).map_err(|e| UploadError::MissingExport(format!("{e:#}"), "policy-plugin"))?;
        Ok(PolicyPlugin::new(name.to_string(), digest, pre))
    }

    /// Validate, compile and record a policy plugin named `name` (replacing
    /// a plugin of that name; a new name goes to the end of the chain).
    /// `install` puts it in force (in the policy chain) before another
    /// change to plugins is applied here.
    pub fn upload_plugin(
        &self,
        name: &str,
        bytes: &[u8],
        install: impl FnOnce(PolicyPlugin),
    ) -> Result<(), UploadError> {
        if fuelhost_ledger::AgentId::new(name).is_err() {
            return Err(UploadError::Manifest(crate::manifest::ManifestError::Field {
                field: "name",
                problem: "use 1 to 64 characters of a-z, 0-9, '-' and '_'".into(),
            }));
        }
        let digest = self.checked_digest(bytes)?;
        let component = self.component(self.engines.policy(), &digest, Some(bytes))?;
        let plugin = self.link_plugin(name, digest.clone(), &component)?;
        self.cache.put_bytes(&digest, bytes).map_err(storage)?;
        let _in_step = self.in_step();
        store::write(&*self.db, Commit::Durable, |tx| {
            self.keep_bytes(tx, &digest, bytes)?;
            let position: i64 = match tx
                .query_opt("SELECT position FROM policy_plugins WHERE name = ?1", params![name])?
            {
                Some(r) => r.get(0)?,
                None => tx.query_one("SELECT COALESCE(MAX(position), 0) + 1 FROM policy_plugins", params![])?.get(0)?,
            };
            tx.execute(
                "INSERT INTO policy_plugins (name, position, digest, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET digest = excluded.digest",
                params![name, position, &digest, now_ms()],
            )?;
            tx.notify(PLUGINS, name)
        })?;
        install(plugin);
        Ok(())
    }

    /// Forget the stored plugin `name`; whether there was one.
    /// `remove` takes it out of force before another change to plugins
    /// is applied here.
    pub fn remove_plugin(&self, name: &str, remove: impl FnOnce()) -> Result<bool, UploadError> {
        let _in_step = self.in_step();
        let n = store::write(&*self.db, Commit::Durable, |tx| {
            let n = tx.execute("DELETE FROM policy_plugins WHERE name = ?1", params![name])?;
            tx.notify(PLUGINS, name)?;
            Ok::<_, StoreError>(n)
        })?;
        remove();
        Ok(n > 0)
    }

    /// The stored plugin `name`, ready to install; `None` if there is none.
    pub fn stored_plugin(&self, name: &str) -> Result<Option<PolicyPlugin>, HostError> {
        let digest: Option<String> = store::read(&*self.db, |tx| {
            tx.query_opt("SELECT digest FROM policy_plugins WHERE name = ?1", params![name])?
                .map(|r| r.get(0))
                .transpose()
        })?;
        let Some(digest) = digest else { return Ok(None) };
        let load = |reason: String| HostError::Load { id: format!("policy {name}"), reason };
        let component = self.component(self.engines.policy(), &digest, None).map_err(|e| load(e.to_string()))?;
        self.link_plugin(name, digest, &component).map(Some).map_err(|e| load(e.to_string()))
    }

    /// Every stored plugin, in chain order, ready to install.
    pub fn stored_plugins(&self) -> Result<Vec<PolicyPlugin>, HostError> {
        let stored: Vec<(String, String)> = store::read(&*self.db, |tx| {
            tx.query("SELECT name, digest FROM policy_plugins ORDER BY position", params![])?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_, StoreError>>()
        })?;
        stored
            .into_iter()
            .map(|(name, digest)| {
                let load = |reason: String| HostError::Load { id: format!("policy {name}"), reason };
                let component =
                    self.component(self.engines.policy(), &digest, None).map_err(|e| load(e.to_string()))?;
                self.link_plugin(&name, digest, &component).map_err(|e| load(e.to_string()))
            })
            .collect()
    }

    /// The compiled component of `digest` for `engine`: from the compile
    /// cache, else compiled from `bytes`, else from the kept bytes. A host
    /// on a shared database that never had them (another host took the
    /// upload) fetches them from it into its own cache first.
    fn component(&self, engine: &Engine, digest: &str, bytes: Option<&[u8]>) -> Result<Component, UploadError> {
        if bytes.is_none() && !self.cache.has_compiled(engine, digest) && !self.cache.has_bytes(digest) {
            let stored: Option<Vec<u8>> = match self.db.backend() {
                Backend::Sqlite => None,
                Backend::Postgres => store::read(&*self.db, |tx| {
                    tx.query_opt("SELECT bytes FROM components WHERE digest = ?1", params![digest])?
                        .map(|r| r.get(0))
                        .transpose()
                })?,
            };
            let stored = stored.ok_or_else(|| {
                UploadError::Internal(format!("the bytes of component {digest} are missing; upload it again"))
            })?;
            self.cache.put_bytes(digest, &stored).map_err(storage)?;
        }
        self.cache.component(engine, digest, bytes).map_err(|e| UploadError::Invalid(with_fix(format!("{e:#}"))))
    }

    /// Keep a component's bytes where every host can fetch them: on a
    /// shared database, in its `components` table (content-addressed, so
    /// kept once); SQLite's host keeps them in its own cache alone.
    fn keep_bytes(&self, tx: &mut dyn store::Tx, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if self.db.backend() == Backend::Postgres {
            tx.execute(
                "INSERT INTO components (digest, bytes, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
                params![digest, bytes, now_ms()],
            )?;
        }
        Ok(())
    }

    /// Compile and cache counters.
    pub fn cache_stats(&self) -> fuelhost_runtime::CacheStats {
        self.cache.stats()
    }
}

/// Why a component does not compile, with what would make it fit where
/// that is known.
fn with_fix(reason: String) -> String {
    if reason.contains("async") {
        return format!(
            "{reason}; fuelhost serves WASI 0.2 and 0.3 components with component-model-async's async lifts, \
             streams and futures, but not its stackful or threading extensions: build it with wit-bindgen's \
             (or componentize-py's, componentize-js's) default async options"
        );
    }
    reason
}

/// Whether a component's compile error says it is component-model-async
/// code, which the concurrent engines take.
fn needs_concurrency(why: &str) -> bool {
    why.contains("component model async") || why.contains("component-model-async") || why.contains("concurrency")
}

/// Whether `component` imports a WASI 0.3 interface.
fn imports_wasi_p3(engine: &Engine, component: &Component) -> bool {
    component.component_type().imports(engine).any(|(name, _)| name.starts_with("wasi:") && name.contains("@0.3."))
}

/// Why `component` does not link, with what would fit: WASI 0.3's
/// filesystem is named as not offered (WASI 0.2's is), and a WASI release
/// candidate's interface as not served (the release's is).
fn unlinked_import(engine: &Engine, component: &Component, e: wasmtime::Error) -> String {
    let reason = format!("{e:#}");
    let imports: Vec<String> = component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect();
    if let Some(name) = imports.iter().find(|n| n.starts_with("wasi:filesystem/") && n.contains("@0.3.")) {
        return format!(
            "{reason}: it imports `{name}`; fuelhost offers a component WASI 0.2's filesystem \
             (`wasi:filesystem/types@0.2`), whose every write it meters against the payer's disk budget, and not yet \
             WASI 0.3's: reach files through WASI 0.2 (Rust's `std::fs` on wasm32-wasip2 does)"
        );
    }
    if let Some(name) = imports.iter().find(|n| n.starts_with("wasi:") && n.contains("-rc")) {
        return format!(
            "{reason}: it imports `{name}`, of a WASI release candidate; fuelhost serves the releases (WASI 0.2.x, \
             and 0.3.x as wasmtime 48 implements it): build it against a released WASI (the `wasip3` crate for \
             0.3, the wasm32-wasip2 target for 0.2)"
        );
    }
    reason
}

/// Versions compared as semantic versions where they are: the dotted
/// parts before any `-` (numbers as numbers, a number above any text, more
/// parts later), then a version without a pre-release (`-rc1`) above one
/// with it; build metadata (`+...`) is ignored.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(s: &str) -> impl Iterator<Item = &str> {
        s.split('.')
    }
    fn by_parts(a: &str, b: &str) -> Ordering {
        let (mut x, mut y) = (parts(a), parts(b));
        loop {
            let order = match (x.next(), y.next()) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(p), Some(q)) => match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    (Ok(_), Err(_)) => Ordering::Greater,
                    (Err(_), Ok(_)) => Ordering::Less,
                    (Err(_), Err(_)) => p.cmp(q),
                },
            };
            if order.is_ne() {
                return order;
            }
        }
    }
    let strip = |v: &str| v.split('+').next().unwrap_or_default().to_string();
    let (a, b) = (strip(a), strip(b));
    let (a_core, a_pre) = a.split_once('-').map_or((a.as_str(), None), |(c, p)| (c, Some(p)));
    let (b_core, b_pre) = b.split_once('-').map_or((b.as_str(), None), |(c, p)| (c, Some(p)));
    by_parts(a_core, b_core).then_with(|| match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => by_parts(p, q),
    })
}

#[cfg(test)]
mod version_tests {
    use super::compare_versions;

    #[test]
    fn versions_compare_by_their_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10.0", "1.9.0"), Greater);
        assert_eq!(compare_versions("2", "10"), Less);
        assert_eq!(compare_versions("1.0.0", "1.0.0"), Equal);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
        assert_eq!(compare_versions("1.0.0", "1.0.0-rc1"), Greater);
        assert_eq!(compare_versions("1.0.0-rc.2", "1.0.0-rc.10"), Less);
    }
}
