//! Agent liveness: heartbeats keep an agent healthy for their TTL; a quiet
//! agent turns unhealthy; health survives a restart; bad heartbeats are
//! refused with what to fix.

use std::sync::Arc;
use std::time::Duration;

use fuelhost::{Health, Host, ManualClock};
use fuelhost_tests::shared_compile_cache;

fn open(dir: &std::path::Path, clock: &ManualClock) -> Host {
    Host::builder()
        .data_dir(dir)
        .compile_cache_dir(shared_compile_cache())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[test]
fn an_agent_is_healthy_while_it_beats_and_unhealthy_once_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let host = open(dir.path(), &clock);
    for agent in ["worker", "idle"] {
        host.create_agent(agent).unwrap();
    }
    assert_eq!(host.agent_health("worker").health, Health::Unknown, "no heartbeat yet");

    let h = host.heartbeat("worker", Some(Duration::from_secs(10)), Some("crawling".into())).unwrap();
    assert_eq!((h.health, h.ttl_ms, h.status.as_deref()), (Health::Healthy, Some(10_000), Some("crawling")));
    clock.advance(9_000);
    assert_eq!(host.agent_health("worker").health, Health::Healthy, "within its TTL");
    host.heartbeat("worker", Some(Duration::from_secs(10)), None).unwrap();
    clock.advance(9_000);
    assert_eq!(host.agent_health("worker").health, Health::Healthy, "the second beat extended it");
    clock.advance(2_000);
    let quiet = host.agent_health("worker");
    assert_eq!((quiet.health, quiet.last_heartbeat_ms), (Health::Unhealthy, Some(1_700_000_009_000)));
    assert!(host.metrics_text().contains("fuelhost_agent_healthy{agent=\"worker\"} 0"));

    // Remembered across a restart: still unhealthy, and a beat revives it.
    drop(host);
    let host = open(dir.path(), &clock);
    assert_eq!(host.agent_health("worker").health, Health::Unhealthy);
    host.heartbeat("worker", None, None).unwrap();
    let all = host.agents_health();
    assert_eq!(all.len(), 1, "only agents that beat are listed: {all:?}");
    assert_eq!((all[0].health, all[0].ttl_ms), (Health::Healthy, Some(30_000)), "the default TTL");

    // Bad heartbeats change nothing.
    let err = host.heartbeat("worker", Some(Duration::ZERO), None).unwrap_err();
    assert!(err.to_string().contains("ttl must be between"), "{err}");
    let err = host.heartbeat("worker", None, Some("x".repeat(300))).unwrap_err();
    assert!(err.to_string().contains("at most 256 bytes"), "{err}");
    assert!(host.heartbeat("nobody", None, None).is_err(), "unknown agents cannot beat");
    assert_eq!(host.agent_health("idle").health, Health::Unknown);
}
