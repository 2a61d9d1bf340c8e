#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| newsroom_fuzzing::event_decode(data));
