//! `Template::parse` and `render` with arbitrary templates and field values.
//!
//! Invariants for an accepted template: rendering never panics; every name that
//! `render_checked` (what each writer uses) lets through is relative (no root, not
//! starting with `/`) with no `.`, `..` or empty component, so it cannot leave the output
//! directory, whatever the field values (an empty `{stream}` turns `{stream}/x` into `/x`:
//! that is refused); and the matcher, which every start-up runs on each file in the
//! output directory, finishes on any name.
#![no_main]

use arbitrary::Arbitrary;
use frameflow_fuzz::sink::naming::{NameValues, Template};
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

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
    let _ = t.render(&v);
    let _ = t.match_index(input.time, input.ext);
    let Ok(name) = t.render_checked(&v) else {
        return;
    };
    let _ = t.match_index(&name, input.ext);
    assert!(
        !name.starts_with('/') && !Path::new(&name).is_absolute(),
        "template {:?} rendered an absolute name {name:?} from {v:?}",
        input.template
    );
    for part in name.split('/') {
        assert!(
            !part.is_empty() && part != "." && part != "..",
            "template {:?} rendered {name:?} from {v:?}",
            input.template
        );
    }
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
