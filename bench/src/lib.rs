//! Shared code of the benchmark binaries: the synthetic detector workload that `detect-scale` and
//! `detect-memory` run (the gateway load harness, `moat-bench`, lives in `main.rs`).

pub mod detect;
