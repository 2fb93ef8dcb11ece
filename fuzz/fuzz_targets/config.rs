//! `ConfigFile::parse` on arbitrary text; `merged` on each stream, and the error
//! helpers on what it returns. Invariant: nothing panics.
//!
//! With `FUZZ_STRICT=1`, also that `merged` gives each key at most once. That is known
//! not to hold yet: `max-frames = 1` and `max_frames = 2` in one table both become the
//! key `max_frames` (see fuzz/known/config-dash-underscore-duplicate.toml).
#![no_main]

use frameflow_fuzz::config::ConfigFile;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

fn strict() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_STRICT").is_some_and(|v| v == "1"))
}

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
            if strict() {
                assert!(fresh, "key {:?} twice in {merged:?}", s.key);
            }
        }
        let _ = cfg.stream_error(entry, "fuzz").to_string();
    }
});
