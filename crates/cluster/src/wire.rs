//! The message body: `u32 BE length` + JSON envelope + `meta` bytes + inline payload.
//!
//! The envelope is small JSON (versioned); `meta` and the payload are raw bytes after
//! it, so neither is re-encoded. A payload too big for one message is stored in the
//! object bucket and the envelope names the object instead (`object`, `size`).

use serde::{Deserialize, Serialize};

/// Wire format version; a reader refuses other versions.
pub(crate) const VERSION: u32 = 1;

/// What a message on the results stream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A chunk for the workers.
    Chunk,
    /// One encoded frame of a chunk.
    Frame,
    /// A worker finished a chunk: all of its frames are stored.
    Done,
    /// A worker gave up on a chunk (its data cannot be processed).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub v: u32,
    pub kind: Kind,
    pub job: String,
    pub chunk_no: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_no: Option<u64>,
    /// Which delivery of the chunk produced this message (1 = first).
    #[serde(default)]
    pub delivery: u64,
    /// Frames in the chunk (`Done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// Why (`Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub meta_len: u64,
    /// The payload is this object in the bucket rather than inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Payload size in bytes (inline or object).
    pub size: u64,
}

impl Envelope {
    pub(crate) fn new(kind: Kind, job: &str, chunk_no: u64) -> Self {
        Self {
            v: VERSION,
            kind,
            job: job.to_owned(),
            chunk_no,
            frame_no: None,
            delivery: 0,
            frames: None,
            reason: None,
            meta_len: 0,
            object: None,
            size: 0,
        }
    }
}

/// Builds a body; `inline` is empty when the payload went to the object store.
pub(crate) fn encode(env: &Envelope, meta: &[u8], inline: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(env).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + json.len() + meta.len() + inline.len());
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(meta);
    out.extend_from_slice(inline);
    out
}

/// A decoded body: the envelope, then `meta` and the inline payload as byte ranges.
pub(crate) struct Decoded<'a> {
    pub env: Envelope,
    pub meta: &'a [u8],
    pub inline: &'a [u8],
}

/// Splits a body, checking lengths against what the envelope says.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded<'_>, String> {
    let len_bytes: [u8; 4] = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("body shorter than its length prefix")?;
    let json_len = u32::from_be_bytes(len_bytes) as usize;
    let json = body
        .get(4..4 + json_len)
        .ok_or("envelope length past the end of the body")?;
    let env: Envelope = serde_json::from_slice(json).map_err(|e| format!("bad envelope: {e}"))?;
    if env.v != VERSION {
        return Err(format!(
            "wire version {} (this build speaks {VERSION})",
            env.v
        ));
    }
    let rest = &body[4 + json_len..];
    let meta_len = usize::try_from(env.meta_len).map_err(|_| "meta length overflows")?;
    let meta = rest
        .get(..meta_len)
        .ok_or("meta past the end of the body")?;
    let inline = &rest[meta_len..];
    if env.object.is_none() && inline.len() as u64 != env.size {
        return Err(format!(
            "inline payload is {} bytes, envelope says {}",
            inline.len(),
            env.size
        ));
    }
    if env.object.is_some() && !inline.is_empty() {
        return Err("both an object and an inline payload".into());
    }
    Ok(Decoded { env, meta, inline })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut env = Envelope::new(Kind::Frame, "job1", 7);
        env.frame_no = Some(42);
        env.meta_len = 3;
        env.size = 5;
        let body = encode(&env, b"abc", b"hello");
        let d = decode(&body).unwrap();
        assert_eq!(d.env, env);
        assert_eq!(d.meta, b"abc");
        assert_eq!(d.inline, b"hello");
        for cut in 0..body.len() {
            assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"\xff\xff\xff\xffjunk").is_err());
    }
}
