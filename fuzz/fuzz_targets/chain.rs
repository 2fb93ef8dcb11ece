//! `Chain::parse` on arbitrary text. Invariants: parsing never panics; a chain that
//! parses prints (Display) to a text that parses back to the same chain; `output_mode`
//! never panics for any input mode.
#![no_main]

use frameflow_filters::{Chain, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(chain) = Chain::parse(text) else {
        return;
    };
    for mode in [Mode::L, Mode::Rgb, Mode::Rgba] {
        let _ = chain.output_mode(mode);
    }
    let _ = chain.row_filter();
    let printed = chain.to_string();
    let again = Chain::parse(&printed)
        .unwrap_or_else(|e| panic!("canonical text {printed:?} of {text:?} does not parse: {e}"));
    assert_eq!(
        again, chain,
        "{text:?} printed as {printed:?} parses differently"
    );
});
