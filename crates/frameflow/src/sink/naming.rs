//! Output name templates: `frame{index:06}.{ext}`, `{stream}/{pts}.jpg`, …
//!
//! A template is parsed once; rendering a name allocates one `String`. Templates that could
//! leave the output directory (`..`, an absolute path) are refused at parse time, and field
//! values are sanitised so that a stream label or an input stem cannot smuggle a `/` in.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// Why a template was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("name template '{template}': {reason}")]
    Invalid { template: String, reason: String },
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
        if self.text.starts_with('/') || self.text.starts_with('\\') {
            return Err(
                "absolute paths are refused: the name must stay inside the output directory".into(),
            );
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
        let path = Path::new(&sample);
        for comp in path.components() {
            match comp {
                Component::Normal(_) => {}
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(
                        "'..' is refused: the name must stay inside the output directory".into(),
                    );
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err("absolute paths are refused: the name must stay inside the output directory".into());
                }
            }
        }
        if sample.ends_with('/') {
            return Err("the template names a directory, not a file".into());
        }
        Ok(())
    }

    /// The template text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the template contains `{index}`.
    pub fn has_index(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Field {
                    field: Field::Index,
                    ..
                }
            )
        })
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
    /// and a value that is `.` or `..` is replaced by `_`.
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
        let mut best = None;
        match_parts(&self.parts, rel, ext, None, &mut best);
        best
    }

    /// Highest `{index}` among the files already under `dir`, if any.
    pub fn highest_existing_index(&self, dir: &Path, ext: &str) -> Option<u64> {
        if !self.has_index() {
            return None;
        }
        let depth = self.text.matches('/').count();
        let mut best: Option<u64> = None;
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(dir.to_path_buf(), String::new(), 0)];
        while let Some((path, prefix, level)) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue; // temporary files and hidden entries never count
                }
                let rel = if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                };
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if is_dir {
                    if level < depth {
                        stack.push((entry.path(), rel, level + 1));
                    }
                } else if let Some(i) = self.match_index(&rel, ext) {
                    best = Some(best.map_or(i, |b: u64| b.max(i)));
                }
            }
        }
        best
    }
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

/// Backtracking matcher: literals must match exactly, `{index}`/`{pts}` match digits (and a
/// sign for pts), `{ext}` matches the run's extension, anything else matches a non-empty run
/// without `/`. Records the largest index among all ways to match.
fn match_parts(parts: &[Part], s: &str, ext: &str, index: Option<u64>, best: &mut Option<u64>) {
    let Some((first, rest)) = parts.split_first() else {
        if s.is_empty()
            && let Some(i) = index
        {
            *best = Some(best.map_or(i, |b| b.max(i)));
        }
        return;
    };
    match first {
        Part::Literal(lit) => {
            if let Some(tail) = s.strip_prefix(lit.as_str()) {
                match_parts(rest, tail, ext, index, best);
            }
        }
        Part::Field { field, width } => match field {
            Field::Ext => {
                if let Some(tail) = s.strip_prefix(ext) {
                    match_parts(rest, tail, ext, index, best);
                }
            }
            Field::Index | Field::Pts => {
                let signed = *field == Field::Pts && s.starts_with('-');
                let body = if signed { &s[1..] } else { s };
                let ndigits = body.bytes().take_while(u8::is_ascii_digit).count();
                let min = (*width).max(1);
                for n in (min..=ndigits).rev() {
                    let digits = &body[..n];
                    let tail = &body[n..];
                    let idx = if *field == Field::Index {
                        match digits.parse::<u64>() {
                            Ok(v) => Some(v),
                            Err(_) => continue,
                        }
                    } else {
                        index
                    };
                    match_parts(rest, tail, ext, idx, best);
                }
            }
            Field::Time | Field::Stream | Field::Stem => {
                let limit = s.find('/').unwrap_or(s.len());
                for n in 1..=limit {
                    if s.is_char_boundary(n) {
                        match_parts(rest, &s[n..], ext, index, best);
                    }
                }
            }
        },
    }
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
}
