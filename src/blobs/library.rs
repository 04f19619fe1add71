//! The master's media library: a directory of files under their media
//! paths, scanned into a [`Manifest`], written to by uploads.
//!
//! Publishing rules:
//! - An upload goes to `.upload-<random>` in the library root (same file
//!   system, so the rename is atomic), is hashed while it is written,
//!   fsynced, and renamed to its path; it is in the manifest at once.
//! - A file an administrator copies in by hand is published when a scan sees
//!   the same size and mtime as the scan before (so a copy still in progress
//!   is not hashed or published), and names starting with `.` are never
//!   published (copy to `.name` and rename when done, to publish at once
//!   on the next two scans without any doubt).
//! - Symbolic links are followed only when they resolve inside the library;
//!   a file whose resolved path leaves it is neither published nor served.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::domain::media::{hex, Manifest, ManifestEntry, MediaPath};

/// Temporary upload files left by a crash are removed when this old.
const STALE_UPLOAD: Duration = Duration::from_secs(3600);
const UPLOAD_PREFIX: &str = ".upload-";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Indexed {
    size: u64,
    mtime: SystemTime,
    sha256: String,
}

#[derive(Default)]
struct Index {
    files: BTreeMap<String, Indexed>,
    /// Seen once with this size and mtime, not yet published.
    pending: HashMap<String, (u64, SystemTime)>,
    manifest: Arc<Manifest>,
}

impl Index {
    fn rebuild(&mut self) {
        self.manifest = Arc::new(Manifest::new(self.files.iter().map(|(path, f)| {
            ManifestEntry {
                path: path.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            }
        })));
    }
}

pub struct Library {
    root: PathBuf,
    canonical_root: PathBuf,
    index: Mutex<Index>,
}

/// An upload in progress; dropped without [`Upload::finish`], its
/// temporary file is removed.
pub struct Upload {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    path: String,
    hasher: Sha256,
    written: u64,
}

impl Library {
    /// Opens (creating) the library at `root` and removes stale temporary
    /// uploads.
    pub fn open(root: &Path) -> io::Result<Library> {
        fs::create_dir_all(root)?;
        let canonical_root = root.canonicalize()?;
        for entry in fs::read_dir(root)?.flatten() {
            let name = entry.file_name();
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > STALE_UPLOAD);
            if name.to_string_lossy().starts_with(UPLOAD_PREFIX) && stale {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Library {
            root: root.to_owned(),
            canonical_root,
            index: Mutex::new(Index::default()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent index (every
        // change is one assignment), so a poisoned lock is still usable.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The published manifest.
    pub fn manifest(&self) -> Arc<Manifest> {
        self.index().manifest.clone()
    }

    /// Whether `path` resolves (following links) to a place inside the
    /// library.
    fn inside(&self, path: &Path) -> bool {
        path.canonicalize()
            .is_ok_and(|p| p.starts_with(&self.canonical_root))
    }

    /// The file of a published media path, checked to be inside the library.
    pub fn file_of_path(&self, path: &str) -> Option<(ManifestEntry, PathBuf)> {
        let entry = self.index().manifest.get(path)?.clone();
        let file = self.root.join(path);
        self.inside(&file).then_some((entry, file))
    }

    /// A published file with this content.
    pub fn file_of_blob(&self, sha256: &str) -> Option<(PathBuf, u64)> {
        let found = {
            let index = self.index();
            index
                .files
                .iter()
                .find(|(_, f)| f.sha256 == sha256)
                .map(|(path, f)| (self.root.join(path), f.size))
        };
        found.filter(|(file, _)| self.inside(file))
    }

    /// Scans the directory (blocking: run it off the async threads).
    /// Returns whether the manifest changed.
    pub fn scan(&self) -> io::Result<bool> {
        let mut seen = Vec::new();
        self.walk(&self.root, &mut seen)?;
        let mut to_hash = Vec::new();
        let mut changed = false;
        {
            let mut index = self.index();
            let present: std::collections::HashSet<&str> =
                seen.iter().map(|(p, _, _)| p.as_str()).collect();
            let before = index.files.len();
            index.files.retain(|p, _| present.contains(p.as_str()));
            index.pending.retain(|p, _| present.contains(p.as_str()));
            changed |= index.files.len() != before;
            for (path, size, mtime) in &seen {
                let unchanged = index
                    .files
                    .get(path)
                    .is_some_and(|f| f.size == *size && f.mtime == *mtime);
                if unchanged {
                    continue;
                }
                // Changed in place since it was published: withdraw it
                // until it is stable again.
                changed |= index.files.remove(path).is_some();
                if index.pending.get(path) == Some(&(*size, *mtime)) {
                    to_hash.push((path.clone(), *size, *mtime));
                } else {
                    index.pending.insert(path.clone(), (*size, *mtime));
                }
            }
        }
        for (path, size, mtime) in to_hash {
            let file = self.root.join(&path);
            let (sha256, hashed) = crate::blobs::hash_file(&file)?;
            let after = fs::metadata(&file)?;
            if hashed != size || after.len() != size || after.modified()? != mtime {
                continue; // changed while hashing: next scan
            }
            let mut index = self.index();
            index.pending.remove(&path);
            index.files.insert(
                path,
                Indexed {
                    size,
                    mtime,
                    sha256,
                },
            );
            changed = true;
        }
        if changed {
            self.index().rebuild();
        }
        Ok(changed)
    }

    /// Collects `(media path, size, mtime)` of every publishable file.
    fn walk(&self, dir: &Path, out: &mut Vec<(String, u64, SystemTime)>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // `metadata` follows links; a link leaving the library is skipped.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if entry.file_type()?.is_symlink() && !self.inside(&path) {
                tracing::warn!(path = %path.display(), "symbolic link out of the media library ignored");
                continue;
            }
            if meta.is_dir() {
                self.walk(&path, out)?;
            } else if meta.is_file() {
                let relative = path
                    .strip_prefix(&self.root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if MediaPath::parse(&relative).is_ok() {
                    out.push((relative, meta.len(), meta.modified()?));
                } else {
                    tracing::warn!(path = %relative, "file name not usable as a media path; ignored");
                }
            }
        }
        Ok(())
    }

    /// Starts an upload to `path`. Fails when a directory on the way is a
    /// link out of the library.
    pub fn begin_upload(&self, path: &MediaPath) -> io::Result<Upload> {
        let target = self.root.join(path.as_str());
        let parent = target.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&parent)?;
        if !self.inside(&parent) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a directory of this path leads out of the library",
            ));
        }
        let temp = self
            .root
            .join(format!("{UPLOAD_PREFIX}{:016x}", fastrand::u64(..)));
        let file = File::create(&temp)?;
        Ok(Upload {
            file: Some(file),
            temp,
            target,
            path: path.to_string(),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Removes a file; false when it was not there.
    pub fn delete(&self, path: &MediaPath) -> io::Result<bool> {
        let file = self.root.join(path.as_str());
        let removed = match fs::symlink_metadata(&file) {
            Ok(meta) if meta.is_file() || meta.file_type().is_symlink() => {
                fs::remove_file(&file)?;
                if let Some(dir) = file.parent() {
                    crate::blobs::sync_dir(dir)?;
                }
                true
            }
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let mut index = self.index();
        let was_indexed = index.files.remove(path.as_str()).is_some();
        index.pending.remove(path.as_str());
        if was_indexed {
            index.rebuild();
        }
        Ok(removed || was_indexed)
    }

    /// Publishes a finished upload.
    pub fn finish_upload(&self, mut upload: Upload) -> io::Result<ManifestEntry> {
        let file = upload
            .file
            .take()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        crate::blobs::publish(&file, &upload.temp, &upload.target)?;
        let meta = fs::metadata(&upload.target)?;
        let sha256 = hex(&std::mem::take(&mut upload.hasher).finalize());
        let entry = ManifestEntry {
            path: upload.path.clone(),
            size: upload.written,
            sha256: sha256.clone(),
        };
        let mut index = self.index();
        index.pending.remove(&upload.path);
        index.files.insert(
            upload.path.clone(),
            Indexed {
                size: upload.written,
                mtime: meta.modified()?,
                sha256,
            },
        );
        index.rebuild();
        Ok(entry)
    }
}

impl Upload {
    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        file.write_all(chunk)?;
        self.hasher.update(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> MediaPath {
        MediaPath::parse(p).expect("test path")
    }

    #[test]
    fn a_copied_file_is_published_after_two_stable_scans() {
        let dir = tempfile::tempdir().expect("temp dir");
        let library = Library::open(dir.path()).expect("open");
        fs::write(dir.path().join("a.png"), b"half").expect("write");
        library.scan().expect("scan");
        assert!(
            library.manifest().files.is_empty(),
            "published on first sight"
        );
        // Still being copied: grows between scans.
        fs::write(dir.path().join("a.png"), b"half and more").expect("write");
        library.scan().expect("scan");
        assert!(
            library.manifest().files.is_empty(),
            "published while changing"
        );
        assert!(library.scan().expect("scan"));
        let manifest = library.manifest();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].size, 13);
        assert_eq!(
            manifest.files[0].sha256,
            crate::domain::media::sha256_hex(b"half and more")
        );
    }

    #[test]
    fn dot_files_and_links_out_are_never_published() {
        let dir = tempfile::tempdir().expect("temp dir");
        let outside = tempfile::tempdir().expect("outside");
        fs::write(outside.path().join("secret"), b"secret").expect("write");
        let library = Library::open(dir.path()).expect("open");
        fs::write(dir.path().join(".partial.mp4"), b"x").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dir")).expect("symlink");
        for _ in 0..3 {
            library.scan().expect("scan");
        }
        assert!(
            library.manifest().files.is_empty(),
            "{:?}",
            library.manifest()
        );
        assert!(library.begin_upload(&path("dir/x.png")).is_err());
    }

    #[test]
    fn upload_is_atomic_and_indexed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let library = Library::open(dir.path()).expect("open");
        let mut upload = library.begin_upload(&path("ads/a.png")).expect("begin");
        upload.write(b"hello ").expect("write");
        assert!(
            !dir.path().join("ads/a.png").exists(),
            "visible before finish"
        );
        upload.write(b"world").expect("write");
        let entry = library.finish_upload(upload).expect("finish");
        assert_eq!(
            entry.sha256,
            crate::domain::media::sha256_hex(b"hello world")
        );
        assert_eq!(
            fs::read(dir.path().join("ads/a.png")).expect("read"),
            b"hello world"
        );
        assert_eq!(library.manifest().files, vec![entry.clone()]);
        // A scan keeps it (size and mtime unchanged).
        library.scan().expect("scan");
        assert_eq!(library.manifest().files, vec![entry]);
        // An abandoned upload leaves nothing behind.
        let mut dropped = library.begin_upload(&path("b.png")).expect("begin");
        dropped.write(b"x").expect("write");
        drop(dropped);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ads")]);
        assert!(library.delete(&path("ads/a.png")).expect("delete"));
        assert!(library.manifest().files.is_empty());
    }
}
