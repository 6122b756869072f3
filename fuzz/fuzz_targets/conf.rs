#![no_main]
//! The warren.conf parser on arbitrary text: no panic, errors name a line
//! of the input.
//!
//! The checks are in `warren::fuzzing::conf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::conf(data));
