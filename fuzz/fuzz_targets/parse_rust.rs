//! Rust parse and entity extraction, including the re-parse of item-level macro bodies, on any
//! text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    locus_fuzz::check_parse(locus_syntax::Lang::Rust, &String::from_utf8_lossy(data));
});
