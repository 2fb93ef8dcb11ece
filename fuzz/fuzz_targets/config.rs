//! `ConfigFile::parse` on arbitrary text; `merged` on each stream, and the error
//! helpers on what it returns. Invariants: nothing panics, and `merged` gives each key
//! at most once (`max-frames` and `max_frames` in one table are refused:
//! fuzz/known/config-dash-underscore-duplicate.toml).
#![no_main]

use frameflow_fuzz::config::ConfigFile;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::path::Path;

fuzz_target!(|text: &str| {
    let path = Path::new("fuzz.toml");
    let Ok(cfg) = ConfigFile::parse(path, text) else {
        return;
    };
    for entry in &cfg.streams {
        let merged = cfg.merged(entry);
        let mut keys = HashSet::new();
        for s in &merged {
            let _ = cfg.key_error(s, "fuzz").to_string();
            let fresh = keys.insert(s.key.as_str());
            assert!(fresh, "key {:?} twice in {merged:?}", s.key);
        }
        let _ = cfg.stream_error(entry, "fuzz").to_string();
    }
});
