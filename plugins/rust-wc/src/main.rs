//! rust-wc: a `wasi:cli/command` of the plainest kind, a Rust `main` built
//! for wasm32-wasip2 with no SDK at all: it counts the lines, words and
//! bytes of its standard input and prints them, prefixed by its arguments
//! and the `WC_LABEL` environment variable. Input `fail` exits with code 3
//! (saying why on stderr; WASI 0.2's `exit` carries failure alone, so the
//! host sees code 1); input `spin` loops until its fuel runs out.

use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read stdin: {e}");
        std::process::exit(2);
    }
    match input.trim() {
        "fail" => {
            eprintln!("asked to fail");
            std::process::exit(3);
        }
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        _ => {}
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let label = std::env::var("WC_LABEL").unwrap_or_default();
    let (lines, words, bytes) = (input.lines().count(), input.split_whitespace().count(), input.len());
    let mut out = std::io::stdout().lock();
    let _ =
        writeln!(out, "{label}{}{} {lines} {words} {bytes}", args.join(" "), if args.is_empty() { "" } else { ":" });
}
