#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wisp::fuzzing::bodies(data));
