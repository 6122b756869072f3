#![no_main]
//! Definitions import (the JSON of POST /api/definitions and
//! load_definitions) parsed, checked into broker commands and applied to
//! an in-memory broker.
//!
//! The checks are in `warren::fuzzing::definitions`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::definitions(data));
