//! The benchmark kernels, one function each, with no dependencies so the
//! same code runs natively and in the `rust-kernels` guest. Each stresses
//! something metering pays for differently:
//!
//! - [`hash_loop`]: a tight arithmetic loop (fuel is charged per basic
//!   block; epoch checks sit on loop back-edges);
//! - [`fib`]: recursive calls (checks on every function entry);
//! - [`mem_walk`]: loads and stores over a buffer bigger than the caches;
//! - [`word_freq`]: string processing, its input and output crossing the
//!   component ABI.
//!
//! [`run`] parses a command (`"hash 1000"`, `"fib 25"`, `"mem 1048576 4"`,
//! `"words <text>"`) so the guest and the native benches share one entry.

#![no_std]
extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// `n` rounds of xorshift64* folded into an FNV-1a hash.
pub fn hash_loop(n: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        h = (h ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The `n`th Fibonacci number, the slow recursive way (call-heavy).
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// `passes` strided read-modify-write sweeps over `bytes` bytes; returns a
/// checksum so nothing is optimised away.
pub fn mem_walk(bytes: usize, passes: u32) -> u64 {
    let words = (bytes / 8).max(1);
    let mut buf: Vec<u64> = vec![0; words];
    // A stride co-prime with the length visits every word once per pass,
    // jumping around enough to defeat the prefetcher.
    let stride = 4099 % words.max(2);
    let stride = if stride == 0 { 1 } else { stride };
    let mut sum = 0u64;
    let mut i = 0usize;
    for p in 0..passes as u64 {
        for _ in 0..words {
            buf[i] = buf[i].wrapping_add(i as u64 ^ p);
            sum = sum.wrapping_add(buf[i]);
            i += stride;
            if i >= words {
                i -= words;
            }
        }
    }
    sum
}

/// Word frequencies of `text` (lower-cased, split on non-alphanumerics):
/// `"<distinct> <top word>:<count> ..."` for the five most frequent.
pub fn word_freq(text: &str) -> String {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut top: Vec<(&String, &u32)> = counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = format!("{}", counts.len());
    for (w, n) in top.into_iter().take(5) {
        out.push_str(&format!(" {w}:{n}"));
    }
    out
}

/// Run the kernel a command names; `Err` says what a valid command is.
pub fn run(command: &str) -> Result<String, String> {
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("`{s}` is not a number"));
    match name {
        "hash" => Ok(format!("{}", hash_loop(num(rest)?))),
        "fib" => Ok(format!("{}", fib(num(rest)?.min(60) as u32))),
        "mem" => {
            let (bytes, passes) = rest.trim().split_once(' ').unwrap_or((rest, "1"));
            Ok(format!("{}", mem_walk(num(bytes)? as usize, num(passes)? as u32)))
        }
        "words" => Ok(word_freq(rest)),
        _ => Err(format!("unknown kernel `{name}`: send `hash N`, `fib N`, `mem BYTES PASSES` or `words TEXT`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_what_they_claim() {
        assert_eq!(fib(20), 6765);
        assert_eq!(hash_loop(0), 0xcbf2_9ce4_8422_2325);
        assert_ne!(hash_loop(10), hash_loop(11));
        assert_eq!(mem_walk(64, 1), (0..8u64).sum::<u64>());
        assert_eq!(word_freq("The cat, the hat. THE end"), "4 the:3 cat:1 end:1 hat:1");
        assert_eq!(run("fib 10"), Ok("55".into()));
        assert!(run("sort 3").unwrap_err().contains("unknown kernel `sort`"));
        assert!(run("hash x").unwrap_err().contains("`x` is not a number"));
    }
}
