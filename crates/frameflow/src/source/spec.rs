//! What the user typed after `-i`, classified.

use std::path::Path;

/// The kind of input, which decides the FFmpeg options and the live defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A local file (or `file:` URL).
    File,
    /// A network URL: `http(s)://`, `rtsp://`, `rtmp://`, `srt://`, `udp://`, `tcp://`, …
    Network,
    /// `lavfi:<graph>`: a libavfilter source such as `testsrc2=size=1280x720:rate=30`.
    Lavfi,
    /// `v4l2:<device>`: a V4L2 camera through libavdevice.
    V4l2,
    /// `-`: standard input.
    Stdin,
}

/// A parsed `-i` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// As the user wrote it (used in messages).
    pub raw: String,
    pub kind: InputKind,
    /// What is handed to `avformat_open_input`.
    pub url: String,
    /// A forced demuxer (`lavfi`, `video4linux2`), if any.
    pub format: Option<&'static str>,
}

/// Why an input argument is unusable before anything is opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("empty input")]
    Empty,
    #[error(
        "input '{0}': missing graph after 'lavfi:' (e.g. lavfi:testsrc2=size=1280x720:rate=30)"
    )]
    EmptyLavfi(String),
    #[error("input '{0}': missing device after 'v4l2:' (e.g. v4l2:/dev/video0)")]
    EmptyV4l2(String),
}

const NETWORK_SCHEMES: &[&str] = &[
    "http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "rtmpe", "rtmpte", "rtmpts", "srt",
    "udp", "tcp", "rtp", "tls", "hls", "mmsh", "mmst", "ftp", "sftp", "icecast", "rist", "zmq",
];

impl InputSpec {
    pub fn parse(raw: &str) -> Result<InputSpec, SpecError> {
        if raw.is_empty() {
            return Err(SpecError::Empty);
        }
        let mk = |kind, url: &str, format| InputSpec {
            raw: raw.to_string(),
            kind,
            url: url.to_string(),
            format,
        };
        if raw == "-" {
            return Ok(mk(InputKind::Stdin, "pipe:0", None));
        }
        if let Some(graph) = raw.strip_prefix("lavfi:") {
            if graph.is_empty() {
                return Err(SpecError::EmptyLavfi(raw.into()));
            }
            return Ok(mk(InputKind::Lavfi, graph, Some("lavfi")));
        }
        if let Some(dev) = raw.strip_prefix("v4l2:") {
            if dev.is_empty() {
                return Err(SpecError::EmptyV4l2(raw.into()));
            }
            return Ok(mk(InputKind::V4l2, dev, Some("video4linux2")));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            let base = scheme.split('+').next_back().unwrap_or(&scheme);
            if scheme == "file" {
                return Ok(mk(InputKind::File, raw, None));
            }
            if NETWORK_SCHEMES.contains(&base) || NETWORK_SCHEMES.contains(&scheme.as_str()) {
                return Ok(mk(InputKind::Network, raw, None));
            }
        }
        Ok(mk(InputKind::File, raw, None))
    }

    /// Live inputs default to `--overload drop-oldest` and get short probing and timeouts.
    pub fn is_live(&self) -> bool {
        matches!(
            self.kind,
            InputKind::Network | InputKind::V4l2 | InputKind::Stdin
        )
    }

    pub fn is_rtsp(&self) -> bool {
        let l = self.raw.to_ascii_lowercase();
        l.starts_with("rtsp://") || l.starts_with("rtsps://")
    }

    /// A short label for `{stream}` and stats: the file stem, the URL's last path segment,
    /// or the device name.
    pub fn default_label(&self) -> String {
        let candidate = match self.kind {
            InputKind::Stdin => return "stdin".into(),
            InputKind::Lavfi => {
                return self
                    .url
                    .split(['=', ',', ':'])
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("lavfi")
                    .to_string();
            }
            InputKind::File | InputKind::V4l2 => Path::new(self.url.trim_start_matches("file://"))
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()),
            InputKind::Network => {
                let no_query = self.url.split(['?', '#']).next().unwrap_or("");
                let after_scheme = no_query.split_once("://").map_or(no_query, |(_, r)| r);
                let path = after_scheme.trim_end_matches('/');
                let last = path.rsplit('/').next().unwrap_or(path);
                Path::new(last)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            }
        };
        candidate
            .filter(|s| !s.is_empty())
            .map(|s| s.replace(['/', ':'], "_"))
            .unwrap_or_else(|| "stream".into())
    }
}

impl std::fmt::Display for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_inputs() {
        let s = InputSpec::parse("clip.mp4").unwrap();
        assert_eq!((s.kind, s.is_live()), (InputKind::File, false));
        assert_eq!(s.default_label(), "clip");
        let s = InputSpec::parse("http://127.0.0.1:8090/test1.mpg").unwrap();
        assert_eq!((s.kind, s.is_live()), (InputKind::Network, true));
        assert_eq!(s.default_label(), "test1");
        let s = InputSpec::parse("RTSP://127.0.0.1:8554/cam").unwrap();
        assert!(s.is_rtsp());
        assert_eq!(s.default_label(), "cam");
        let s = InputSpec::parse("lavfi:testsrc2=size=1280x720:rate=30").unwrap();
        assert_eq!(s.kind, InputKind::Lavfi);
        assert_eq!(s.url, "testsrc2=size=1280x720:rate=30");
        assert_eq!(s.format, Some("lavfi"));
        assert_eq!(s.default_label(), "testsrc2");
        let s = InputSpec::parse("v4l2:/dev/video0").unwrap();
        assert_eq!((s.kind, s.format), (InputKind::V4l2, Some("video4linux2")));
        assert_eq!(s.default_label(), "video0");
        let s = InputSpec::parse("-").unwrap();
        assert_eq!((s.kind, s.url.as_str()), (InputKind::Stdin, "pipe:0"));
        assert_eq!(
            InputSpec::parse("file:///x/y.ts").unwrap().kind,
            InputKind::File
        );
        assert_eq!(
            InputSpec::parse("hls+http://h/p.m3u8").unwrap().kind,
            InputKind::Network
        );
        assert!(InputSpec::parse("").is_err());
        assert!(InputSpec::parse("lavfi:").is_err());
    }
}
