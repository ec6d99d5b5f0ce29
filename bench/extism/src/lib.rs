//! Benchmarks only: see `benches/per_call.rs`.
