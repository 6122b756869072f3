#![no_main]
//! The management API's JSON request bodies (first byte picks the type)
//! read and checked as their handlers do: tables and message properties
//! built from JSON must be valid on the wire.
//!
//! The checks are in `warren::fuzzing::http_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::http_json(data));
