#![no_main]
//! The AMQP frame reader on arbitrary byte streams fed in chunks: no
//! panic, no reservation far beyond the input, methods that survive
//! re-encoding, content headers whose properties decode.
//!
//! The checks are in `warren::fuzzing::frames`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::frames(data));
