//! frameflow: live video → decoded frames → Pillow-exact filters → atomic image files.
//!
//! The stages, each in its own module, in the order the data flows:
//! - [`source`]: libavformat/libavcodec input, timeouts, still images;
//! - [`frames`]: the decoded picture, its exact conversion to RGB, and the fixed pool of
//!   slots that bounds how many frames are in flight;
//! - filters: the pure-Rust [`frameflow_filters`] crate;
//! - [`sink`]: encoders, output name templates, atomic writes, the preview tap;
//! - [`supervisor`]: the reconnect loop and its policies, around the source.
//!
//! Assembled by [`pipeline`] (`run`: decode thread, bounded queue, workers, in-order
//! committer), [`batch`] (`apply`) and [`watch`] (the hot folder); observed through
//! [`serve`] (web page, metrics). Below them all: [`runtime`] (stop flags, counters,
//! clocks) and [`setting`] (how messages name settings). The `frameflow` command is the
//! `frameflow-cli` crate; this library does not depend on a CLI parser.

/// A policy as a small enum with the names settings give it (`drop-oldest`): `ALL`,
/// `name()`, a line of help per choice (`about()`), `FromStr` and `Display`. Front ends
/// build their own choosers (flags, config keys) from these, so the library needs no CLI
/// crate.
macro_rules! named_choices {
    ($ty:ident { $($variant:ident = $name:literal : $about:literal),+ $(,)? }) => {
        impl $ty {
            /// Every choice, in the order help lists them.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The name settings give this choice.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
            /// One line of help for this choice (may be empty).
            pub fn about(self) -> &'static str {
                match self { $($ty::$variant => $about),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = crate::runtime::UnknownChoice;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| {
                    crate::runtime::UnknownChoice {
                        got: s.to_string(),
                        known: $ty::ALL.iter().map(|c| c.name()).collect(),
                    }
                })
            }
        }
    };
}

pub mod batch;
pub mod cluster;
pub mod config;
pub mod frames;
pub mod pipeline;
pub mod runtime;
pub mod serve;
pub mod setting;
pub mod sink;
pub mod source;
pub mod supervisor;
pub mod watch;

pub use frameflow_filters as filters;
pub use setting::Setting;

#[cfg(test)]
mod structure {
    //! The modules depend on each other in one direction only: sources → frames →
    //! filters → sinks under the supervisor, with `runtime` and `setting` below them.
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// `crate::x` paths used in the files of module `dir` (a file or a folder).
    fn uses(root: &Path, module: &str) -> BTreeSet<String> {
        let mut files = Vec::new();
        let dir = root.join(module);
        if dir.is_dir() {
            let mut stack = vec![dir];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        files.push(p);
                    }
                }
            }
        } else {
            files.push(root.join(format!("{module}.rs")));
        }
        let mut out = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    group[..end].split(',').collect()
                } else {
                    vec![rest]
                };
                for n in names {
                    let n: String = n
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !n.is_empty() && n != module {
                        out.insert(n);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_modules_form_no_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let modules = [
            "batch",
            "cluster",
            "config",
            "frames",
            "pipeline",
            "runtime",
            "serve",
            "setting",
            "sink",
            "source",
            "supervisor",
            "watch",
        ];
        let graph: BTreeMap<&str, BTreeSet<String>> = modules
            .iter()
            .map(|m| {
                let deps = uses(&root, m)
                    .into_iter()
                    .filter(|d| modules.contains(&d.as_str()))
                    .collect();
                (*m, deps)
            })
            .collect();
        // Depth-first search for a back edge.
        fn visit<'a>(
            m: &'a str,
            graph: &'a BTreeMap<&'a str, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(m) {
                return;
            }
            assert!(
                !path.contains(&m),
                "import cycle: {} -> {m}",
                path.join(" -> ")
            );
            path.push(m);
            for d in &graph[m] {
                visit(d.as_str(), graph, path, done);
            }
            path.pop();
            done.insert(m);
        }
        let mut done = BTreeSet::new();
        for m in modules {
            visit(m, &graph, &mut Vec::new(), &mut done);
        }
        // And the layering the folders show.
        assert!(!graph["frames"].contains("source"), "{graph:?}");
        assert!(!graph["runtime"].contains("pipeline"), "{graph:?}");
        for front in ["watch", "serve", "batch"] {
            assert!(!graph[front].contains("pipeline"), "{front}: {graph:?}");
        }
    }
}
