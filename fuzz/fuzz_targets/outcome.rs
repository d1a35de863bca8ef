//! The `outcome` fuzz target: see `fuzz/src/lib.rs` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stella_connect_fuzz::outcome(data));
