#![no_main]
//! The topic exchange's trie against a reference matcher (dynamic
//! programming over words): lines of binding keys, the routing key last;
//! the routed set must be exactly the reference's, also after removals.
//!
//! The checks are in `warren::fuzzing::topic`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::fuzzing::topic(data));
