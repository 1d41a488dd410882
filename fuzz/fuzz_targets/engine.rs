#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| envoy_oidc_testkit::fuzzing::engine(data));
