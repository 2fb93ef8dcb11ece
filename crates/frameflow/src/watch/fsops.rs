//! Filesystem steps of the hot folder: moves that never replace, output name variants,
//! and the "this output was made from this input" mark (the output's mtime).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The most `-N` variants tried for one name.
pub const MAX_VARIANTS: u32 = 10_000;

/// `sub/a.jpg` → `sub/a-3.jpg` for `k = 3`; `k = 0` is the name itself: the one rule
/// for names made unique, shared with `run`'s templates.
pub use crate::sink::naming::variant;

/// The same input: same inode, same modification time.
pub fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino() && a.len() == b.len() && mtime_eq(a, b)
}

fn mtime_eq(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.mtime() == b.mtime() && a.mtime_nsec() == b.mtime_nsec()
}

/// True when `out` carries the mark of `input`: its mtime was set to the input's.
/// Compared to the nanosecond; a filesystem that keeps whole seconds only (nanoseconds
/// stored as 0) is compared to the second.
pub fn is_output_of(out: &fs::Metadata, input_mtime: SystemTime) -> bool {
    let Ok(m) = out.modified() else { return false };
    if m == input_mtime {
        return true;
    }
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .ok()
    };
    out.mtime_nsec() == 0 && secs(m).is_some() && secs(m) == secs(input_mtime)
}

/// Sets the mark on a finished temporary output (still open, all bytes written) and makes
/// data and metadata durable.
pub fn mark_and_sync(f: &File, input_mtime: SystemTime) -> io::Result<()> {
    f.set_modified(input_mtime)?;
    f.sync_all()
}

/// Renames `from` to `to` unless `to` exists (AlreadyExists then).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    crate::sink::atomic::rename_noreplace(from, to)
}

/// Moves `src` to `root/rel` (or `root/rel-N` when taken), never replacing a file.
/// Across filesystems the file is copied to a temporary name, synced, renamed, and only
/// then is `src` removed.
pub fn move_into(src: &Path, root: &Path, rel: &str) -> io::Result<PathBuf> {
    let first = root.join(rel);
    if let Some(parent) = first.parent() {
        fs::create_dir_all(parent)?;
    }
    for k in 0..MAX_VARIANTS {
        let dest = root.join(variant(rel, k));
        match rename_noreplace(src, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let parent = dest.parent().unwrap_or(root);
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = parent.join(format!(".ff-{}-move-{name}.tmp", std::process::id()));
                let copied = fs::copy(src, &temp)
                    .and_then(|_| File::open(&temp)?.sync_all())
                    .and_then(|()| rename_noreplace(&temp, &dest));
                match copied {
                    Ok(()) => {
                        fs::remove_file(src)?;
                        return Ok(dest);
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&temp);
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            continue;
                        }
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{}: every name variant is taken", first.display()),
    ))
}

/// True when some process has `f`'s file open for writing: a read lease cannot be taken
/// then (EAGAIN). Unknown (not permitted, unsupported filesystem) counts as false.
pub fn open_for_writing_elsewhere(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a file descriptor we own; the lease is released at once.
    unsafe {
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) == 0 {
            libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
            false
        } else {
            io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants() {
        assert_eq!(variant("a.jpg", 0), "a.jpg");
        assert_eq!(variant("a.jpg", 2), "a-2.jpg");
        assert_eq!(variant("s/x.y/a.png", 1), "s/x.y/a-1.png");
        assert_eq!(variant("noext", 1), "noext-1");
    }

    #[test]
    fn move_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, b"1").unwrap();
        let dest = d.path().join("dest");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("a"), b"old").unwrap();
        let got = move_into(&a, &dest, "a").unwrap();
        assert_eq!(got, dest.join("a-1"));
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"old");
        assert!(!a.exists());
    }
}
