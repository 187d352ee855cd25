//! Fuzz oracles for the parsers of untrusted bytes in Bascule.
//!
//! The same functions are called by the cargo-fuzz targets in `fuzz/` (with coverage-guided
//! inputs) and by `tests/replay.rs` (with the committed corpus and regressions), so a crash found
//! by the fuzzer stays reproducible with a plain `cargo test -p bascule-fuzzing`.
//!
//! An oracle returns normally for every input the code under test handles correctly, including
//! inputs it rejects with an error; it panics only when an invariant is broken, that is on a real
//! bug.

pub mod oracles;
pub mod wire;

#[cfg(test)]
mod tests;
