#![no_main]
//! A client's byte stream (real captures seed it) read into frames and
//! handed to the channels of a connection to an in-memory broker:
//! declares, binds, consumes, acks, confirms, transactions, and content
//! frames assembled into messages and routed.
//!
//! The checks are in `warren::fuzzing::channel`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::channel(data));
