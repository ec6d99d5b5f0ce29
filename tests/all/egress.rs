//! Egress: an artifact's outgoing HTTP requests go out only to hosts a rule
//! explicitly allows; anything else fails inside the guest, never reaches
//! the network, and every decision is audited. Tested against an HTTP
//! server on loopback that counts its connections.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuelhost::{Invocation, Limits, Outcome, ResourcePolicy};
use fuelhost_tests::{test_host, upload};

/// A loopback HTTP server answering `hello` to each request, for at most
/// 30 seconds or until the returned guard is dropped.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ =
                            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { port, connections, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn requests_go_out_only_to_hosts_a_rule_allows() {
    let t = test_host();
    let server = Server::start();
    let probe = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let get =
        |port: u16| t.host.invoke(Invocation::new("bob", &probe, format!("get:http://127.0.0.1:{port}/hi"))).unwrap();

    // Deny by default: no rule names the host.
    let r = get(server.port);
    assert_eq!(r.outcome, Outcome::RunError);
    assert!(r.error.unwrap().contains("HttpRequestDenied"));
    assert_eq!(server.connections.load(Ordering::Relaxed), 0, "a refused request never leaves the host");

    // Allowing the host is not enough for an address on this machine:
    // loopback must be allowed as an address too (`http-connect`).
    let allow_host = format!(
        "[[rule]]\nname = \"local-service\"\neffect = \"allow\"\naction = \"http-request\"\ntarget = \"127.0.0.1:{}\"\n",
        server.port
    );
    t.host.set_policy_rules(&allow_host).unwrap();
    let r = get(server.port);
    assert!(r.error.unwrap().contains("DestinationIpProhibited"));
    assert_eq!(server.connections.load(Ordering::Relaxed), 0, "a refused address is never connected to");
    t.host
        .set_policy_rules(&format!(
            "{allow_host}[[rule]]\nname = \"local-address\"\neffect = \"allow\"\naction = \"http-connect\"\ntarget = \"127.0.0.1:{}\"\n",
            server.port
        ))
        .unwrap();
    let r = get(server.port);
    assert_eq!((r.outcome, r.output_text().as_str()), (Outcome::Success, "200 hello"), "{:?}", r.error);
    assert_eq!(server.connections.load(Ordering::Relaxed), 1);

    // Another port on the same machine is another host: refused.
    let other = Server::start();
    let r = get(other.port);
    assert!(r.error.unwrap().contains("HttpRequestDenied"));
    assert_eq!(other.connections.load(Ordering::Relaxed), 0);

    // A token in the query string reaches the server but never the audit log.
    let r = t
        .host
        .invoke(Invocation::new("bob", &probe, format!("get:http://127.0.0.1:{}/hi?token=s3cr3t", server.port)))
        .unwrap();
    assert_eq!(r.output_text(), "200 hello");
    let audit = t.host.audit_log().unwrap();
    let everything = format!("{audit:?}");
    assert!(!everything.contains("s3cr3t"), "a secret reached the audit log");
    let requests: Vec<_> = audit.iter().filter(|e| e.kind == "http-request").collect();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].decided_by.as_deref(), Some("egress default"));
    assert_eq!(requests[1].decision, "allow");
    let connects: Vec<_> = audit.iter().filter(|e| e.kind == "http-connect").collect();
    assert_eq!(connects[0].decided_by.as_deref(), Some("egress default"));
    assert_eq!(connects[1].decision, "allow");
    assert!(requests.iter().all(|e| e.subject == "alice"), "asked in the principal's name");
}

/// A permitted host name that resolves into the host's own network
/// (loopback here; private, link-local and the cloud metadata address
/// alike) reaches nothing unless that address is allowed explicitly: the
/// name is resolved once, each address vetted, and only vetted addresses
/// are connected to.
#[test]
fn a_permitted_name_resolving_to_loopback_reaches_nothing() {
    let t = test_host();
    let server = Server::start();
    let probe = upload(&t.host, "rust-probe", "probe", 0, ResourcePolicy::CallerPays, Limits::default());
    let get =
        || t.host.invoke(Invocation::new("bob", &probe, format!("get:http://localhost:{}/", server.port))).unwrap();
    let allow_name = format!(
        "[[rule]]\nname = \"by-name\"\neffect = \"allow\"\naction = \"http-request\"\ntarget = \"localhost:{}\"\n",
        server.port
    );
    t.host.set_policy_rules(&allow_name).unwrap();
    let r = get();
    assert!(r.error.as_deref().unwrap_or("").contains("DestinationIpProhibited"), "{r:?}");
    assert_eq!(server.connections.load(Ordering::Relaxed), 0);
    let refusal = t.host.audit_log().unwrap().into_iter().find(|e| e.kind == "http-connect").unwrap();
    assert!(refusal.reason.as_deref().unwrap_or("").contains("loopback"), "{refusal:?}");
    // A wildcard over names does not open addresses either; an explicit
    // rule for the address does.
    t.host
        .set_policy_rules(&format!(
            "{allow_name}[[rule]]\nname = \"any-name\"\neffect = \"allow\"\naction = \"http-request\"\ntarget = \"*\"\n"
        ))
        .unwrap();
    assert!(get().error.as_deref().unwrap_or("").contains("DestinationIpProhibited"));
    t.host
        .set_policy_rules(&format!(
            "{allow_name}[[rule]]\nname = \"loopback\"\neffect = \"allow\"\naction = \"http-connect\"\ntarget = \"127.0.0.1:*\"\n[[rule]]\nname = \"loopback6\"\neffect = \"allow\"\naction = \"http-connect\"\ntarget = \"[::1]:*\"\n"
        ))
        .unwrap();
    let r = get();
    assert_eq!(r.output_text(), "200 hello", "{:?}", r.error);
}
