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

/// Type bytes of the corpus inputs of `target` that `decodes` accepts.
fn decoded_types(target: &str, decodes: fn(&[u8]) -> bool) -> Vec<u8> {
    let mut types: Vec<u8> = inputs(&fuzz_dir().join("corpus").join(target))
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .filter(|data| decodes(data))
        .map(|data| data[0])
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

#[test]
fn the_corpus_has_a_valid_input_of_every_message_type() {
    let server = decoded_types("server_message", |d| {
        bascule_proto::ServerMessage::decode(d).is_ok()
    });
    assert_eq!(server, (0x01..=0x12).collect::<Vec<u8>>(), "server_message");
    let client = decoded_types("client_message", |d| {
        bascule_proto::ClientMessage::decode(d).is_ok()
    });
    assert_eq!(client, (0x81..=0x8a).collect::<Vec<u8>>(), "client_message");
}
