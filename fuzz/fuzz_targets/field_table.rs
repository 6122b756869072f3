#![no_main]
//! The wire check of AMQP field tables against amq-protocol's decoder:
//! what the check accepts decodes to the same length, within the depth
//! limit, and round-trips.
//!
//! The checks are in `warren::fuzzing::field_table`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::field_table(data));
