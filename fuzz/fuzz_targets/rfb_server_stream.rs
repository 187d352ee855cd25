#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bascule_fuzzing::oracles::rfb_server_stream(data));
