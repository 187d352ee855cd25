//! Replays the committed fuzz corpus and regressions through the oracles, so that CI re-checks
//! every input the fuzzer ever kept or crashed on, without a nightly toolchain or libFuzzer.
//!
//! Inputs: `fuzz/corpus/<target>/*` (must exist and be non-empty, so that this test never passes
//! vacuously) and `fuzz/regressions/<target>/*` (optional).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bascule_fuzzing::oracles;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Regular files of `dir`, sorted; hidden files (cargo-fuzz bookkeeping) are skipped.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, oracle: fn(&[u8])) {
    let corpus_dir = fuzz_dir().join("corpus").join(target);
    let corpus = inputs(&corpus_dir);
    assert!(
        !corpus.is_empty(),
        "corpus {} is missing or empty",
        corpus_dir.display()
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| oracle(&data)) {
            eprintln!("{target}: {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    println!(
        "{target}: replayed {} corpus inputs and {} regressions",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn rfb_server_stream() {
    replay("rfb_server_stream", oracles::rfb_server_stream);
}

#[test]
fn client_message() {
    replay("client_message", oracles::client_message);
}

#[test]
fn server_message() {
    replay("server_message", oracles::server_message);
}
