//! rust-hostile: a test fixture artifact that does, on command, what a
//! hostile guest would to burn the host's resources without paying. The
//! input is `verb:arg:arg`; each verb reports what it managed to do, so
//! the tests can check that the host stopped it where it should.

use std::io::{Seek, SeekFrom, Write};

use fuelhost_guest::{ledger, log, Artifact, RunError};

struct Hostile;

fn failed(e: impl std::fmt::Display) -> RunError {
    RunError::Failed(e.to_string())
}

fn num(s: &str) -> Result<u64, RunError> {
    s.parse().map_err(|_| RunError::InvalidInput(format!("`{s}` is not a number")))
}

/// How an I/O error reads in a report: its kind, which a quota refusal
/// makes `QuotaExceeded`.
fn kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

/// Write `total` bytes to `path` in chunks of `chunk` through one open
/// file (WASI output streams); report how far it got.
fn fill(path: &str, total: u64, chunk: usize) -> String {
    let mut file = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => return format!("open failed: {}", kind(&e)),
    };
    let buf = vec![7u8; chunk];
    let mut written = 0u64;
    while written < total {
        let n = chunk.min((total - written) as usize);
        if let Err(e) = file.write_all(&buf[..n]) {
            return format!("wrote {written} then {}", kind(&e));
        }
        written += n as u64;
    }
    format!("wrote {written}")
}

impl Artifact for Hostile {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, RunError> {
        let text = String::from_utf8(input).map_err(|_| RunError::InvalidInput("utf-8 command expected".into()))?;
        let mut parts = text.splitn(3, ':');
        let verb = parts.next().unwrap_or_default();
        let a = parts.next().unwrap_or_default();
        let b = parts.next().unwrap_or_default();
        let out = match verb {
            // fill:PATH:BYTES: stream BYTES into PATH, 64 KiB at a time.
            "fill" => fill(a, num(b)?, 64 << 10),
            // fill-then-trap:PATH:BYTES: as fill, then trap whatever happened.
            "fill-then-trap" => panic!("{}", fill(a, num(b)?, 64 << 10)),
            // fill-then-succeed:PATH:BYTES: as fill, then succeed with the report.
            "fill-then-succeed" => fill(a, num(b)?, 64 << 10),
            // at:PATH:OFFSET: one byte far past the end (a sparse file).
            "at" => {
                let mut file = std::fs::OpenOptions::new().create(true).write(true).open(a).map_err(failed)?;
                file.seek(SeekFrom::Start(num(b)?)).map_err(failed)?;
                match file.write_all(b"x") {
                    Ok(()) => "wrote".into(),
                    Err(e) => kind(&e),
                }
            }
            // setlen:PATH:BYTES: grow (or shrink) a file by its size alone.
            "setlen" => {
                let file = std::fs::OpenOptions::new().create(true).write(true).open(a).map_err(failed)?;
                match file.set_len(num(b)?) {
                    Ok(()) => "set".into(),
                    Err(e) => kind(&e),
                }
            }
            // files:DIR:N: create N empty files in DIR; dirs:DIR:N: N directories.
            "files" | "dirs" => {
                std::fs::create_dir_all(a).map_err(failed)?;
                let n = num(b)?;
                for i in 0..n {
                    let path = format!("{a}/{i}");
                    let made = if verb == "files" {
                        std::fs::File::create(&path).map(drop)
                    } else {
                        std::fs::create_dir(&path)
                    };
                    if let Err(e) = made {
                        return Ok(format!("made {i} then {}", kind(&e)).into_bytes());
                    }
                }
                format!("made {n}")
            }
            // rm:PATH: remove a file.
            "rm" => {
                std::fs::remove_file(a).map_err(failed)?;
                "removed".into()
            }
            // hostcalls:N: N cheap host calls (the call's context).
            "hostcalls" => {
                let mut total = 0usize;
                for _ in 0..num(a)? {
                    total += ledger::context().invocation_id.len();
                }
                format!("called {total}")
            }
            // hostcalls-forever: cheap host calls until something stops it.
            "hostcalls-forever" => loop {
                std::hint::black_box(ledger::context());
            },
            // logs:N:BYTES: N log lines of BYTES each.
            "logs" => {
                let line = "x".repeat(num(b)? as usize);
                for _ in 0..num(a)? {
                    log::info(&line);
                }
                "logged".into()
            }
            // output:BYTES: an output of BYTES.
            "output" => return Ok(vec![b'o'; num(a)? as usize]),
            // sleep:MS: sleep in a host wait (a monotonic-clock pollable).
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(num(a)?));
                "slept".into()
            }
            // nested:ARTIFACT:N: invoke ARTIFACT (with input `echo:x`) N times.
            "nested" => {
                let mut ok = 0;
                for _ in 0..num(b)? {
                    match fuelhost_guest::invoke::invoke(a, b"echo:x", None) {
                        Ok(_) => ok += 1,
                        Err(e) => return Ok(format!("nested {ok} then {e:?}").into_bytes()),
                    }
                }
                format!("nested {ok}")
            }
            // spin:N: N rounds of a hash loop (pure compute).
            "spin" => {
                let mut h: u64 = 0xcbf29ce484222325;
                for i in 0..num(a)? {
                    h = (h ^ i).wrapping_mul(0x100000001b3);
                }
                std::hint::black_box(h).to_string()
            }
            // balance:N: N reads of the caller's balance.
            "balance" => {
                let caller = ledger::context().caller;
                for _ in 0..num(a)? {
                    std::hint::black_box(ledger::balance(&caller).map_err(|e| failed(format!("{e:?}")))?);
                }
                "read".into()
            }
            // policy:N: N questions to the policy chain.
            "policy" => {
                let action = fuelhost_guest::Action {
                    kind: "probe".into(),
                    subject: String::new(),
                    tenant: None,
                    target: "x".into(),
                    attributes: vec![],
                    price: 0,
                    estimated: fuelhost_guest::Usage {
                        fuel: 0,
                        memory_peak_bytes: 0,
                        disk_bytes: 0,
                        llm_tokens: 0,
                        wall_time_ns: 0,
                    },
                };
                for _ in 0..num(a)? {
                    std::hint::black_box(fuelhost_guest::policy::check(&action));
                }
                "asked".into()
            }
            // rw:PATH:N:BYTES: write BYTES to PATH once, then N positional
            // reads and N positional overwrites of it (no growth).
            "rw" => {
                use std::io::Read;
                let (n, bytes) = b.split_once(':').ok_or_else(|| RunError::InvalidInput("rw:PATH:N:BYTES".into()))?;
                let buf = vec![1u8; num(bytes)? as usize];
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(a)
                    .map_err(failed)?;
                file.write_all(&buf).map_err(failed)?;
                let mut back = vec![0u8; buf.len()];
                for _ in 0..num(n)? {
                    file.seek(SeekFrom::Start(0)).map_err(failed)?;
                    file.read_exact(&mut back).map_err(failed)?;
                    file.seek(SeekFrom::Start(0)).map_err(failed)?;
                    file.write_all(&back).map_err(failed)?;
                }
                "done".into()
            }
            // stdout:N:BYTES: N writes of BYTES to standard output.
            "stdout" => {
                let line = vec![b'y'; num(b)? as usize];
                let mut out = std::io::stdout();
                for _ in 0..num(a)? {
                    let _ = out.write_all(&line);
                }
                "printed".into()
            }
            "echo" => a.to_string(),
            other => return Err(RunError::InvalidInput(format!("unknown command `{other}`"))),
        };
        Ok(out.into_bytes())
    }
}

fuelhost_guest::export_artifact!(Hostile);
