//! A slave node's content-addressed blob store under `<data_dir>/media`:
//! `blobs/<sha256>` (complete and verified) and `partial/<sha256>` (a
//! download in progress, resumed from its length).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
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

/// Bytes gathered before one write to the partial file.
const WRITE_BUFFER: usize = 1024 * 1024;

pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    partial: PathBuf,
}

/// A download growing `partial/<sha256>`. Dropping it keeps what was
/// written, for a later resume.
pub struct Download {
    /// Buffered: network chunks are small, disk writes should not be.
    file: BufWriter<File>,
    hasher: Sha256,
    written: u64,
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
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher,
            written: hashed,
            size,
            sha256: sha256.to_owned(),
            partial,
            blob: self.blob_path(sha256),
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
        self.written
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends bytes; more than the blob's size is corruption.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        if self.written + chunk.len() as u64 > self.size {
            let reason = format!("more than {} bytes", self.size);
            self.discard();
            return Err(BlobError::Corrupt {
                sha256: self.sha256.clone(),
                reason,
            });
        }
        self.file.write_all(chunk)?;
        self.hasher.update(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    fn discard(&mut self) {
        let _ = self.file.get_ref().set_len(0);
        let _ = fs::remove_file(&self.partial);
    }

    /// Checks size and sha256, fsyncs and renames into `blobs/`. A mismatch
    /// removes the partial file, so the next attempt starts from zero.
    pub fn finish(mut self) -> Result<(), BlobError> {
        let actual = hex(&std::mem::take(&mut self.hasher).finalize());
        if self.written != self.size || actual != self.sha256 {
            let reason = format!("{} of {} bytes, sha256 {actual}", self.written, self.size);
            self.discard();
            return Err(BlobError::Corrupt {
                sha256: self.sha256.clone(),
                reason,
            });
        }
        self.file.flush()?;
        super::publish(self.file.get_ref(), &self.partial, &self.blob)?;
        Ok(())
    }
}

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
