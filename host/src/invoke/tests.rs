//! The ledger stages on a ledger alone: a `SqliteLedger` on a temporary
//! file, no host, no guest.

use std::time::Duration;

use fuelhost_ledger::{AgentId, Asset, Ledger, LedgerQuery, Outcome, SponsorGrant};
use fuelhost_sqlite::{Durability, SqliteLedger};

use super::admit::Charge;
use super::report::report;
use super::reserve::reserve;
use super::run::Ran;
use crate::error::InvokeError;
use crate::manifest::ResourcePolicy;
use crate::telemetry::Metrics;

/// The settle stage on `ledger`, with nothing kept to settle later.
fn settle(
    ledger: &SqliteLedger,
    call: Charge,
    held: super::reserve::Held,
    ran: Ran,
    admission: Option<fuelhost_ledger::AdmissionRecord>,
) -> Result<fuelhost_ledger::UsageRecord, InvokeError> {
    let ledger: std::sync::Arc<dyn Ledger> = std::sync::Arc::new(ledger.clone());
    super::settle::settle(&ledger, &Default::default(), call, held, ran, admission)
}

fn id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

/// A ledger with `alice` (the owner), `bob` (the caller) and `carol` (a
/// sponsor), each with 1,000 scrip and 1,000,000 fuel.
fn ledger() -> (tempfile::TempDir, SqliteLedger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("l.db"), Durability::Process).unwrap();
    for agent in ["alice", "bob", "carol"] {
        ledger.open_account(&id(agent)).unwrap();
        ledger
            .post_one(fuelhost_ledger::Transfer::mint(&format!("{agent}-scrip"), &id(agent), Asset::Scrip, 1_000))
            .unwrap();
        ledger
            .post_one(fuelhost_ledger::Transfer::mint(&format!("{agent}-fuel"), &id(agent), Asset::Fuel, 1_000_000))
            .unwrap();
    }
    (dir, ledger)
}

/// Bob calling alice's artifact, paying for himself.
fn charge(invocation: &str, price: u64, fuel_limit: u64) -> Charge {
    Charge {
        invocation_id: invocation.into(),
        fresh_id: false,
        artifact: "alice/echo@0.1.0".into(),
        resource_policy: ResourcePolicy::CallerPays,
        caller: id("bob"),
        owner: id("alice"),
        payer: id("bob"),
        sponsorship: None,
        price,
        fuel_limit,
    }
}

fn ran(outcome: Outcome, fuel_used: u64) -> Ran {
    Ran {
        outcome,
        output: b"out".to_vec(),
        error: None,
        fuel_used,
        memory_peak: 64 << 10,
        disk_bytes: 0,
        llm_tokens: 0,
        wall: Duration::from_micros(50),
        cost: Default::default(),
    }
}

fn conserved(ledger: &dyn LedgerQuery) {
    for asset in Asset::ALL {
        assert_eq!(ledger.asset_total(asset).unwrap(), 0, "{asset}");
    }
}

#[test]
fn reserve_holds_the_price_and_the_fuel_limit() {
    let (_dir, ledger) = ledger();
    let held = reserve(&ledger, &charge("inv-1", 100, 5_000)).unwrap();
    assert_eq!((held.reserved.fuel, held.payer.as_str()), (5_000, "bob"));
    let bob = ledger.balances(&id("bob")).unwrap();
    assert_eq!((bob.scrip.held, bob.fuel.held), (100, 5_000));
    conserved(&ledger);
}

#[test]
fn reserve_refuses_what_the_caller_cannot_pay_and_holds_nothing() {
    let (_dir, ledger) = ledger();
    let err = reserve(&ledger, &charge("inv-poor", 1_001, 5_000)).err().unwrap();
    assert!(matches!(err, InvokeError::InsufficientScrip { available: 1_000, price: 1_001, .. }), "{err:?}");
    assert_eq!(ledger.pending_holds().unwrap(), 0);
    // A call whose id is held already is in progress, not charged twice.
    reserve(&ledger, &charge("inv-2", 1, 10)).unwrap();
    let again = reserve(&ledger, &charge("inv-2", 1, 10)).err().unwrap();
    assert!(matches!(again, InvokeError::InProgress(ref i) if i == "inv-2"), "{again:?}");
}

#[test]
fn reserve_resolves_the_payer_again_when_the_grant_is_gone() {
    let (_dir, ledger) = ledger();
    let grant = SponsorGrant {
        id: "g".into(),
        sponsor: id("carol"),
        beneficiary: id("bob"),
        fuel_limit: 1_000_000,
        disk_limit: 0,
        expires_at_ms: None,
        artifacts: vec![],
    };
    ledger.grant_sponsorship(&grant).unwrap();
    let status = ledger.sponsorship("g").unwrap().unwrap();
    let sponsored = Charge { payer: id("carol"), sponsorship: Some(status), ..charge("inv-g", 10, 5_000) };
    // Revoked between admission and reservation: bob pays for himself.
    ledger.revoke_sponsorship("g").unwrap();
    let held = reserve(&ledger, &sponsored).unwrap();
    assert_eq!(held.payer.as_str(), "bob");
    assert!(held.sponsorship.is_none());
    assert_eq!(ledger.balances(&id("carol")).unwrap().fuel.held, 0);
    assert_eq!(ledger.balances(&id("bob")).unwrap().fuel.held, 5_000);
}

#[test]
fn settle_charges_the_fuel_burned_and_the_price_only_on_success() {
    let (_dir, ledger) = ledger();
    let ok = charge("inv-ok", 100, 5_000);
    let held = reserve(&ledger, &ok).unwrap();
    let record = settle(&ledger, ok.clone(), held, ran(Outcome::Success, 1_234), None).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel, record.charged_to.as_str()), (100, 1_234, "bob"));

    let failed = charge("inv-trap", 100, 5_000);
    let held = reserve(&ledger, &failed).unwrap();
    let record = settle(&ledger, failed, held, ran(Outcome::Trap, 700), None).unwrap();
    assert_eq!((record.price_paid, record.consumed.fuel), (0, 700));

    let bob = ledger.balances(&id("bob")).unwrap();
    assert_eq!((bob.scrip.posted, bob.scrip.held, bob.fuel.held), (900, 0, 0));
    assert_eq!(bob.fuel.posted, 1_000_000 - 1_234 - 700);
    assert_eq!(ledger.balances(&id("alice")).unwrap().scrip.posted, 1_100);
    // Settling again is refused: a call is charged once.
    let reserved = fuelhost_ledger::Reserved { fuel: 1, disk_bytes: 0, memory_bytes: None, allocation: None };
    let held_again = super::reserve::Held { reserved, payer: id("bob"), sponsorship: None };
    assert!(settle(&ledger, ok, held_again, ran(Outcome::Success, 1), None).is_err());
    conserved(&ledger);
}

#[test]
fn report_answers_the_record_and_counts_it() {
    let (_dir, ledger) = ledger();
    let call = charge("inv-r", 5, 100);
    let held = reserve(&ledger, &call).unwrap();
    let record = settle(&ledger, call, held, ran(Outcome::Success, 42), None).unwrap();
    let metrics = Metrics::default();
    let report = report(&metrics, record);
    assert!(report.success && !report.replayed);
    assert_eq!((report.invocation_id.as_str(), report.output_text().as_str()), ("inv-r", "out"));
    assert_eq!(report.resources_consumed.fuel, 42);
    let text = metrics.render(&ledger, &Default::default(), &[], Default::default());
    assert!(text.contains("outcome=\"success\""), "{text}");
}

/// A component of the artifact world, in WAT: `run` echoes its input,
/// traps on an input starting with `t`, and loops forever on an empty one.
const GUEST: &str = r#"(component
  (core module $m
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get 3)))
      (local.get $p))
    (func (export "run") (param $ptr i32) (param $len i32) (result i32)
      (if (i32.eqz (local.get $len)) (then (loop $forever (br $forever))))
      (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 116)) (then unreachable))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (local.get $ptr))
      (i32.store (i32.const 8) (local.get $len))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (type $error (variant (case "invalid-input" string) (case "denied" string) (case "failed" string)))
  (export $run-error "run-error" (type $error))
  (func $run (param "input" (list u8)) (result (result (list u8) (error $run-error)))
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "run" (func $run)))"#;

/// What a guest that needs neither nested calls nor tasks is given for
/// them: a refusal.
struct NoNesting;

impl crate::sandbox::NestedInvoker for NoNesting {
    fn invoke_nested(
        self: std::sync::Arc<Self>,
        _: crate::invocation::Invocation,
        _: u32,
    ) -> Result<crate::invocation::InvocationReport, InvokeError> {
        Err(InvokeError::Sandbox("no nested calls in this test".into()))
    }
}

impl crate::scheduler::TaskDesk for NoNesting {
    fn submit(&self, _: crate::scheduler::TaskRequest) -> Result<crate::scheduler::Task, crate::scheduler::TaskError> {
        Err(crate::scheduler::TaskError::Invalid("no tasks in this test".into()))
    }

    fn task(&self, id: &str) -> Result<crate::scheduler::Task, crate::scheduler::TaskError> {
        Err(crate::scheduler::TaskError::Unknown(id.into()))
    }
}

/// Run `input` through the run stage: the WAT guest compiled and linked
/// with the artifact linker, bob's call of alice's artifact holding
/// `fuel`, on a ledger on a temporary file; no host.
fn run_guest(input: &[u8], fuel: u64) -> Ran {
    use std::sync::Arc;

    let (dir, ledger) = ledger();
    let ledger: Arc<dyn Ledger> = Arc::new(ledger);
    let (engines, artifact) = echo_artifact();
    let engine = engines.fuel();
    let limits = artifact.info.manifest.limits.within(&crate::HostLimits::default(), 1 << 30);
    let slots = fuelhost_runtime::Slots::new(2, 2);
    let call = super::admit::Admitted {
        charge: charge("inv-run", 0, fuel),
        req: crate::Invocation::new("bob", "alice/echo@0.1.0", input.to_vec()),
        artifact,
        limits,
        root: id("bob"),
        typed: None,
        _slot: slots.acquire("bob", false).unwrap(),
    };
    let held = reserve(&*ledger, &call.charge).unwrap();
    let dirs = crate::disk::AgentDirs::new(dir.path().join("agents"), 1_000);
    let owner_dir = dirs.path(&id("alice"));
    std::fs::create_dir_all(&owner_dir).unwrap();
    let no = Arc::new(NoNesting);
    let env = super::run::RunEnv {
        dir: owner_dir,
        agent_dir: dirs.get(&id("alice")),
        ledger: ledger.clone(),
        judge: Arc::new(fuelhost_policy::PolicyChain::new(
            engine.clone(),
            fuelhost_policy::PluginLimits::default(),
            Duration::from_millis(10),
        )),
        nested: no.clone(),
        tasks: no,
        cost: Default::default(),
        deterministic_fuel: false,
        tick: Duration::from_millis(10),
        llm: Arc::new(crate::llm::Providers::new(Vec::new()).unwrap()),
    };
    let _ticker = fuelhost_runtime::EpochTicker::start(engines.clone(), Duration::from_millis(10));
    super::run::run(env, &call, &held, 0, &mut crate::telemetry::StageClock::start())
}

#[test]
fn run_answers_the_guests_output_and_the_fuel_it_burned() {
    let ran = run_guest(b"hello", 1_000_000);
    assert_eq!((ran.outcome, ran.output.as_slice(), ran.error.as_deref()), (Outcome::Success, &b"hello"[..], None));
    assert!(ran.fuel_used > 0 && ran.fuel_used < 1_000_000, "{}", ran.fuel_used);
    assert_eq!(ran.disk_bytes, 0);
}

#[test]
fn run_classifies_a_trap_and_running_out_of_fuel() {
    let trap = run_guest(b"trap", 1_000_000);
    assert_eq!(trap.outcome, Outcome::Trap);
    assert!(trap.output.is_empty());
    assert!(trap.error.as_deref().is_some_and(|e| e.starts_with("trap:")), "{:?}", trap.error);

    let endless = run_guest(b"", 50_000);
    assert_eq!(endless.outcome, Outcome::OutOfFuel, "{:?}", endless.error);
    assert_eq!(endless.fuel_used, 50_000, "an endless loop burns exactly what was held");
}

/// The WAT guest as alice's artifact `alice/echo@0.1.0` (price 5),
/// compiled and linked with the artifact linker.
fn echo_artifact() -> (fuelhost_runtime::Engines, std::sync::Arc<crate::registry::LoadedArtifact>) {
    let engines = fuelhost_runtime::Engines::new(&fuelhost_runtime::EngineSettings::default()).unwrap();
    let engine = engines.fuel();
    let component = wasmtime::component::Component::new(engine, GUEST).unwrap();
    let linker = crate::capabilities::artifact_linker(engine, false).unwrap();
    let pre = crate::bindings::artifact::ArtifactPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let manifest = crate::Manifest::from_toml(
        "owner = \"alice\"\nname = \"echo\"\nversion = \"0.1.0\"\nprice = 5\nresource_policy = \"caller_pays\"",
    )
    .unwrap();
    let info = crate::registry::ArtifactInfo {
        id: "alice/echo@0.1.0".into(),
        manifest,
        digest: String::new(),
        size: GUEST.len(),
        uploaded_ms: 0,
    };
    (
        engines,
        std::sync::Arc::new(crate::registry::LoadedArtifact {
            info,
            pre: std::sync::Arc::new(crate::registry::Code::Run(pre)),
        }),
    )
}

/// Admit `req` with the echo artifact, on `ledger`, judged by `rules`;
/// approvals wait in a database of their own.
fn admit_with(
    ledger: &SqliteLedger,
    rules: &str,
    req: crate::Invocation,
) -> Result<super::admit::Admission, InvokeError> {
    use std::sync::Arc;

    let (engines, artifact) = echo_artifact();
    let chain = fuelhost_policy::PolicyChain::new(
        engines.policy().clone(),
        fuelhost_policy::PluginLimits::default(),
        Duration::from_millis(10),
    );
    chain.set_rules(crate::RuleSet::from_toml(rules).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(fuelhost_sqlite::Database::open(&dir.path().join("a.db"), Durability::Process).unwrap());
    let approvals = crate::approvals::Approvals::new(db, Arc::new(fuelhost_ledger::SystemClock), 60_000);
    let slots = fuelhost_runtime::Slots::new(2, 2);
    let lookup = |id: &str| Ok((id == artifact.info.id).then(|| artifact.clone()));
    let env = super::admit::AdmitEnv {
        artifacts: &lookup,
        ledger,
        judge: &chain,
        approvals: &approvals,
        slots: &slots,
        limits: &crate::HostLimits::default(),
        max_memory_bytes: 1 << 30,
    };
    super::admit::admit(&env, req, 0, &tracing::Span::none())
}

#[test]
fn admit_refuses_what_it_cannot_run_and_charges_nothing() {
    let (_dir, ledger) = ledger();
    let unknown = admit_with(&ledger, "", crate::Invocation::new("bob", "alice/nope@1", "x")).err().unwrap();
    assert!(matches!(unknown, InvokeError::UnknownArtifact(_)), "{unknown:?}");
    let stranger = admit_with(&ledger, "", crate::Invocation::new("dave", "alice/echo@0.1.0", "x")).err().unwrap();
    assert!(matches!(stranger, InvokeError::UnknownCaller(_)), "{stranger:?}");
    let big = vec![0u8; (crate::HostLimits::default().max_input_bytes + 1) as usize];
    let too_big = admit_with(&ledger, "", crate::Invocation::new("bob", "alice/echo@0.1.0", big)).err().unwrap();
    assert!(matches!(too_big, InvokeError::InputTooLarge { .. }), "{too_big:?}");
    assert_eq!(ledger.pending_holds().unwrap(), 0);
}

#[test]
fn admit_decides_payer_price_and_policy() {
    let (_dir, ledger) = ledger();
    let call = match admit_with(&ledger, "", crate::Invocation::new("bob", "alice/echo@0.1.0", "x").id("inv-a")) {
        Ok(super::admit::Admission::Admitted(call)) => call,
        _ => panic!("admitted"),
    };
    let c = &call.charge;
    assert_eq!((c.invocation_id.as_str(), c.payer.as_str(), c.owner.as_str(), c.price), ("inv-a", "bob", "alice", 5));
    assert!(!c.fresh_id);

    let deny =
        "[[rule]]\nname = \"no\"\neffect = \"deny\"\naction = \"invoke\"\ntarget = \"alice/*\"\nreason = \"closed\"\n";
    let denied = admit_with(&ledger, deny, crate::Invocation::new("bob", "alice/echo@0.1.0", "x")).err().unwrap();
    assert!(matches!(denied, InvokeError::Denied(ref r) if r.contains("closed")), "{denied:?}");

    let nod = "[[rule]]\nname = \"nod\"\neffect = \"require_approval\"\naction = \"invoke\"\ntarget = \"alice/*\"\napprovers = [\"carol\"]\n";
    let parked = admit_with(&ledger, nod, crate::Invocation::new("bob", "alice/echo@0.1.0", "x")).err().unwrap();
    assert!(matches!(parked, InvokeError::PendingApproval { ref approvers, .. } if approvers == "carol"), "{parked:?}");
    assert_eq!(ledger.pending_holds().unwrap(), 0, "refused and parked calls hold nothing");
}

#[test]
fn admit_answers_a_settled_id_from_its_record() {
    let (_dir, ledger) = ledger();
    let call = charge("inv-done", 5, 1_000);
    let held = reserve(&ledger, &call).unwrap();
    settle(&ledger, call, held, ran(Outcome::Success, 10), None).unwrap();
    match admit_with(&ledger, "", crate::Invocation::new("bob", "alice/echo@0.1.0", "x").id("inv-done")) {
        Ok(super::admit::Admission::Replay(report)) => assert!(report.replayed && report.success),
        _ => panic!("a replay"),
    }
    // Another caller's retry of that id is refused, not answered.
    let other = admit_with(&ledger, "", crate::Invocation::new("carol", "alice/echo@0.1.0", "x").id("inv-done"));
    assert!(matches!(other, Err(InvokeError::IdTaken(_))), "{:?}", other.err());
}
