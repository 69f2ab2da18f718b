//! Fuzzing oddity's parsers of outside data with plain cargo (no nightly, no libFuzzer): each
//! target replays its seed corpus (`fuzz/corpus/<target>/`) and then seeded mutations of it for
//! a bounded time, calling the real parser inside `catch_unwind`. A panic keeps its input in
//! `fuzz/crashes/<target>/`; a fixed crash's input moves to `fuzz/regressions/<target>/`, which
//! `tests/fuzz_regressions.rs` replays.
//!
//! `cargo run -p oddity-fuzz --release -- run all --seconds 45 --seed 1`

pub mod driver;
pub mod mutate;
pub mod seeds;
pub mod targets;
