//! The policy chain: the declarative [`rules`](crate::rules) first, then the registered
//! policy plugins in order; the first verdict that is not `allow` wins.
//!
//! Each plugin is compiled once and pre-instantiated; every check runs in a
//! fresh instance with its own fuel, memory cap and deadline, so nothing
//! leaks between checks. A plugin that traps, runs out of fuel or times
//! out counts as `deny` (fail-closed) with the reason recorded.
//!
//! Rules and plugins form one immutable *version* of the chain; adding,
//! replacing or removing a plugin, or replacing the rules, swaps in a new
//! version: a check in flight finishes on the version it started with.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use fuelhost_runtime::boundary::{self, Boundary};
use fuelhost_runtime::{closed_wasi, new_store, when_a_slot_is_free, Guest, GuestCtx, GuestLimiter, WaitLimit};
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::bindings::fuelhost::host::{log, types};
use crate::bindings::PolicyPluginPre;
use crate::rules::RuleSet;
use crate::{Action, Decision};

/// Limits of one policy check by one plugin. Every field documents its
/// default.
#[derive(Debug, Clone, Copy)]
pub struct PluginLimits {
    /// Fuel for one check. Default: 10,000,000.
    pub fuel: u64,
    /// Linear memory cap, bytes. Default: 64 MiB (a Python plugin needs
    /// about 40 MiB).
    pub memory_bytes: u64,
    /// Wall-clock deadline of one check. Default: 1 s.
    pub timeout: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits { fuel: 10_000_000, memory_bytes: 64 << 20, timeout: Duration::from_secs(1) }
    }
}

/// A compiled, pre-instantiated policy plugin.
pub struct PolicyPlugin {
    /// Its name in the chain.
    pub name: String,
    /// SHA-256 of its component bytes.
    pub digest: String,
    pre: PolicyPluginPre<PluginStore>,
}

/// The data of one policy check's store: the runtime's guest context and
/// nothing else. A plugin imports `log` and an empty WASI; it has no
/// call, no ledger, no outgoing HTTP.
pub struct PluginStore {
    guest: GuestCtx,
}

impl Guest for PluginStore {
    fn guest(&mut self) -> &mut GuestCtx {
        &mut self.guest
    }

    fn guest_ref(&self) -> &GuestCtx {
        &self.guest
    }
}

impl WasiView for PluginStore {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.guest.wasi()
    }
}

impl types::Host for PluginStore {}

impl log::Host for PluginStore {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.guest.log(crate::tracing_level(level), message)
    }
}

/// The linker for policy plugins: an empty WASI and `log`; their waits end
/// at the check's deadline, and their host calls cost fuel.
pub fn plugin_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginStore>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    types::add_to_linker::<PluginStore, HasSelf<PluginStore>>(&mut linker, |s| s)?;
    log::add_to_linker::<PluginStore, HasSelf<PluginStore>>(&mut linker, |s| s)?;
    linker.allow_shadowing(true);
    fuelhost_runtime::io::shadow(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

impl PolicyPlugin {
    /// A plugin named `name` (its component's SHA-256 `digest`), ready to
    /// instantiate (`pre`, from [`plugin_linker`]).
    pub fn new(name: String, digest: String, pre: PolicyPluginPre<PluginStore>) -> PolicyPlugin {
        PolicyPlugin { name, digest, pre }
    }
}

/// The chain's verdict on one action.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What was decided.
    pub decision: Decision,
    /// The plugin whose verdict stood; `None` when all allowed.
    pub decided_by: Option<String>,
    /// The rule that explicitly allowed the action, when one did (and
    /// nothing after it said no). Outgoing network requests need one.
    pub allowed_by: Option<String>,
    /// Time the whole chain took.
    pub latency: Duration,
    /// Fuel the policy plugins burned deciding (a guest that asked pays it).
    pub fuel: u64,
}

impl Verdict {
    /// `allow`, `deny` or `require_approval`.
    pub fn decision_name(&self) -> &'static str {
        match self.decision {
            Decision::Allow => "allow",
            Decision::Deny(_) => "deny",
            Decision::RequireApproval(_) => "require_approval",
        }
    }

    /// `None` if the action may go ahead, else why not, for the agent.
    pub fn refusal(&self) -> Option<String> {
        let by = self.decided_by.as_deref().unwrap_or("the policy chain");
        match &self.decision {
            Decision::Allow => None,
            Decision::Deny(reason) => Some(format!("denied by policy `{by}`: {reason}")),
            Decision::RequireApproval(who) => Some(format!(
                "policy `{by}` requires approval by {}; this action cannot wait for one (invocations, transfers and \
                 uploads asked of the host can; actions inside a running guest cannot), so it is refused",
                who.join(", ")
            )),
        }
    }
}

/// Decides the actions a guest's imports ask about (a `policy.check`, a
/// file open, an outgoing request, a transfer), the way the host decides
/// every action it mediates: stamps the subject's tenant and workspace,
/// asks the chain, records the decision in the audit log (under the
/// invocation when there is one) and counts it. What an import holds
/// instead of the host.
pub trait Judge: Send + Sync {
    /// The verdict on `action`, taken within `invocation`.
    fn judge(&self, invocation: Option<&str>, action: &mut Action) -> Verdict {
        self.judge_explicit(invocation, action, None)
    }

    /// [`Judge::judge`]; with `explicit`, an action that no rule allowed
    /// by name is denied, for that reason (outgoing network requests are
    /// denied by default).
    fn judge_explicit(&self, invocation: Option<&str>, action: &mut Action, explicit: Option<String>) -> Verdict;

    /// [`Judge::judge`] of the action admitting call `invocation`. A judge
    /// that records its verdicts may keep an allow back, for the call's
    /// settlement to record in its own commit; by default it is recorded
    /// as any other.
    fn judge_admission(&self, invocation: &str, action: &mut Action) -> Verdict {
        self.judge(Some(invocation), action)
    }
}

/// The chain on its own judges without recording: for an embedder of the
/// policy crate alone, and for tests. The host's judge also stamps
/// memberships and writes the audit log.
impl Judge for PolicyChain {
    fn judge_explicit(&self, _invocation: Option<&str>, action: &mut Action, explicit: Option<String>) -> Verdict {
        self.check_explicit(action, explicit)
    }
}

/// One consistent version of the chain.
#[derive(Default)]
struct Version {
    rules: RuleSet,
    plugins: Vec<Arc<PolicyPlugin>>,
}

/// The declarative rules and the ordered policy plugins.
pub struct PolicyChain {
    engine: Engine,
    limits: PluginLimits,
    tick: Duration,
    current: RwLock<Arc<Version>>,
}

impl PolicyChain {
    /// An empty chain (which allows everything).
    pub fn new(engine: Engine, limits: PluginLimits, tick: Duration) -> PolicyChain {
        PolicyChain { engine, limits, tick, current: RwLock::new(Arc::new(Version::default())) }
    }

    /// Make a new version from the current one.
    fn update(&self, change: impl FnOnce(&Version) -> Version) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(change(&guard));
    }

    /// Add `plugin` at the end, or replace the plugin of the same name in
    /// place.
    pub fn install(&self, plugin: PolicyPlugin) {
        let plugin = Arc::new(plugin);
        self.update(|v| {
            let mut plugins = v.plugins.clone();
            match plugins.iter().position(|p| p.name == plugin.name) {
                Some(i) => plugins[i] = plugin,
                None => plugins.push(plugin),
            }
            Version { rules: v.rules.clone(), plugins }
        });
    }

    /// Remove the plugin named `name`; whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        let mut removed = false;
        self.update(|v| {
            let plugins: Vec<_> = v.plugins.iter().filter(|p| p.name != name).cloned().collect();
            removed = plugins.len() != v.plugins.len();
            Version { rules: v.rules.clone(), plugins }
        });
        removed
    }

    /// Replace the declarative rules.
    pub fn set_rules(&self, rules: RuleSet) {
        self.update(|v| Version { rules, plugins: v.plugins.clone() });
    }

    /// The declarative rules in force.
    pub fn rules(&self) -> RuleSet {
        self.snapshot().rules.clone()
    }

    /// The digest of the plugin named `name`, if it is in the chain.
    pub fn plugin_digest(&self, name: &str) -> Option<String> {
        self.snapshot().plugins.iter().find(|p| p.name == name).map(|p| p.digest.clone())
    }

    /// Names of the plugins, in order.
    pub fn names(&self) -> Vec<String> {
        self.snapshot().plugins.iter().map(|p| p.name.clone()).collect()
    }

    fn snapshot(&self) -> Arc<Version> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// [`PolicyChain::check`]; with `explicit`, an action no rule allowed
    /// by name is denied, for that reason (the egress default).
    pub fn check_explicit(&self, action: &Action, explicit: Option<String>) -> Verdict {
        let mut verdict = self.check(action);
        if let Some(reason) = explicit.filter(|_| verdict.refusal().is_none() && verdict.allowed_by.is_none()) {
            verdict.decision = Decision::Deny(reason);
            verdict.decided_by = Some("egress default".into());
        }
        verdict
    }

    /// Put `action` to the rules, then to every plugin in order.
    pub fn check(&self, action: &Action) -> Verdict {
        let start = Instant::now();
        let version = self.snapshot();
        let mut allowed_by = None;
        if let Some((rule, decision)) = version.rules.decide(action) {
            if !matches!(decision, Decision::Allow) {
                let decided_by = Some(format!("rule {}", rule.name));
                return Verdict { decision, decided_by, allowed_by, latency: start.elapsed(), fuel: 0 };
            }
            allowed_by = Some(format!("rule {}", rule.name));
        }
        let mut fuel = 0;
        for plugin in version.plugins.iter() {
            let (decision, burned) = self.run(plugin, action);
            fuel += burned;
            if !matches!(decision, Decision::Allow) {
                let decided_by = Some(plugin.name.clone());
                return Verdict { decision, decided_by, allowed_by: None, latency: start.elapsed(), fuel };
            }
        }
        Verdict { decision: Decision::Allow, decided_by: None, allowed_by, latency: start.elapsed(), fuel }
    }

    /// One plugin's decision, and the fuel it burned.
    fn run(&self, plugin: &PolicyPlugin, action: &Action) -> (Decision, u64) {
        let fail_closed = |outcome: &str, error: &dyn std::fmt::Display| {
            tracing::warn!(plugin = %plugin.name, %outcome, %error, "policy plugin failed; denying");
            Decision::Deny(format!(
                "policy plugin `{}` failed ({outcome}); denied because policies fail closed",
                plugin.name
            ))
        };
        let guest = GuestCtx::new(
            closed_wasi(),
            GuestLimiter::new(self.limits.memory_bytes),
            format!("policy {}", plugin.name),
        );
        let data = PluginStore { guest };
        let mut store =
            match new_store(&self.engine, data, Some(self.limits.fuel), Some(self.limits.timeout), self.tick) {
                Ok(store) => store,
                Err(e) => return (fail_closed("sandbox setup", &e), 0),
            };
        // Its host calls cost fuel, and its waits end at its deadline.
        let deadline = std::time::Instant::now() + self.limits.timeout;
        boundary::install(&mut store, Boundary { fuel: true, deadline: None, cancel: None });
        store.data_mut().guest.wait_limit = Some(WaitLimit { deadline, cancel: None });
        let result = when_a_slot_is_free(deadline, || plugin.pre.instantiate(&mut store))
            .and_then(|i| i.fuelhost_host_policy().call_check(&mut store, action));
        let burned = self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let decision = result.unwrap_or_else(|e| {
            let outcome = fuelhost_runtime::classify_trap(&e, store.data().guest.limiter.memory_refused());
            fail_closed(outcome.as_str(), &e)
        });
        (decision, burned)
    }
}
