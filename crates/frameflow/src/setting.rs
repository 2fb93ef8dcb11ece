//! Settings, as the library's messages name them.
//!
//! The library speaks of settings (`max_file_size`), not of the flags a front end spells
//! them with: the `frameflow` command registers its spelling once at start
//! ([`spell_settings`]), so a message reads `over the limit of 1024 bytes
//! (--max-file-size)` there, while a program using the library without it sees the
//! setting's key. Self-contained (std only): the fuzz crate compiles it as it is.

use std::sync::OnceLock;

/// A setting a library message may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// The output directory.
    Out,
    /// The output name template.
    Name,
    Overwrite,
    MaxPixels,
    MaxFileSize,
    /// The web server's address.
    Serve,
    ServeAuth,
    StatsJson,
    /// The hot folder's directory for processed inputs.
    Done,
    /// The hot folder's directory for unusable inputs.
    Failed,
    KeepLast,
    Start,
    /// A file of streams and settings.
    Config,
    RawDir,
}

impl Setting {
    /// Every setting.
    pub const ALL: &'static [Setting] = &[
        Setting::Out,
        Setting::Name,
        Setting::Overwrite,
        Setting::MaxPixels,
        Setting::MaxFileSize,
        Setting::Serve,
        Setting::ServeAuth,
        Setting::StatsJson,
        Setting::Done,
        Setting::Failed,
        Setting::KeepLast,
        Setting::Start,
        Setting::Config,
        Setting::RawDir,
    ];

    /// The setting's key: its name in a `--config` file, and its text when no front end
    /// registered a spelling.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Out => "out",
            Setting::Name => "name",
            Setting::Overwrite => "overwrite",
            Setting::MaxPixels => "max_pixels",
            Setting::MaxFileSize => "max_file_size",
            Setting::Serve => "serve",
            Setting::ServeAuth => "serve_auth",
            Setting::StatsJson => "stats_json",
            Setting::Done => "done",
            Setting::Failed => "failed",
            Setting::KeepLast => "keep_last",
            Setting::Start => "start",
            Setting::Config => "config",
            Setting::RawDir => "raw_dir",
        }
    }
}

static SPELLING: OnceLock<Vec<(Setting, String)>> = OnceLock::new();

/// Registers how this process spells settings in messages (e.g. `--max-file-size`), for
/// every message from now on. The first registration wins; returns false for a later one.
pub fn spell_settings(spelling: Vec<(Setting, String)>) -> bool {
    SPELLING.set(spelling).is_ok()
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spelled = SPELLING
            .get()
            .and_then(|s| s.iter().find(|(k, _)| k == self))
            .map(|(_, v)| v.as_str());
        f.write_str(spelled.unwrap_or(self.key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique() {
        for (i, a) in Setting::ALL.iter().enumerate() {
            for b in &Setting::ALL[..i] {
                assert_ne!(a.key(), b.key());
            }
        }
    }
}
