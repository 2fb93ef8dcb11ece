//! `Template::parse` and `render` with arbitrary templates and field values.
//!
//! Invariants for an accepted template: rendering never panics, and the name is relative
//! (no root, not starting with `/`) with no `..` component, so it cannot leave the output
//! directory. With an empty `{stream}`/`{stem}`/`{time}`/`{ext}` value the invariant is
//! known not to hold (e.g. `{stream}/x` renders `/x`); that case is only checked when
//! `FUZZ_STRICT=1` is set, until naming.rs refuses or replaces empty values.
#![no_main]

use arbitrary::Arbitrary;
use frameflow_fuzz::sink::naming::{NameValues, Template};
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    template: &'a str,
    index: u64,
    pts_ms: i64,
    time: &'a str,
    stream: &'a str,
    stem: &'a str,
    ext: &'a str,
}

fn strict() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_STRICT").is_some_and(|v| v == "1"))
}

fuzz_target!(|input: Input<'_>| {
    if std::env::var_os("FUZZ_PRINT").is_some() {
        eprintln!("{input:?}");
    }
    let Ok(t) = Template::parse(input.template) else {
        return;
    };
    let _ = t.has_index();
    let _ = t.literal_extension();
    let v = NameValues {
        index: input.index,
        pts_ms: input.pts_ms,
        time: input.time,
        stream: input.stream,
        stem: input.stem,
        ext: input.ext,
    };
    let name = t.render(&v);
    // The matcher must not panic on the names the template renders, nor on other text.
    // It backtracks, exponentially in the number of free fields (see fuzz/README.md,
    // known/template-match-index-exponential): without FUZZ_STRICT=1 it only runs where
    // that stays fast.
    let free_fields = input.template.matches('{').count();
    if strict() || (free_fields <= 3 && name.len() <= 64 && input.time.len() <= 64) {
        let _ = t.match_index(&name, input.ext);
        let _ = t.match_index(input.time, input.ext);
    }

    let has_empty = [input.time, input.stream, input.stem, input.ext]
        .iter()
        .any(|s| s.is_empty());
    if has_empty && !strict() {
        return;
    }
    assert!(
        !name.starts_with('/') && !Path::new(&name).is_absolute(),
        "template {:?} rendered an absolute name {name:?} from {v:?}",
        input.template
    );
    for comp in Path::new(&name).components() {
        assert!(
            !matches!(
                comp,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            ),
            "template {:?} rendered {name:?} (component {comp:?}) from {v:?}",
            input.template
        );
    }
});
