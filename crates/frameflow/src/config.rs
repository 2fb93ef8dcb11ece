//! `--config FILE`: several streams in one process, from a TOML file.
//!
//! ```toml
//! serve = "8080"             # optional: as --serve
//! serve_auth = "@auth.txt"    # optional: as --serve-auth (USER:PASS or @FILE)
//! serve_max_clients = 64      # optional: as --serve-max-clients
//! stats_json = "stats.json"  # optional: as --stats-json, all streams in one document
//! cluster = "nats://127.0.0.1:4222"  # optional: as --cluster (and nats_creds = "FILE")
//!
//! [defaults]                 # optional: `run` options every stream starts from
//! filter = "emboss"
//! workers = 2
//!
//! [[stream]]
//! label = "front"
//! input = "rtsp://127.0.0.1:8554/front"
//! out = "frames/front"
//!
//! [[stream]]
//! label = "back"
//! input = "http://127.0.0.1:8090/back.ts"
//! out = "frames/back"
//! filter = "sharpen"
//! reconnect = false
//! ```
//!
//! Keys are the long names of `frameflow run`'s options (`-` or `_`), values strings,
//! numbers or booleans. This module reads the file's structure and remembers where each
//! key is; the binary checks each key against the options it knows, so every option is
//! defined once. Errors name the file, the line and the key.

use std::path::{Path, PathBuf};
use toml::Spanned;

/// A value as an option receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string or a number, as written (`--key=VALUE`).
    Text(String),
    /// A switch: `true` turns it on, `false` off.
    Flag(bool),
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The key with `-` turned into `_`.
    pub key: String,
    pub value: Value,
    /// 1-based line of the key.
    pub line: usize,
}

/// One `[[stream]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    /// 1-based position among the `[[stream]]` tables.
    pub number: usize,
    /// Line of its `[[stream]]` header (or of its first key).
    pub line: usize,
    pub settings: Vec<Setting>,
}

/// A parsed config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub serve: Option<Setting>,
    pub serve_auth: Option<Setting>,
    pub serve_max_clients: Option<Setting>,
    pub stats_json: Option<Setting>,
    pub cluster: Option<Setting>,
    pub nats_creds: Option<Setting>,
    pub defaults: Vec<Setting>,
    pub streams: Vec<StreamEntry>,
}

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{} {}: cannot read it: {source}", crate::setting::Setting::Config, path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: key '{key}': {message}", path.display())]
    Key {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{}: no [[stream]] table: nothing to run", path.display())]
    NoStreams { path: PathBuf },
}

type RawTable = Vec<(Spanned<String>, Spanned<toml::Value>)>;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    serve: Option<Spanned<toml::Value>>,
    serve_auth: Option<Spanned<toml::Value>>,
    serve_max_clients: Option<Spanned<toml::Value>>,
    stats_json: Option<Spanned<toml::Value>>,
    cluster: Option<Spanned<toml::Value>>,
    nats_creds: Option<Spanned<toml::Value>>,
    #[serde(default, with = "table")]
    defaults: RawTable,
    #[serde(default)]
    stream: Vec<Spanned<RawStream>>,
}

#[derive(serde::Deserialize)]
#[serde(transparent)]
struct RawStream(#[serde(with = "table")] RawTable);

/// Deserialises a table as its entries with their spans, in file order.
mod table {
    use super::RawTable;
    use serde::Deserializer;
    use std::collections::BTreeMap;
    use toml::Spanned;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RawTable, D::Error> {
        let map: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            serde::Deserialize::deserialize(d)?;
        let mut v: RawTable = map.into_iter().collect();
        v.sort_by_key(|(k, _)| k.span().start);
        Ok(v)
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parses `text` (the contents of `path`).
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message: e.message().trim().to_string(),
            }
        })?;
        let setting = |key: &Spanned<String>, value: &Spanned<toml::Value>| {
            let line = line_of(text, key.span().start);
            let name = key.get_ref().replace('-', "_");
            let value = match value.get_ref() {
                toml::Value::String(s) => Value::Text(s.clone()),
                toml::Value::Integer(i) => Value::Text(i.to_string()),
                toml::Value::Float(f) => Value::Text(f.to_string()),
                toml::Value::Boolean(b) => Value::Flag(*b),
                other => {
                    return Err(ConfigError::Key {
                        path: path.to_path_buf(),
                        line,
                        key: key.get_ref().clone(),
                        message: format!(
                            "expected a string, a number or true/false, got {}",
                            other.type_str()
                        ),
                    });
                }
            };
            Ok(Setting {
                key: name,
                value,
                line,
            })
        };
        let top = |name: &str,
                   v: &Option<Spanned<toml::Value>>|
         -> Result<Option<Setting>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            let key = Spanned::new(v.span().start..v.span().start, name.to_string());
            let mut s = setting(&key, v)?;
            // The span points at the value, on the key's line.
            s.line = line_of(text, v.span().start);
            Ok(Some(s))
        };
        let settings = |t: &RawTable| -> Result<Vec<Setting>, ConfigError> {
            let list: Vec<Setting> = t
                .iter()
                .map(|(k, v)| setting(k, v))
                .collect::<Result<_, _>>()?;
            // `max-frames` and `max_frames` are one key: given both, which would win?
            for (i, a) in list.iter().enumerate() {
                if let Some(b) = list[..i].iter().find(|b| b.key == a.key) {
                    return Err(ConfigError::Key {
                        path: path.to_path_buf(),
                        line: a.line,
                        key: a.key.clone(),
                        message: format!("given twice in one table (also on line {})", b.line),
                    });
                }
            }
            Ok(list)
        };
        let mut streams = Vec::with_capacity(raw.stream.len());
        for (i, s) in raw.stream.iter().enumerate() {
            // The line of the `[[stream]]` header before its first key.
            let start = s
                .get_ref()
                .0
                .first()
                .map_or(s.span().start, |(k, _)| k.span().start);
            let header = text[..start.min(text.len())].rfind("[[").unwrap_or(start);
            streams.push(StreamEntry {
                number: i + 1,
                line: line_of(text, header),
                settings: settings(&s.get_ref().0)?,
            });
        }
        if streams.is_empty() {
            return Err(ConfigError::NoStreams {
                path: path.to_path_buf(),
            });
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            serve: top("serve", &raw.serve)?,
            serve_auth: top("serve_auth", &raw.serve_auth)?,
            serve_max_clients: top("serve_max_clients", &raw.serve_max_clients)?,
            stats_json: top("stats_json", &raw.stats_json)?,
            cluster: top("cluster", &raw.cluster)?,
            nats_creds: top("nats_creds", &raw.nats_creds)?,
            defaults: settings(&raw.defaults)?,
            streams,
        })
    }

    /// An error about `setting`, naming this file, its line and its key.
    pub fn key_error(&self, setting: &Setting, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            path: self.path.clone(),
            line: setting.line,
            key: setting.key.clone(),
            message: message.into(),
        }
    }

    /// An error about a whole `[[stream]]` table.
    pub fn stream_error(&self, entry: &StreamEntry, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.clone(),
            line: entry.line,
            message: format!("[[stream]] #{}: {}", entry.number, message.into()),
        }
    }

    /// The settings of `entry`: the defaults, then its own (which win).
    pub fn merged(&self, entry: &StreamEntry) -> Vec<Setting> {
        let mut out: Vec<Setting> = self
            .defaults
            .iter()
            .filter(|d| !entry.settings.iter().any(|s| s.key == d.key))
            .cloned()
            .collect();
        out.extend(entry.settings.iter().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"# two cameras
serve = "8080"

[defaults]
filter = "emboss"
workers = 2

[[stream]]
label = "front"
input = "rtsp://127.0.0.1:8554/front"
keyframes-only = true

[[stream]]
label = "back"
input = "http://127.0.0.1:8090/back.ts"
filter = "sharpen"
fps = 2.5
reconnect = false
"#;

    #[test]
    fn parses_streams_with_lines() {
        let c = ConfigFile::parse(Path::new("cams.toml"), GOOD).unwrap();
        assert_eq!(
            c.serve.as_ref().map(|s| (&s.value, s.line)),
            Some((&Value::Text("8080".into()), 2))
        );
        assert_eq!(c.streams.len(), 2);
        let back = &c.streams[1];
        assert_eq!((back.number, back.line), (2, 13));
        let keys: Vec<(&str, usize)> = back
            .settings
            .iter()
            .map(|s| (s.key.as_str(), s.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("label", 14),
                ("input", 15),
                ("filter", 16),
                ("fps", 17),
                ("reconnect", 18)
            ]
        );
        assert_eq!(back.settings[3].value, Value::Text("2.5".into()));
        assert_eq!(back.settings[4].value, Value::Flag(false));
        let front = c.merged(&c.streams[0]);
        assert!(
            front
                .iter()
                .any(|s| s.key == "keyframes_only" && s.value == Value::Flag(true))
        );
        assert!(
            front
                .iter()
                .any(|s| s.key == "filter" && s.value == Value::Text("emboss".into()))
        );
        let back = c.merged(&c.streams[1]);
        let filters: Vec<_> = back.iter().filter(|s| s.key == "filter").collect();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0].value, Value::Text("sharpen".into()));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = ConfigFile::parse(
            Path::new("c.toml"),
            "[[stream]]\ninput = \"a\"\nfilter = [1, 2]\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "c.toml:3: key 'filter': expected a string, a number or true/false, got array"
        );
        let e = ConfigFile::parse(Path::new("c.toml"), "[[stream]]\ninput = \"a\"\nbad line\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3: "), "{e}");
        let e = ConfigFile::parse(
            Path::new("c.toml"),
            "serve = 1\nbogus = 2\n[[stream]]\ninput=\"a\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:2: ") && e.contains("bogus"), "{e}");
        let e = ConfigFile::parse(
            Path::new("c.toml"),
            "[[stream]]\ninput = \"a.mp4\"\nmax-frames = 1\nmax_frames = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "c.toml:4: key 'max_frames': given twice in one table (also on line 3)"
        );
        let e = ConfigFile::parse(Path::new("c.toml"), "serve = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [[stream]]"), "{e}");
    }
}
