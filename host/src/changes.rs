//! Several hosts over one database: what a host keeps in memory (policy
//! rules and plugins, the cost model, artifacts, memberships, live API
//! keys, heartbeats)
//! follows the changes other hosts make (circuit breakers and tasks
//! included), and a host takes over what dead hosts left.
//!
//! Every store write sends a notice in its transaction
//! (`fuelhost_store::Tx::notify`: a topic, such as `plugins`, and a key,
//! such as the plugin's name), which PostgreSQL delivers once it commits
//! to every host listening ([`fuelhost_postgres::Database::listen`]); here
//! each notice reloads the one thing it names, within the listener's
//! round trip. A host that lost its listening connection (a database
//! restart) reloads everything once it listens again. A host on the
//! embedded SQLite file is alone: nothing to follow.
//!
//! Taking over: every third of a lease, the ledger settles as aborted the
//! calls of hosts whose lease ran out ([`fuelhost_ledger::Ledger::take_over_dead_hosts`]),
//! and the scheduler puts their tasks back in its queue.

use std::sync::Arc;
use std::time::Duration;

use fuelhost_postgres::Change;
use fuelhost_store::settings;

use crate::error::HostError;
use crate::state::{HostInner, COST_MODEL_SETTING, RULES_SETTING};

/// Start following other hosts' changes and taking over dead hosts' work,
/// if `inner` is on a shared database.
pub(crate) fn follow(inner: &Arc<HostInner>) {
    let Some(shared) = &inner.shared else { return };
    let host = Arc::downgrade(inner);
    match shared.db.listen(move |change| {
        if let Some(inner) = host.upgrade() {
            apply(&inner, change);
        }
    }) {
        Ok(listener) => drop(shared.listener.set(listener)),
        Err(e) => tracing::error!(error = %e, "cannot hear other hosts' changes; this host sees them after a restart"),
    }
    // What changed between loading at open and listening.
    apply(inner, Change::Missed);
    take_over_in_background(inner);
}

/// Bring what `inner` keeps in step with `change`. A failure is logged
/// (the next change, or a restart, loads it again).
fn apply(inner: &HostInner, change: Change) {
    let done = match &change {
        Change::One { topic, key } => match topic.as_str() {
            crate::membership::TOPIC => {
                inner.memberships.forget();
                Ok(())
            }
            crate::keys::TOPIC => {
                inner.key_cache.forget(key);
                Ok(())
            }
            crate::liveness::TOPIC => inner.liveness.reload(key).map_err(HostError::from),
            settings::TOPIC => reload_setting(inner, key),
            crate::registry::ARTIFACTS => inner.registry.refresh(key),
            crate::registry::PLUGINS => reload_plugin(inner, key),
            crate::scheduler::TOPIC => inner.scheduler.follow(key).map_err(|e| HostError::Invalid(e.to_string())),
            crate::scheduler::BREAKERS => {
                inner.scheduler.follow_breakers(Some(key)).map_err(|e| HostError::Invalid(e.to_string()))
            }
            // A topic of a newer fuelhost: nothing kept here.
            _ => Ok(()),
        },
        Change::Missed => reload_all(inner),
    };
    if let Err(e) = done {
        tracing::error!(error = %e, change = ?change, "following another host's change failed");
    }
}

/// Everything kept, read again.
fn reload_all(inner: &HostInner) -> Result<(), HostError> {
    inner.memberships.forget();
    inner.key_cache.clear();
    inner.liveness.reload_all()?;
    reload_setting(inner, RULES_SETTING)?;
    reload_setting(inner, COST_MODEL_SETTING)?;
    inner.registry.refresh_all()?;
    let stored: Vec<String> = inner.registry.stored_plugins()?.into_iter().map(|p| p.name).collect();
    for name in inner.policy.names().into_iter().chain(stored) {
        reload_plugin(inner, &name)?;
    }
    inner.scheduler.follow_breakers(None).map_err(|e| HostError::Invalid(e.to_string()))?;
    inner.scheduler.follow_all().map_err(|e| HostError::Invalid(e.to_string()))
}

/// The setting `key`, in force again as stored.
fn reload_setting(inner: &HostInner, key: &str) -> Result<(), HostError> {
    let _in_step = inner.registry.in_step();
    let value = settings::get(&*inner.store, key)?;
    match key {
        RULES_SETTING => {
            let rules = match value {
                Some(text) => fuelhost_policy::rules::RuleSet::from_toml(&text)?,
                None => fuelhost_policy::rules::RuleSet::default(),
            };
            inner.policy.set_rules(rules);
        }
        COST_MODEL_SETTING => {
            if let Some(json) = value {
                let model = serde_json::from_str(&json)
                    .map_err(|e| HostError::Invalid(format!("the stored cost model is unreadable: {e}")))?;
                *inner.cost_model.write().unwrap_or_else(|p| p.into_inner()) = model;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The plugin `name` in the chain as stored: installed (or replaced, if
/// its code changed), or removed.
fn reload_plugin(inner: &HostInner, name: &str) -> Result<(), HostError> {
    let _in_step = inner.registry.in_step();
    match inner.registry.stored_plugin(name)? {
        Some(plugin) if inner.policy.plugin_digest(name).as_deref() != Some(plugin.digest.as_str()) => {
            inner.policy.install(plugin);
        }
        Some(_) => {}
        None => drop(inner.policy.remove(name)),
    }
    Ok(())
}

/// How often a host looks for dead hosts' work: a third of a lease.
fn take_over_every() -> Duration {
    fuelhost_postgres::DEFAULT_LEASE / 3
}

/// Take over dead hosts' calls and tasks now and again, on a thread of
/// its own, until the host is gone.
fn take_over_in_background(inner: &Arc<HostInner>) {
    let host = Arc::downgrade(inner);
    let spawned = std::thread::Builder::new().name("fuelhost-take-over".into()).spawn(move || loop {
        let mut waited = Duration::ZERO;
        while waited < take_over_every() {
            std::thread::sleep(Duration::from_millis(500));
            waited += Duration::from_millis(500);
            if host.strong_count() == 0 {
                return;
            }
        }
        let Some(inner) = host.upgrade() else { return };
        match inner.ledger.take_over_dead_hosts() {
            Ok(aborted) if !aborted.is_empty() => {
                tracing::warn!(calls = aborted.len(), "took over the calls of hosts that stopped renewing their lease");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "looking for dead hosts' calls failed; trying again later"),
        }
        match inner.scheduler.take_over_interrupted() {
            Ok(0) => {}
            Ok(n) => tracing::warn!(tasks = n, "queued again the tasks of hosts that stopped"),
            Err(e) => tracing::warn!(error = %e, "looking for dead hosts' tasks failed; trying again later"),
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting the take-over thread failed; dead hosts' calls wait for a restart");
    }
}
