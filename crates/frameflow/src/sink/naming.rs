//! Output name templates: `frame{index:06}.{ext}`, `{stream}/{pts}.jpg`, `img%06d.jpg`, …
//!
//! A template is parsed once; rendering a name allocates one `String`. Templates that could
//! leave the output directory (`..`, an absolute path) are refused at parse time, field
//! values are sanitised so that a stream label or an input stem cannot smuggle a `/` in,
//! and every rendered name is checked again ([`Template::render_checked`]): an empty value
//! can still turn `..{stream}` into `..`.
//!
//! Names that must differ frame to frame but carry no `{index}` (`{time}` alone collides
//! within a millisecond) are made unique by [`variant`]: `-1`, `-2`, … before the extension.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Why a template, or a name rendered from it, was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("name template '{template}': {reason}")]
    Invalid { template: String, reason: String },
    #[error("name template '{template}' renders '{name}'{context}: {reason}")]
    Rendered {
        template: String,
        name: String,
        /// Which values gave that name (` with stream '' and stem 'clip'`), or empty.
        context: String,
        reason: &'static str,
    },
}

/// One field of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Index,
    Pts,
    Time,
    Stream,
    Stem,
    Ext,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "index" => Field::Index,
            "pts" => Field::Pts,
            "time" => Field::Time,
            "stream" => Field::Stream,
            "stem" => Field::Stem,
            "ext" => Field::Ext,
            _ => return None,
        })
    }
    fn is_numeric(self) -> bool {
        matches!(self, Field::Index | Field::Pts)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field { field: Field, width: usize },
}

/// The values a rendered name can refer to.
#[derive(Debug, Clone, Default)]
pub struct NameValues<'a> {
    pub index: u64,
    /// Stream time in milliseconds.
    pub pts_ms: i64,
    /// Wall clock, already formatted (`20261124T101530.123Z`).
    pub time: &'a str,
    pub stream: &'a str,
    pub stem: &'a str,
    pub ext: &'a str,
}

/// A parsed, validated output name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses and validates a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            template: text.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(invalid("unclosed '{'".into()));
                    }
                    let (name, spec) = match inner.split_once(':') {
                        Some((n, s)) => (n, Some(s)),
                        None => (inner.as_str(), None),
                    };
                    let field = Field::parse(name).ok_or_else(|| {
                        invalid(format!(
                            "unknown field '{{{name}}}' (known: index, pts, time, stream, stem, ext)"
                        ))
                    })?;
                    let width = match spec {
                        None => 0,
                        Some(s) if field.is_numeric() => {
                            let digits = s.strip_prefix('0').unwrap_or(s);
                            digits.parse::<usize>().ok().filter(|w| *w <= 32).ok_or_else(|| {
                                invalid(format!(
                                    "bad width '{s}' in '{{{inner}}}': expected e.g. {{{name}:06}}"
                                ))
                            })?
                        }
                        Some(_) => {
                            return Err(invalid(format!(
                                "'{{{inner}}}': only {{index}} and {{pts}} take a width"
                            )));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field { field, width });
                }
                '}' => {
                    return Err(invalid(
                        "unmatched '}' (write '}}' for a literal brace)".into(),
                    ));
                }
                // ffmpeg's image2 spelling: `%d` = {index}, `%0Nd` (and `%Nd`, which ffmpeg
                // also zero-pads) = {index:0N}; `%%` is a literal `%`.
                '%' if chars.peek() == Some(&'%') => {
                    chars.next();
                    lit.push('%');
                }
                '%' => {
                    let mut digits = String::new();
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        digits.push(d);
                    }
                    let width = if digits.is_empty() {
                        Some(0)
                    } else {
                        digits.parse::<usize>().ok().filter(|w| *w <= 32)
                    };
                    let (Some(width), Some(_)) = (width, chars.next_if_eq(&'d')) else {
                        let after = chars.peek().map_or(String::new(), char::to_string);
                        return Err(invalid(format!(
                            "'%{digits}{after}': only ffmpeg's %d and %0Nd (= {{index}} and \
                             {{index:0N}}, N up to 32) are understood; write %% for a literal %"
                        )));
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field {
                        field: Field::Index,
                        width,
                    });
                }
                '\0' => return Err(invalid("NUL character".into())),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        let t = Template {
            text: text.to_string(),
            parts,
        };
        t.validate().map_err(invalid)?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), String> {
        if self.parts.is_empty() {
            return Err("empty template".into());
        }
        // Render with placeholder values and check every path component.
        let sample = self.render(&NameValues {
            index: 0,
            pts_ms: 0,
            time: "T",
            stream: "s",
            stem: "f",
            ext: "jpg",
        });
        if sample.ends_with('/') {
            return Err("the template names a directory, not a file".into());
        }
        match path_problem(&sample) {
            Some(reason) => Err(reason.into()),
            None => Ok(()),
        }
    }

    /// Renders a name and checks it ([`check_rendered`]): what every writer of a rendered
    /// name uses.
    pub fn render_checked(&self, v: &NameValues<'_>) -> Result<String, TemplateError> {
        let name = self.render(v);
        match path_problem(&name) {
            None => Ok(name),
            Some(reason) => Err(TemplateError::Rendered {
                template: self.text.clone(),
                name,
                context: String::new(),
                reason,
            }),
        }
    }

    /// Start-up check of a run whose `{stream}` and `{stem}` are known: renders the name
    /// with them (and placeholder numbers and time, which cannot add a path component)
    /// and refuses it if it would not stay inside the output directory. `..{stream}` is
    /// fine at parse time but renders `..` for an empty label.
    pub fn check_fields(&self, stream: &str, stem: &str) -> Result<(), TemplateError> {
        let name = self.render(&NameValues {
            index: 0,
            pts_ms: 0,
            time: "20261124T101530.123Z",
            stream,
            stem,
            ext: "jpg",
        });
        match path_problem(&name) {
            None => Ok(()),
            Some(reason) => Err(TemplateError::Rendered {
                template: self.text.clone(),
                name,
                context: format!(" with stream '{stream}' and stem '{stem}'"),
                reason,
            }),
        }
    }

    /// A job of `frames` frames (`None`: no known bound, e.g. a live input) needs a field
    /// that differs frame to frame: `{index}` (or `%d`), `{pts}` or `{time}`. Without one
    /// every frame after the first would fail on a name already taken.
    pub fn check_unique(&self, frames: Option<u64>) -> Result<(), TemplateError> {
        if frames.is_some_and(|n| n <= 1) || self.has_any(&[Field::Index, Field::Pts, Field::Time])
        {
            return Ok(());
        }
        Err(TemplateError::Invalid {
            template: self.text.clone(),
            reason:
                "every frame would get the same name: put {index} (e.g. frame{index:06}.{ext}, \
                     or ffmpeg's %06d), {pts} or {time} in it, or give --max-frames 1"
                    .into(),
        })
    }

    /// `apply` on `files` input files: more than one needs `{stem}` or `{index}`.
    pub fn check_unique_files(&self, files: usize) -> Result<(), TemplateError> {
        if files <= 1 || self.has_any(&[Field::Stem, Field::Index]) {
            return Ok(());
        }
        Err(TemplateError::Invalid {
            template: self.text.clone(),
            reason: format!(
                "the {files} input files would all get the same name: put {{stem}} or {{index}} in it"
            ),
        })
    }

    fn has_any(&self, fields: &[Field]) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field { field, .. } if fields.contains(field)))
    }

    /// The template text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the template contains `{index}`.
    pub fn has_index(&self) -> bool {
        self.has_any(&[Field::Index])
    }

    /// The literal extension the template ends with (`png` for `frame{index}.png`), if any.
    pub fn literal_extension(&self) -> Option<&str> {
        match self.parts.last()? {
            Part::Literal(s) => {
                let (_, ext) = s.rsplit_once('.')?;
                (!ext.is_empty() && !ext.contains('/')).then_some(ext)
            }
            Part::Field { .. } => None,
        }
    }

    /// Renders a relative path. Field values are sanitised: `/`, `\` and NUL become `_`,
    /// and a value that is `.` or `..` is replaced by `_`. A name that is written to uses
    /// [`Template::render_checked`]: an empty value can still make a `..` of its literals.
    pub fn render(&self, v: &NameValues<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field { field, width } => match field {
                    Field::Index => {
                        let _ = write!(out, "{:0width$}", v.index, width = *width);
                    }
                    Field::Pts => {
                        let _ = write!(out, "{:0width$}", v.pts_ms, width = *width);
                    }
                    Field::Time => push_sanitised(&mut out, v.time),
                    Field::Stream => push_sanitised(&mut out, v.stream),
                    Field::Stem => push_sanitised(&mut out, v.stem),
                    Field::Ext => push_sanitised(&mut out, v.ext),
                },
            }
        }
        out
    }

    /// If `rel` (a path relative to the output directory, `/`-separated) could have been
    /// rendered by this template, returns the `{index}` value it carries (or `None` when
    /// the template has no index or the name does not match).
    pub fn match_index(&self, rel: &str, ext: &str) -> Option<u64> {
        self.match_rel(
            rel,
            &Known {
                ext,
                ..Known::default()
            },
        )
        .flatten()
    }

    /// `Some(index)` if `rel` could have been rendered by this template (index `None` for
    /// a template without `{index}`). For such a template a [`variant`] (`-1`, `-2`, …
    /// before the extension) matches too.
    fn match_rel(&self, rel: &str, known: &Known<'_>) -> Option<Option<u64>> {
        let mut best = None;
        match_parts(&self.parts, rel, known, None, &mut best);
        if best.is_none()
            && !self.has_index()
            && let Some(base) = unvariant(rel)
        {
            match_parts(&self.parts, &base, known, None, &mut best);
        }
        best
    }

    /// Calls `f(rel, entry)` for every non-directory entry under `dir`, as deep as the
    /// template has `/`s, skipping dot files (temporary files and hidden entries never
    /// count).
    fn walk(&self, dir: &Path, mut f: impl FnMut(String, &std::fs::DirEntry)) {
        let depth = self.text.matches('/').count();
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(dir.to_path_buf(), String::new(), 0)];
        while let Some((path, prefix, level)) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let rel = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                };
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if !is_dir {
                    f(rel, &entry);
                } else if level < depth {
                    stack.push((entry.path(), rel, level + 1));
                }
            }
        }
    }

    /// Highest `{index}` among the files already under `dir`, if any.
    pub fn highest_existing_index(&self, dir: &Path, ext: &str) -> Option<u64> {
        if !self.has_index() {
            return None;
        }
        let known = Known {
            ext,
            ..Known::default()
        };
        let mut best: Option<u64> = None;
        self.walk(dir, |rel, _| {
            if let Some(i) = self.match_rel(&rel, &known).flatten() {
                best = Some(best.map_or(i, |b| b.max(i)));
            }
        });
        best
    }

    /// Every output this template could have produced under any of `dirs` (the output
    /// directory and the raw one), one entry per relative name with its files in each
    /// directory, oldest first: by `{index}` when the template has one, else by
    /// modification time (the earliest of its files), ties by name. `{time}` only matches
    /// a timestamp (`20261124T101530.123Z`), `{index}`/`{pts}` digits, and `{stream}`,
    /// `{stem}` their `known` values, so a file of another template or stream is never
    /// listed.
    pub fn existing_outputs(&self, dirs: &[&Path], known: &Known<'_>) -> Vec<Existing> {
        let mut found: std::collections::BTreeMap<String, Existing> = Default::default();
        for dir in dirs {
            self.walk(dir, |rel, entry| {
                let Some(index) = self.match_rel(&rel, known) else {
                    return;
                };
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let e = found.entry(rel.clone()).or_insert_with(|| Existing {
                    rel,
                    index,
                    paths: Vec::new(),
                    modified,
                });
                e.paths.push(entry.path());
                e.modified = e.modified.min(modified);
            });
        }
        let mut all: Vec<Existing> = found.into_values().collect();
        if self.has_index() {
            all.sort_by(|a, b| (a.index, &a.rel).cmp(&(b.index, &b.rel)));
        } else {
            all.sort_by(|a, b| (a.modified, &a.rel).cmp(&(b.modified, &b.rel)));
        }
        all
    }

    /// The name `v` renders if that file is under `dir`; else (`--keep-last` deleted it)
    /// the output under `dir` with the lowest `{index}` from `v.index` on, if any.
    pub fn first_present(&self, dir: &Path, v: &NameValues<'_>) -> Option<String> {
        let name = self.render(v);
        if dir.join(&name).exists() {
            return Some(name);
        }
        let known = Known {
            ext: v.ext,
            stream: Some(v.stream),
            stem: Some(v.stem),
        };
        self.existing_outputs(&[dir], &known)
            .into_iter()
            .find(|e| e.index.is_some_and(|i| i >= v.index))
            .map(|e| e.rel)
    }
}

/// What is known of the outputs to look for: the extension and, when given, the exact
/// `{stream}` and `{stem}` values (otherwise any non-empty text matches them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    pub ext: &'a str,
    pub stream: Option<&'a str>,
    pub stem: Option<&'a str>,
}

/// An output found by [`Template::existing_outputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Its name relative to the directories searched.
    pub rel: String,
    /// Its `{index}`, for a template that has one.
    pub index: Option<u64>,
    /// The files of that name, one per directory that has it.
    pub paths: Vec<PathBuf>,
    pub modified: SystemTime,
}

/// Checks a rendered name (relative to its directory, `/`-separated): not empty, not
/// absolute, no empty, `.` or `..` component, no NUL, so that joined to its directory
/// it stays under it. Returns why not.
pub fn check_rendered(rel: &str) -> Result<(), &'static str> {
    match path_problem(rel) {
        None => Ok(()),
        Some(reason) => Err(reason),
    }
}

fn path_problem(rel: &str) -> Option<&'static str> {
    if rel.is_empty() {
        return Some("the name is empty");
    }
    if rel.starts_with('/') || rel.starts_with('\\') || Path::new(rel).has_root() {
        return Some("absolute paths are refused: the name must stay inside the output directory");
    }
    if rel.contains('\0') {
        return Some("NUL character");
    }
    for comp in rel.split('/') {
        match comp {
            "" => {
                return Some(
                    "an empty path component (a field rendered empty, or '//') is refused: \
                     the name must stay inside the output directory",
                );
            }
            "." => {
                return Some(
                    "a '.' path component is refused: the name must stay inside the output directory",
                );
            }
            ".." => {
                return Some("'..' is refused: the name must stay inside the output directory");
            }
            _ => {}
        }
    }
    // What the OS makes of it, in case it knows another separator or prefix.
    if Path::new(rel)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Some("not a plain relative path: the name must stay inside the output directory");
    }
    None
}

/// The `k`th variant of a rendered name: `k` = 0 is the name itself, else `-k` goes
/// before the extension of its file name (`a/t.jpg` → `a/t-2.jpg`; no extension:
/// `t` → `t-2`). This is how names without `{index}` are made unique.
pub fn variant(rel: &str, k: u32) -> String {
    if k == 0 {
        return rel.to_string();
    }
    let (dir, file) = match rel.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, rel),
    };
    let file = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{k}.{ext}"),
        _ => format!("{file}-{k}"),
    };
    match dir {
        Some(d) => format!("{d}/{file}"),
        None => file,
    }
}

/// The name a [`variant`] with `k` ≥ 1 was made from, if `rel` looks like one.
fn unvariant(rel: &str) -> Option<String> {
    let (dir, file) = match rel.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, rel),
    };
    let (stem, ext) = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (file, None),
    };
    let (base, k) = stem.rsplit_once('-')?;
    if base.is_empty()
        || k.is_empty()
        || k.starts_with('0')
        || !k.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let file = match ext {
        Some(ext) => format!("{base}.{ext}"),
        None => base.to_string(),
    };
    Some(match dir {
        Some(d) => format!("{d}/{file}"),
        None => file,
    })
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn push_sanitised(out: &mut String, value: &str) {
    if value == "." || value == ".." {
        out.push('_');
        return;
    }
    for c in value.chars() {
        out.push(match c {
            '/' | '\\' | '\0' => '_',
            c => c,
        });
    }
}

fn sanitised(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    push_sanitised(&mut s, value);
    s
}

/// Length of a `{time}` value (`20261124T101530.123Z`) at the start of `s`, if there is one.
fn time_len(s: &str) -> Option<usize> {
    // `9` stands for any digit.
    const SHAPE: &[u8] = b"99999999T999999.999Z";
    let head = s.as_bytes().get(..SHAPE.len())?;
    SHAPE
        .iter()
        .zip(head)
        .all(|(want, got)| match want {
            b'9' => got.is_ascii_digit(),
            _ => want == got,
        })
        .then_some(SHAPE.len())
}

/// Whether `s` can be rendered by `parts`, and with which `{index}` (the largest, when
/// several splits match): literals must match exactly, `{index}`/`{pts}` match digits
/// (and a sign for pts), `{time}` a timestamp, `{ext}` the run's extension,
/// `{stream}`/`{stem}` their known (sanitised) value or else a non-empty run without `/`.
/// Sets `best` (`Some(None)`: a match without `{index}`), combined with `index` already
/// captured.
///
/// Dynamic programming over (part, position) — a free `{stream}`/`{stem}` field can take
/// any length, and trying every split of every one of them was exponential in their
/// number (found by the `template` fuzz target: seconds for one name at start-up).
fn match_parts(
    parts: &[Part],
    s: &str,
    known: &Known<'_>,
    index: Option<u64>,
    best: &mut Option<Option<u64>>,
) {
    let mut memo = std::collections::HashMap::new();
    if let Some(found) = match_from(parts, 0, s, 0, known, &mut memo) {
        let found = max_index(found, index);
        *best = Some(match *best {
            Some(prev) => max_index(prev, found),
            None => found,
        });
    }
}

fn max_index(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

type Memo = std::collections::HashMap<(usize, usize), Option<Option<u64>>>;

/// [`match_parts`] from part `i` at byte `pos` of `s`: the best `{index}` captured from
/// there on, `None` when the rest cannot match.
fn match_from(
    parts: &[Part],
    i: usize,
    s: &str,
    pos: usize,
    known: &Known<'_>,
    memo: &mut Memo,
) -> Option<Option<u64>> {
    if let Some(r) = memo.get(&(i, pos)) {
        return *r;
    }
    let rest = &s[pos..];
    let result = match parts.get(i) {
        None => rest.is_empty().then_some(None),
        Some(Part::Literal(lit)) => match rest.strip_prefix(lit.as_str()) {
            Some(_) => match_from(parts, i + 1, s, pos + lit.len(), known, memo),
            None => None,
        },
        Some(Part::Field { field, width }) => match field {
            Field::Ext => match rest.strip_prefix(known.ext) {
                Some(_) => match_from(parts, i + 1, s, pos + known.ext.len(), known, memo),
                None => None,
            },
            Field::Index | Field::Pts => {
                let signed = *field == Field::Pts && rest.starts_with('-');
                let sign = usize::from(signed);
                let body = &rest[sign..];
                let ndigits = body.bytes().take_while(u8::is_ascii_digit).count();
                let min = (*width).max(1);
                let mut found: Option<Option<u64>> = None;
                for n in (min..=ndigits).rev() {
                    let here = if *field == Field::Index {
                        match body[..n].parse::<u64>() {
                            Ok(v) => Some(v),
                            Err(_) => continue,
                        }
                    } else {
                        None
                    };
                    if let Some(sub) = match_from(parts, i + 1, s, pos + sign + n, known, memo) {
                        let cand = max_index(here, sub);
                        found = Some(match found {
                            Some(f) => max_index(f, cand),
                            None => cand,
                        });
                    }
                }
                found
            }
            Field::Time => match time_len(rest) {
                Some(n) => match_from(parts, i + 1, s, pos + n, known, memo),
                None => None,
            },
            Field::Stream | Field::Stem => {
                let value = if *field == Field::Stream {
                    known.stream
                } else {
                    known.stem
                };
                if let Some(v) = value {
                    let v = sanitised(v);
                    match rest.strip_prefix(v.as_str()) {
                        Some(_) => match_from(parts, i + 1, s, pos + v.len(), known, memo),
                        None => None,
                    }
                } else {
                    let limit = rest.find('/').unwrap_or(rest.len());
                    let mut found: Option<Option<u64>> = None;
                    for n in 1..=limit {
                        if rest.is_char_boundary(n)
                            && let Some(sub) = match_from(parts, i + 1, s, pos + n, known, memo)
                        {
                            found = Some(match found {
                                Some(f) => max_index(f, sub),
                                None => sub,
                            });
                        }
                    }
                    found
                }
            }
        },
    };
    memo.insert((i, pos), result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(index: u64) -> NameValues<'static> {
        NameValues {
            index,
            pts_ms: 1234,
            time: "20261124T101530.123Z",
            stream: "cam/1",
            stem: "..",
            ext: "jpg",
        }
    }

    #[test]
    fn matching_many_free_fields_is_not_exponential() {
        // Four free fields on a long name that does not match: every split of every field
        // was tried before (n^4 here), now each (part, position) once.
        let t = Template::parse("{stream}{stem}{stream}{stem}{index}.{ext}").unwrap();
        let name = format!("{}.png", "a".repeat(400));
        assert_eq!(t.match_index(&name, "jpg"), None);
        let name = format!("{}7.jpg", "ab".repeat(200));
        assert_eq!(t.match_index(&name, "jpg"), Some(7));
    }

    #[test]
    fn renders_default_template() {
        let t = Template::parse("frame{index:06}.{ext}").unwrap();
        assert_eq!(t.render(&vals(42)), "frame000042.jpg");
        assert!(t.has_index());
        assert_eq!(t.literal_extension(), None);
    }

    #[test]
    fn renders_all_fields_and_sanitises_values() {
        let t = Template::parse("{stream}_{stem}_{pts:08}_{time}_{index}.png").unwrap();
        assert_eq!(
            t.render(&vals(7)),
            "cam_1___00001234_20261124T101530.123Z_7.png"
        );
        assert_eq!(t.literal_extension(), Some("png"));
    }

    #[test]
    fn literal_braces() {
        let t = Template::parse("{{x}}{index}.jpg").unwrap();
        assert_eq!(t.render(&vals(1)), "{x}1.jpg");
    }

    #[test]
    fn refuses_escapes_and_bad_fields() {
        for bad in [
            "../x{index}.jpg",
            "a/../../b.jpg",
            "/tmp/x.jpg",
            "..",
            "{nope}.jpg",
            "{index:abc}.jpg",
            "{stem:04}.jpg",
            "{index",
            "x}",
            "",
            "dir/",
        ] {
            assert!(Template::parse(bad).is_err(), "accepted {bad:?}");
        }
        let err = Template::parse("../{index}.jpg").unwrap_err().to_string();
        assert!(err.contains("'..' is refused"), "{err}");
    }

    #[test]
    fn matches_index_back() {
        let t = Template::parse("frame{index:06}.{ext}").unwrap();
        assert_eq!(t.match_index("frame000042.jpg", "jpg"), Some(42));
        assert_eq!(t.match_index("frame1234567.jpg", "jpg"), Some(1_234_567));
        assert_eq!(t.match_index("frame42.jpg", "jpg"), None);
        assert_eq!(t.match_index("frame000042.png", "jpg"), None);
        assert_eq!(t.match_index("other.jpg", "jpg"), None);
        let t = Template::parse("{stream}-{index}-{pts}.jpg").unwrap();
        assert_eq!(t.match_index("cam-12-3400.jpg", "jpg"), Some(12));
        assert_eq!(t.match_index("a-b-12--5.jpg", "jpg"), Some(12));
    }

    #[test]
    fn highest_index_scans_directory() {
        let dir = tempfile::tempdir().unwrap();
        let t = Template::parse("f{index:03}.{ext}").unwrap();
        assert_eq!(t.highest_existing_index(dir.path(), "jpg"), None);
        for n in [
            "f000.jpg",
            "f007.jpg",
            "f003.jpg",
            ".f999.jpg.tmp",
            "f999.png",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        assert_eq!(t.highest_existing_index(dir.path(), "jpg"), Some(7));
        let sub = Template::parse("cam/f{index}.jpg").unwrap();
        std::fs::create_dir(dir.path().join("cam")).unwrap();
        std::fs::write(dir.path().join("cam/f12.jpg"), b"x").unwrap();
        assert_eq!(sub.highest_existing_index(dir.path(), "jpg"), Some(12));
    }

    #[test]
    fn ffmpeg_percent_d_is_index() {
        let t = Template::parse("img%06d.jpg").unwrap();
        assert!(t.has_index());
        assert_eq!(t.render(&vals(42)), "img000042.jpg");
        assert_eq!(t.match_index("img000042.jpg", "jpg"), Some(42));
        let t = Template::parse("%d.jpg").unwrap();
        assert_eq!(t.render(&vals(7)), "7.jpg");
        let t = Template::parse("f%05d.{ext}").unwrap();
        assert_eq!(t.render(&vals(3)), "f00003.jpg");
        // ffmpeg zero-pads %5d too.
        let t = Template::parse("f%5d.jpg").unwrap();
        assert_eq!(t.render(&vals(3)), "f00003.jpg");
    }

    #[test]
    fn double_percent_is_literal() {
        let t = Template::parse("100%%_%03d.jpg").unwrap();
        assert_eq!(t.render(&vals(1)), "100%_001.jpg");
        let t = Template::parse("x%%d.jpg").unwrap();
        assert!(!t.has_index());
        assert_eq!(t.render(&vals(1)), "x%d.jpg");
        for bad in ["x%s.jpg", "x%.jpg", "x%", "x%099d.jpg", "x%5.jpg"] {
            let err = Template::parse(bad).unwrap_err().to_string();
            assert!(err.contains("write %% for a literal %"), "{bad}: {err}");
        }
    }

    #[test]
    fn check_unique_needs_a_per_frame_field() {
        for ok in ["x{index}.jpg", "x%d.jpg", "{pts}.jpg", "{time}.jpg"] {
            let t = Template::parse(ok).unwrap();
            assert_eq!(t.check_unique(None), Ok(()), "{ok}");
            assert_eq!(t.check_unique(Some(100)), Ok(()), "{ok}");
        }
        for bad in ["x.jpg", "{stream}.{ext}", "{stem}.jpg", "x%%d.jpg"] {
            let t = Template::parse(bad).unwrap();
            let err = t.check_unique(None).unwrap_err().to_string();
            assert!(
                err.contains("{index}") && err.contains("{pts}") && err.contains("{time}"),
                "{bad}: {err}"
            );
            assert!(t.check_unique(Some(2)).is_err(), "{bad}");
            assert_eq!(t.check_unique(Some(1)), Ok(()), "{bad}: one frame");
            assert_eq!(t.check_unique(Some(0)), Ok(()), "{bad}: no frame");
        }
        let t = Template::parse("out.jpg").unwrap();
        assert_eq!(t.check_unique_files(1), Ok(()));
        let err = t.check_unique_files(3).unwrap_err().to_string();
        assert!(err.contains("{stem}"), "{err}");
        for ok in ["{stem}.jpg", "{index}.jpg"] {
            assert_eq!(Template::parse(ok).unwrap().check_unique_files(3), Ok(()));
        }
        // {time} does not separate files written within one millisecond.
        assert!(
            Template::parse("{time}.jpg")
                .unwrap()
                .check_unique_files(2)
                .is_err()
        );
    }

    #[test]
    fn rendered_paths_are_checked() {
        for bad in [
            "",
            "/x.jpg",
            "a//b.jpg",
            "./x.jpg",
            "a/./x.jpg",
            "..",
            "a/../x",
            "x/",
            "a\0b",
        ] {
            assert!(check_rendered(bad).is_err(), "accepted {bad:?}");
        }
        for ok in ["x.jpg", "a/b/x.jpg", "..x.jpg", "x..", ".hidden"] {
            assert_eq!(check_rendered(ok), Ok(()), "{ok}");
        }
        let t = Template::parse("..{stream}/..{stream}/x{index}.jpg").unwrap();
        let v = |stream| NameValues {
            stream,
            ext: "jpg",
            ..NameValues::default()
        };
        assert_eq!(t.render_checked(&v("a")).unwrap(), "..a/..a/x0.jpg");
        let err = t.render_checked(&v("")).unwrap_err().to_string();
        assert!(err.contains("'..' is refused"), "{err}");
        // `.` and `..` values are sanitised; `.` + `.` is not a value but a rendering.
        assert_eq!(t.render_checked(&v("..")).unwrap(), ".._/.._/x0.jpg");
        let t = Template::parse(".{stream}/x{index}.jpg").unwrap();
        assert!(t.render_checked(&v(".")).is_ok());
        assert!(t.render_checked(&v("")).is_err(), "'.' component");
        let t = Template::parse("{stream}/x{index}.jpg").unwrap();
        assert!(t.render_checked(&v("")).is_err(), "'/x0.jpg' is absolute");
        // The start-up check names the values.
        let t = Template::parse("..{stream}/..{stream}/x{index}.jpg").unwrap();
        assert_eq!(t.check_fields("cam", "clip"), Ok(()));
        let err = t.check_fields("", "clip").unwrap_err().to_string();
        assert!(
            err.contains("'../../x0.jpg'") && err.contains("stream ''"),
            "{err}"
        );
        let t = Template::parse("{stem}{stream}/x.jpg").unwrap();
        assert!(t.check_fields("", "").is_err());
        // Parse-time checks refuse '.' components too.
        assert!(Template::parse("./x{index}.jpg").is_err());
    }

    #[test]
    fn variants_go_before_the_extension() {
        assert_eq!(variant("t.jpg", 0), "t.jpg");
        assert_eq!(variant("t.jpg", 2), "t-2.jpg");
        assert_eq!(variant("a.b/t.x.png", 1), "a.b/t.x-1.png");
        assert_eq!(variant("noext", 3), "noext-3");
        assert_eq!(unvariant("t-2.jpg").as_deref(), Some("t.jpg"));
        assert_eq!(unvariant("a/t-12").as_deref(), Some("a/t"));
        assert_eq!(unvariant("t-02.jpg"), None);
        assert_eq!(unvariant("t.jpg"), None);
        assert_eq!(unvariant("-1.jpg"), None);
        let t = Template::parse("{time}.jpg").unwrap();
        let known = Known {
            ext: "jpg",
            ..Known::default()
        };
        assert_eq!(t.match_rel("20261124T101530.123Z.jpg", &known), Some(None));
        assert_eq!(
            t.match_rel("20261124T101530.123Z-4.jpg", &known),
            Some(None)
        );
        assert_eq!(t.match_rel("notes.jpg", &known), None);
        let t = Template::parse("p{pts}.jpg").unwrap();
        assert_eq!(t.match_rel("p-40-1.jpg", &known), Some(None));
    }

    #[test]
    fn existing_outputs_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let raw = tempfile::tempdir().unwrap();
        for n in ["f010.jpg", "f002.jpg", "f001.png", "g003.jpg", ".f000.jpg"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        for n in ["f002.jpg", "f005.jpg"] {
            std::fs::write(raw.path().join(n), b"x").unwrap();
        }
        let t = Template::parse("f{index:03}.{ext}").unwrap();
        let known = Known {
            ext: "jpg",
            ..Known::default()
        };
        let found = t.existing_outputs(&[dir.path(), raw.path()], &known);
        let names: Vec<(&str, Option<u64>, usize)> = found
            .iter()
            .map(|e| (e.rel.as_str(), e.index, e.paths.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("f002.jpg", Some(2), 2),
                ("f005.jpg", Some(5), 1),
                ("f010.jpg", Some(10), 1)
            ]
        );
        let v = NameValues {
            index: 3,
            ext: "jpg",
            ..NameValues::default()
        };
        assert_eq!(t.first_present(dir.path(), &v).as_deref(), Some("f010.jpg"));
        let v = NameValues { index: 2, ..v };
        assert_eq!(t.first_present(dir.path(), &v).as_deref(), Some("f002.jpg"));
        let v = NameValues { index: 11, ..v };
        assert_eq!(t.first_present(dir.path(), &v), None);

        // Without {index}: by modification time, and only this stream's names.
        let t = Template::parse("{stream}-{time}.jpg").unwrap();
        let d = tempfile::tempdir().unwrap();
        let names = [
            "cam-20261124T101530.999Z.jpg",
            "cam-20261124T101530.123Z.jpg",
            "cam-20261124T101530.123Z-1.jpg",
            "other-20261124T101530.000Z.jpg",
        ];
        let base = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for (k, n) in names.iter().enumerate() {
            let f = std::fs::File::create(d.path().join(n)).unwrap();
            f.set_modified(base + std::time::Duration::from_secs(k as u64))
                .unwrap();
        }
        let known = Known {
            ext: "jpg",
            stream: Some("cam"),
            stem: None,
        };
        let got: Vec<String> = t
            .existing_outputs(&[d.path()], &known)
            .into_iter()
            .map(|e| e.rel)
            .collect();
        assert_eq!(got, names[..3]);
    }
}
