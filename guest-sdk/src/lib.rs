//! # fuelhost-guest
//!
//! Write fuelhost artifacts and policy plugins in Rust. This crate holds the
//! bindings generated from the `fuelhost:host@0.1.0` WIT contract (the
//! `wit/` folder of the repository) and re-exports what a guest needs:
//!
//! - an **artifact** implements [`Artifact`] (one function, `run`) and
//!   registers it with [`export_artifact!`];
//! - a **policy plugin** implements [`Policy`] (one function, `check`) and
//!   registers it with [`export_policy!`];
//! - [`ledger`], [`policy`] and [`log`] wrap the host's imports.
//!
//! ```ignore
//! use fuelhost_guest::{Artifact, RunError};
//! struct Echo;
//! impl Artifact for Echo {
//!     fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> { Ok(input) }
//! }
//! fuelhost_guest::export_artifact!(Echo);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2`; the output is a
//! component the host accepts as is.

/// Bindings for the `artifact` world (generated once, here).
pub mod artifact_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "fuelhost:host/artifact@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_artifact_world",
        default_bindings_module: "fuelhost_guest::artifact_bindings",
        generate_all,
    });
}

/// Bindings for the `policy-plugin` world (generated once, here).
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "fuelhost:host/policy-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_policy_world",
        default_bindings_module: "fuelhost_guest::policy_bindings",
        generate_all,
    });
}

/// Bindings for `fuelhost:host@0.2.0` (`wit-0.2.0`): its `llm` interface,
/// over the 0.1.0 interfaces above (an artifact is still registered with
/// [`export_artifact!`]; calling [`llm`] makes it a 0.2.0 component).
/// With the feature `llm`.
#[cfg(feature = "llm")]
pub mod llm_bindings {
    wit_bindgen::generate!({
        path: "../wit-0.2.0",
        world: "fuelhost:host/artifact@0.2.0",
        with: {
            "fuelhost:host/types@0.1.0": crate::artifact_bindings::fuelhost::host::types,
            "fuelhost:host/ledger@0.1.0": crate::artifact_bindings::fuelhost::host::ledger,
            "fuelhost:host/policy@0.1.0": crate::artifact_bindings::fuelhost::host::policy,
            "fuelhost:host/log@0.1.0": crate::artifact_bindings::fuelhost::host::log,
            "fuelhost:host/invoke@0.1.0": crate::artifact_bindings::fuelhost::host::invoke,
            "fuelhost:host/tasks@0.1.0": crate::artifact_bindings::fuelhost::host::tasks,
            "wasi:io/error@0.2.12": crate::artifact_bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::artifact_bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::artifact_bindings::wasi::io::streams,
            "wasi:clocks/wall-clock@0.2.12": crate::artifact_bindings::wasi::clocks::wall_clock,
            "wasi:filesystem/types@0.2.12": crate::artifact_bindings::wasi::filesystem::types,
            "wasi:filesystem/preopens@0.2.12": crate::artifact_bindings::wasi::filesystem::preopens,
        },
    });
}

pub use artifact_bindings::fuelhost::host::types::{Action, Attribute, Decision, ResourcePolicy, RunError, Usage};
/// The trait an artifact implements: `run(input) -> output`.
pub use artifact_bindings::Guest as Artifact;

/// The trait a policy plugin implements: `check(action) -> decision`.
pub use policy_bindings::exports::fuelhost::host::policy::Guest as Policy;

/// Types a policy plugin receives and returns (its own copy of the shared
/// `types` interface, distinct from an artifact's).
pub mod policy_types {
    pub use crate::policy_bindings::fuelhost::host::types::{Action, Attribute, Decision, Usage};
}

/// The host's ledger, as seen by a running artifact.
pub mod ledger {
    pub use crate::artifact_bindings::fuelhost::host::ledger::{
        allocation, balance, context, fuel_left, sponsorship, transfer, AccountBalance, AllocationStatus, CallContext,
        LedgerError, Quota, SponsorshipInfo,
    };
}

/// Invoke another artifact as this artifact's principal (its owner).
pub mod invoke {
    pub use crate::artifact_bindings::fuelhost::host::invoke::{invoke, InvokeError, InvokeResult};
    pub use crate::artifact_bindings::fuelhost::host::types::Outcome;
}

/// Queue tasks as this artifact's principal (its owner), run later by the
/// host's workers, and read their state.
pub mod tasks {
    pub use crate::artifact_bindings::fuelhost::host::tasks::{
        status, submit, Priority, RouteMode, TaskError, TaskRequest, TaskState, TaskStatus,
    };

    /// A request for `artifact` on `input`: normal priority, one attempt,
    /// no dependencies, the artifact's own limits.
    pub fn request(artifact: &str, input: &[u8]) -> TaskRequest {
        TaskRequest {
            artifact: artifact.to_string(),
            capability: None,
            route: RouteMode::Standard,
            max_price: None,
            input: input.to_vec(),
            priority: Priority::Normal,
            fuel_limit: None,
            id: None,
            depends_on: Vec::new(),
            max_attempts: 1,
            timeout_ms: None,
        }
    }

    /// A request for whichever artifact declaring `capability` `route`
    /// prefers, on `input`.
    pub fn for_capability(capability: &str, route: RouteMode, input: &[u8]) -> TaskRequest {
        TaskRequest { capability: Some(capability.to_string()), route, ..request("", input) }
    }
}

/// Ask a language model through the host (`fuelhost:host@0.2.0`'s `llm`):
/// the call's payer pays the tokens, held before the request and charged
/// as the provider reports them. With the feature `llm`
/// (`fuelhost-guest = { ..., features = ["llm"] }`).
#[cfg(feature = "llm")]
pub mod llm {
    pub use crate::llm_bindings::fuelhost::host0_2_0::llm::{
        complete, Completion, LlmError, Message, ModelChoice, Request, Role, Route,
    };

    /// A request of one user message to `model` (a model id, or
    /// `provider/model`), answered in at most `max_tokens`.
    pub fn ask(model: &str, prompt: &str, max_tokens: u32) -> Result<Completion, LlmError> {
        complete(&Request {
            messages: vec![Message { role: Role::User, content: prompt.to_string() }],
            model: ModelChoice::Named(model.to_string()),
            max_tokens,
            temperature: None,
            response_schema: None,
        })
    }

    /// What `e` says, as a person reads it: its kind, then the host's reason.
    pub fn describe(e: &LlmError) -> String {
        match e {
            LlmError::Invalid(m) => format!("invalid request: {m}"),
            LlmError::Denied(m) => format!("denied: {m}"),
            LlmError::InsufficientBudget(m) => format!("insufficient budget: {m}"),
            LlmError::Unavailable(m) => format!("unavailable: {m}"),
            LlmError::Provider(m) => format!("provider failed: {m}"),
            LlmError::Timeout(m) => format!("timeout: {m}"),
        }
    }
}

/// Ask the host's policy chain about an action from inside an artifact.
pub mod policy {
    pub use crate::artifact_bindings::fuelhost::host::policy::check;
}

/// Logging into the host's structured log.
pub mod log {
    use crate::artifact_bindings::fuelhost::host::log::log as host_log;
    pub use crate::artifact_bindings::fuelhost::host::log::Level;

    /// Log at info level.
    pub fn info(message: &str) {
        host_log(Level::Info, message)
    }
    /// Log at warn level.
    pub fn warn(message: &str) {
        host_log(Level::Warn, message)
    }
    /// Log at error level.
    pub fn error(message: &str) {
        host_log(Level::Error, message)
    }
    /// Log at debug level.
    pub fn debug(message: &str) {
        host_log(Level::Debug, message)
    }
}

/// Register a type implementing [`Artifact`] as this component's export.
#[macro_export]
macro_rules! export_artifact {
    ($ty:ident) => {
        $crate::artifact_bindings::export_artifact_world!($ty with_types_in $crate::artifact_bindings);
    };
}

/// Register a type implementing [`Policy`] as this component's export.
#[macro_export]
macro_rules! export_policy {
    ($ty:ident) => {
        $crate::policy_bindings::export_policy_world!($ty with_types_in $crate::policy_bindings);
    };
}

impl Action {
    /// The value of attribute `key`, if the action carries it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
    }
}

impl policy_types::Action {
    /// The value of attribute `key`, if the action carries it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
    }
}
