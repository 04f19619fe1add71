//! A slave node's content-addressed blob store under `<data_dir>/media`:
//! `blobs/<sha256>` (complete and verified) and `partial/<sha256>` (a
//! download in progress, resumed from its length).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::domain::media::{hex, is_blob_id};

/// Why a download was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("file I/O: {0}")]
    Io(#[from] io::Error),
    /// Size or sha256 did not match: the partial file was thrown away.
    #[error("blob {sha256} failed verification ({reason}); discarded")]
    Corrupt { sha256: String, reason: String },
}

/// Written bytes are handed to the kernel's writeback every this many, so
/// the disk works while the transfer runs and the final fsync finds little
/// left to do (instead of the whole file at the end).
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    partial: PathBuf,
}

/// A download growing `partial/<sha256>`: its file and its running sha256.
/// Dropping it keeps what was written, for a later resume. The two halves
/// can be driven from different threads ([`Download::split`], and
/// [`super::stream`] does so).
pub struct Download {
    file: PartialFile,
    hasher: Sha256,
}

/// The file half of a [`Download`].
pub struct PartialFile {
    file: File,
    written: u64,
    /// Where the writeback not yet started begins.
    writeback_from: u64,
    size: u64,
    sha256: String,
    partial: PathBuf,
    blob: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            root: root.to_owned(),
            blobs: root.join("blobs"),
            partial: root.join("partial"),
        };
        fs::create_dir_all(&store.blobs)?;
        fs::create_dir_all(&store.partial)?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a complete blob lives. `sha256` must be a blob id.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        debug_assert!(is_blob_id(sha256));
        self.blobs.join(sha256)
    }

    pub fn partial_path(&self, sha256: &str) -> PathBuf {
        debug_assert!(is_blob_id(sha256));
        self.partial.join(sha256)
    }

    /// Every complete blob and its size.
    pub fn held(&self) -> io::Result<BTreeMap<String, u64>> {
        let mut held = BTreeMap::new();
        for entry in fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_blob_id(&name) {
                held.insert(name, entry.metadata()?.len());
            }
        }
        Ok(held)
    }

    /// Blob ids with a partial download.
    pub fn partials(&self) -> io::Result<Vec<String>> {
        Ok(fs::read_dir(&self.partial)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_blob_id(n))
            .collect())
    }

    /// Bytes already downloaded of a blob.
    pub fn partial_len(&self, sha256: &str) -> u64 {
        fs::metadata(self.partial_path(sha256)).map_or(0, |m| m.len())
    }

    /// Starts or resumes the download of a blob of `size` bytes: what the
    /// partial file holds is hashed again (a node may have been killed
    /// mid-write; the final check catches a bad prefix).
    pub fn begin(&self, sha256: &str, size: u64) -> io::Result<Download> {
        let partial = self.partial_path(sha256);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&partial)?;
        let mut have = file.metadata()?.len();
        if have > size {
            file.set_len(0)?;
            have = 0;
        }
        let mut hasher = Sha256::new();
        file.seek(SeekFrom::Start(0))?;
        let hashed = super::hash_into(&mut file, &mut hasher, have)?;
        file.seek(SeekFrom::Start(hashed))?;
        Ok(Download {
            file: PartialFile {
                file,
                written: hashed,
                writeback_from: hashed,
                size,
                sha256: sha256.to_owned(),
                partial,
                blob: self.blob_path(sha256),
            },
            hasher,
        })
    }

    /// Removes a complete blob (unreferenced) or a partial one.
    pub fn remove(&self, sha256: &str) -> io::Result<()> {
        for path in [self.blob_path(sha256), self.partial_path(sha256)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Hashes a held blob again; a blob that no longer matches its name is
    /// removed and `false` returned.
    pub fn verify(&self, sha256: &str) -> io::Result<bool> {
        let path = self.blob_path(sha256);
        let (actual, _) = super::hash_file(&path)?;
        if actual == sha256 {
            return Ok(true);
        }
        fs::remove_file(&path)?;
        Ok(false)
    }
}

impl Download {
    /// Bytes held so far: where the next Range request starts.
    pub fn offset(&self) -> u64 {
        self.file.written
    }

    pub fn size(&self) -> u64 {
        self.file.size
    }

    /// Appends bytes; more than the blob's size is corruption.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.file.append(chunk)?;
        self.hasher.update(chunk);
        Ok(())
    }

    /// The file and the hash, to be fed separately (the same bytes, in the
    /// same order) and put back together with [`Download::join`].
    pub fn split(self) -> (PartialFile, Sha256) {
        (self.file, self.hasher)
    }

    pub fn join(file: PartialFile, hasher: Sha256) -> Download {
        Download { file, hasher }
    }

    /// Throws the partial file away and says why: the next attempt starts
    /// from zero.
    pub fn reject(mut self, reason: String) -> BlobError {
        self.file.discard();
        BlobError::Corrupt {
            sha256: self.file.sha256.clone(),
            reason,
        }
    }

    /// Checks size and sha256, fsyncs and renames into `blobs/`. A mismatch
    /// removes the partial file, so the next attempt starts from zero.
    pub fn finish(self) -> Result<(), BlobError> {
        let actual = hex(&self.hasher.finalize());
        let file = self.file;
        if file.written != file.size || actual != file.sha256 {
            let reason = format!("{} of {} bytes, sha256 {actual}", file.written, file.size);
            return Err(Download::join(file, Sha256::new()).reject(reason));
        }
        super::publish(&file.file, &file.partial, &file.blob)?;
        Ok(())
    }
}

impl PartialFile {
    /// Appends bytes with one write; more than the blob's size is
    /// corruption (the partial file is thrown away).
    pub fn append(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        if self.written + chunk.len() as u64 > self.size {
            let reason = format!("more than {} bytes", self.size);
            self.discard();
            return Err(BlobError::Corrupt {
                sha256: self.sha256.clone(),
                reason,
            });
        }
        self.file.write_all(chunk)?;
        self.written += chunk.len() as u64;
        if self.written - self.writeback_from >= WRITEBACK_EVERY {
            start_writeback(&self.file, self.writeback_from, self.written);
            self.writeback_from = self.written;
        }
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    fn discard(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs::remove_file(&self.partial);
    }
}

/// Asks the kernel to start writing `from..to` of `file` to disk, without
/// waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`). Only a hint:
/// durability still comes from the fsync before the rename, which then has
/// little left to do.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on an open descriptor; no memory passed.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "sync_file_range failed; the final fsync does it all");
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::media::sha256_hex;

    #[test]
    fn resume_verify_and_publish() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("open");
        let content = b"0123456789abcdef".repeat(1000);
        let sha = sha256_hex(&content);
        let mut first = store.begin(&sha, content.len() as u64).expect("begin");
        first.write(&content[..6000]).expect("write");
        drop(first); // killed mid-transfer
        assert!(!store.blob_path(&sha).exists());
        let mut resumed = store.begin(&sha, content.len() as u64).expect("resume");
        assert_eq!(resumed.offset(), 6000);
        resumed.write(&content[6000..]).expect("write");
        resumed.finish().expect("verified");
        assert_eq!(fs::read(store.blob_path(&sha)).expect("read"), content);
        assert_eq!(store.partial_len(&sha), 0);
        assert_eq!(store.held().expect("held").get(&sha), Some(&16_000));
        assert!(store.verify(&sha).expect("verify"));
    }

    #[test]
    fn a_corrupt_download_is_discarded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("open");
        let content = b"hello world".to_vec();
        let sha = sha256_hex(&content);
        let mut flipped = content.clone();
        flipped[3] ^= 0x20;
        let mut download = store.begin(&sha, 11).expect("begin");
        download.write(&flipped).expect("write");
        assert!(matches!(download.finish(), Err(BlobError::Corrupt { .. })));
        assert!(!store.blob_path(&sha).exists());
        assert_eq!(store.partial_len(&sha), 0, "the bad bytes are not resumed");
        // Too many bytes is corruption too.
        let mut long = store.begin(&sha, 11).expect("begin");
        assert!(long.write(b"hello world!").is_err());
        // A held blob that rots on disk is found and removed.
        let mut good = store.begin(&sha, 11).expect("begin");
        good.write(&content).expect("write");
        good.finish().expect("verified");
        fs::write(store.blob_path(&sha), &flipped).expect("rot");
        assert!(!store.verify(&sha).expect("verify"));
        assert!(store.held().expect("held").is_empty());
    }
}
