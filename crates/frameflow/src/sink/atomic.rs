//! Atomic file output: bytes go to a temporary name in the final directory, and only a
//! complete file is renamed to its final name. Temporary names are dotfiles ending in
//! `.tmp` (`.ff-<pid>-<n>-<name>.tmp`), so hot-folder watchers — ours included — ignore
//! them; they carry the writer's pid, so a restart removes only the leftovers of dead
//! processes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const TEMP_PREFIX: &str = ".ff-";
const TEMP_SUFFIX: &str = ".tmp";

/// `fs::create_dir_all`, however the path is spelled: `newdir/.` and `a/./b` too (the
/// standard one tries `newdir/.` before `newdir` exists and fails).
pub fn create_dirs(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path.components().collect::<PathBuf>())
}

/// An I/O failure with the path and the step it happened in.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("output directory {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("renaming {} to {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("{} already exists (use {} to replace outputs)", path.display(), crate::setting::Setting::Overwrite)]
    Exists { path: PathBuf },
}

/// Whether a commit may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    Never,
    Allowed,
}

/// A directory that receives complete files only.
#[derive(Debug)]
pub struct AtomicDir {
    root: PathBuf,
    pid: u32,
    /// Unique among this process's `AtomicDir`s: two streams writing into one directory
    /// (or a raw directory that is another stream's output) never pick the same
    /// temporary name.
    id: u64,
    counter: AtomicU64,
    fsync: bool,
}

/// A complete file under its temporary name, waiting to be committed.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AtomicDir {
    /// Creates the directory if needed and removes stale temporary files left by dead
    /// processes. `fsync` makes every file and its directory durable before it counts
    /// as written (the hot folder needs it; a frame stream usually does not).
    pub fn open(root: &Path, fsync: bool) -> Result<AtomicDir, WriteError> {
        create_dirs(root).map_err(|source| WriteError::Dir {
            path: root.to_path_buf(),
            source,
        })?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let dir = AtomicDir {
            root: root.to_path_buf(),
            pid: std::process::id(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            counter: AtomicU64::new(0),
            fsync,
        };
        let removed = remove_stale_temps(root);
        if removed > 0 {
            tracing::info!(dir = %root.display(), removed, "removed stale temporary files");
        }
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` under a temporary name next to `rel` (a relative path from a
    /// validated template). Creates parent directories as needed.
    pub fn write_temp(&self, rel: &str, bytes: &[u8]) -> Result<TempFile, WriteError> {
        self.write_temp_then(rel, bytes, |_| Ok(()))
    }

    /// Like [`AtomicDir::write_temp`], and runs `finish` on the still open file after the
    /// bytes are written (and before this directory's own sync, if it syncs): the hot
    /// folder sets its mark (the mtime) and syncs there, without opening the file again.
    /// When `finish` fails the temporary file is removed.
    pub fn write_temp_then(
        &self,
        rel: &str,
        bytes: &[u8],
        finish: impl FnOnce(&File) -> io::Result<()>,
    ) -> Result<TempFile, WriteError> {
        let final_path = self.root.join(rel);
        let parent = final_path.parent().unwrap_or(&self.root).to_path_buf();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Short and of bounded length (not the final name plus a suffix): any name the
        // filesystem accepts, up to its 255 bytes, can be written.
        let temp = parent.join(format!(
            "{TEMP_PREFIX}{}-{}-{n}{TEMP_SUFFIX}",
            self.pid, self.id
        ));
        let result = (|| {
            let mut f = match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && parent != self.root => {
                    fs::create_dir_all(&parent)?;
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&temp)?
                }
                other => other?,
            };
            f.write_all(bytes)?;
            finish(&f)?;
            if self.fsync {
                f.sync_all()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(TempFile { path: temp }),
            Err(source) => {
                let _ = fs::remove_file(&temp);
                Err(WriteError::Write { path: temp, source })
            }
        }
    }

    /// Gives `temp` its final name `rel`. With [`Replace::Never`] an existing file is never
    /// replaced, even by a concurrent writer (`renameat2(RENAME_NOREPLACE)`, or link+unlink
    /// on filesystems without it). On failure the temporary file is removed.
    pub fn commit(
        &self,
        temp: TempFile,
        rel: &str,
        replace: Replace,
    ) -> Result<PathBuf, WriteError> {
        self.commit_keep(temp, rel, replace).map_err(|(t, e)| {
            self.discard(t);
            e
        })
    }

    /// Like [`AtomicDir::commit`], but hands the temporary file back on failure, so the
    /// caller can retry under another name.
    pub fn commit_keep(
        &self,
        temp: TempFile,
        rel: &str,
        replace: Replace,
    ) -> Result<PathBuf, (TempFile, WriteError)> {
        let dest = self.root.join(rel);
        if let Some(parent) = dest.parent()
            && !parent.exists()
            && let Err(source) = fs::create_dir_all(parent)
        {
            let path = parent.to_path_buf();
            return Err((temp, WriteError::Dir { path, source }));
        }
        let res = match replace {
            Replace::Allowed => fs::rename(&temp.path, &dest),
            Replace::Never => rename_noreplace(&temp.path, &dest),
        };
        match res {
            Ok(()) => {
                if self.fsync
                    && let Some(parent) = dest.parent()
                    && let Err(source) = sync_dir(parent)
                {
                    // The file is in place; report that its durability is not certain.
                    let path = parent.to_path_buf();
                    return Err((
                        TempFile {
                            path: PathBuf::new(),
                        },
                        WriteError::Dir { path, source },
                    ));
                }
                Ok(dest)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err((temp, WriteError::Exists { path: dest }))
            }
            Err(source) => {
                let from = temp.path.clone();
                Err((
                    temp,
                    WriteError::Rename {
                        from,
                        to: dest,
                        source,
                    },
                ))
            }
        }
    }

    /// Removes a temporary file that will not be committed.
    pub fn discard(&self, temp: TempFile) {
        if !temp.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&temp.path);
        }
    }
}

/// Is `name` one of our temporary names?
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

fn temp_owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes our temporary files under `root` (recursively) whose writer is gone.
/// Returns how many were removed.
pub fn remove_stale_temps(root: &Path) -> usize {
    remove_temps_where(root, |pid| pid.is_none_or(|pid| !process_alive(pid)))
}

/// Removes this process's own temporary files under `root` (used when aborting).
pub fn remove_own_temps(root: &Path) -> usize {
    let me = std::process::id();
    remove_temps_where(root, |pid| pid == Some(me))
}

/// Walks `root` and removes our temporary files whose owner pid satisfies `owned`.
fn remove_temps_where(root: &Path, owned: impl Fn(Option<u32>) -> bool) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for entry in rd.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(entry.path());
            } else if is_temp_name(&name)
                && owned(temp_owner_pid(&name))
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then), atomically.
#[cfg(target_os = "linux")]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
    };
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => link_then_unlink(from, to),
        _ => Err(err),
    }
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then).
#[cfg(not(target_os = "linux"))]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    link_then_unlink(from, to)
}

/// No-replace rename for filesystems without `RENAME_NOREPLACE`: `link` fails on an
/// existing name, so the final name still only ever shows a complete file.
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_commit_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = AtomicDir::open(dir.path(), false).unwrap();
        let t = out.write_temp("a.jpg", b"one").unwrap();
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(is_temp_name(&name), "{name}");
        out.commit(t, "a.jpg", Replace::Never).unwrap();
        assert_eq!(fs::read(dir.path().join("a.jpg")).unwrap(), b"one");

        let t = out.write_temp("a.jpg", b"two").unwrap();
        let err = out.commit(t, "a.jpg", Replace::Never).unwrap_err();
        assert!(matches!(err, WriteError::Exists { .. }), "{err}");
        assert_eq!(fs::read(dir.path().join("a.jpg")).unwrap(), b"one");

        let t = out.write_temp("a.jpg", b"three").unwrap();
        out.commit(t, "a.jpg", Replace::Allowed).unwrap();
        assert_eq!(fs::read(dir.path().join("a.jpg")).unwrap(), b"three");
        // nothing but the final file is left
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn creates_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let out = AtomicDir::open(dir.path(), true).unwrap();
        let t = out.write_temp("cam/x/1.png", b"p").unwrap();
        out.commit(t, "cam/x/1.png", Replace::Never).unwrap();
        assert_eq!(fs::read(dir.path().join("cam/x/1.png")).unwrap(), b"p");
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 2147483632 does not exist: its leftovers are stale.
        let dead = dir.path().join(".ff-2147483632-0-frame000001.jpg.tmp");
        let foreign = dir.path().join(".hidden.tmp");
        let keep = dir.path().join("frame000000.jpg");
        for p in [&dead, &foreign, &keep] {
            fs::write(p, b"x").unwrap();
        }
        let _out = AtomicDir::open(dir.path(), false).unwrap();
        assert!(!dead.exists());
        assert!(foreign.exists(), "files that are not ours are left alone");
        assert!(keep.exists());
    }
}
