//! Python parse and entity extraction (and the file's index unit) on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    locus_fuzz::check_parse(locus_syntax::Lang::Python, &String::from_utf8_lossy(data));
});
