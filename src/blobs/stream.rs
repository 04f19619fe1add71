//! A [`Download`] fed from async code, on two threads of the blocking pool:
//! one writes to the partial file, the other computes sha256, so receiving
//! from the network, writing and hashing overlap instead of taking turns on
//! the caller's thread (sha256 of 200 MB alone is about 0.1 s with SHA-NI).
//!
//! Network chunks are small and uneven; they are gathered into blocks of
//! [`BLOCK`] bytes (one copy, which the file write would otherwise do in a
//! buffer), so each block is one write, one hash update and one wake-up per
//! thread. At most [`QUEUED`] blocks wait per thread: memory stays bounded
//! whatever the file's size. A follower reading the growing partial file
//! sees it grow block by block.

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::store::{BlobError, Download, PartialFile};

/// Bytes gathered before they are handed to the writer and the hasher.
pub const BLOCK: usize = 1024 * 1024;
/// Blocks waiting per thread, at most.
const QUEUED: usize = 2;

/// A download being streamed to disk. [`StreamingDownload::stop`] waits for
/// both threads and gives the [`Download`] back (to finish, or to drop and
/// resume later); dropping it without `stop` lets the threads finish on
/// their own.
pub struct StreamingDownload {
    gathering: BytesMut,
    to_writer: mpsc::Sender<Bytes>,
    to_hasher: mpsc::Sender<Bytes>,
    writer: JoinHandle<Result<PartialFile, BlobError>>,
    hasher: JoinHandle<Sha256>,
    /// Bytes accepted so far (written, queued or gathering).
    offset: u64,
    size: u64,
}

impl StreamingDownload {
    pub fn start(download: Download) -> StreamingDownload {
        let (offset, size) = (download.offset(), download.size());
        let (mut file, mut hash) = download.split();
        let (to_writer, mut writer_blocks) = mpsc::channel::<Bytes>(QUEUED);
        let (to_hasher, mut hasher_blocks) = mpsc::channel::<Bytes>(QUEUED);
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(block) = writer_blocks.blocking_recv() {
                file.append(&block)?;
            }
            Ok(file)
        });
        let hasher = tokio::task::spawn_blocking(move || {
            while let Some(block) = hasher_blocks.blocking_recv() {
                hash.update(&block);
            }
            hash
        });
        StreamingDownload {
            gathering: BytesMut::with_capacity(BLOCK),
            to_writer,
            to_hasher,
            writer,
            hasher,
            offset,
            size,
        }
    }

    /// Bytes accepted so far: where the next Range request starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Takes the next bytes of the blob. An error means a thread has
    /// stopped (an I/O error, or more bytes than the blob's size, which
    /// throws the partial file away): [`stop`](Self::stop) says which.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.offset += chunk.len() as u64;
        self.gathering.extend_from_slice(chunk);
        if self.gathering.len() >= BLOCK {
            self.hand_on().await?;
        }
        Ok(())
    }

    /// Sends what is gathered to both threads; a thread that has stopped
    /// (the writer on an I/O error) shows up at [`stop`](Self::stop).
    async fn hand_on(&mut self) -> Result<(), BlobError> {
        if self.gathering.is_empty() {
            return Ok(());
        }
        let block = self.gathering.split().freeze();
        self.gathering.reserve(BLOCK);
        let sent_to_writer = self.to_writer.send(block.clone()).await.is_ok();
        let sent_to_hasher = self.to_hasher.send(block).await.is_ok();
        if sent_to_writer && sent_to_hasher {
            Ok(())
        } else {
            // The writer failed: its error comes out of stop().
            Err(BlobError::Io(std::io::Error::other(
                "the blob writer stopped",
            )))
        }
    }

    /// Writes what is gathered, waits for both threads and returns the
    /// download (its file holding every byte accepted).
    pub async fn stop(mut self) -> Result<Download, BlobError> {
        let handed = self.hand_on().await;
        let download = self.stop_inner().await?;
        handed.map(|()| download)
    }

    async fn stop_inner(self) -> Result<Download, BlobError> {
        let StreamingDownload {
            to_writer,
            to_hasher,
            writer,
            hasher,
            ..
        } = self;
        drop((to_writer, to_hasher));
        let joined = |e: tokio::task::JoinError| BlobError::Io(std::io::Error::other(e));
        let file = writer.await.map_err(joined)??;
        let hash = hasher.await.map_err(joined)?;
        Ok(Download::join(file, hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BlobStore;
    use crate::domain::media::sha256_hex;

    #[tokio::test]
    async fn blocks_are_written_and_hashed_on_other_threads_and_resumed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("open");
        let content: Vec<u8> = (0..3 * BLOCK + 12_345).map(|i| (i % 241) as u8).collect();
        let sha = sha256_hex(&content);
        let size = content.len() as u64;
        let mut streaming = StreamingDownload::start(store.begin(&sha, size).expect("begin"));
        for piece in content[..2 * BLOCK + 77].chunks(16_000) {
            streaming.write(piece).await.expect("write");
        }
        // A broken transfer: what was accepted is on disk for the resume.
        drop(streaming.stop().await.expect("stop"));
        assert_eq!(store.partial_len(&sha), 2 * BLOCK as u64 + 77);
        let resumed = store.begin(&sha, size).expect("resume");
        let mut streaming = StreamingDownload::start(resumed);
        assert_eq!(streaming.offset(), 2 * BLOCK as u64 + 77);
        for piece in content[2 * BLOCK + 77..].chunks(100_000) {
            streaming.write(piece).await.expect("write");
        }
        streaming
            .stop()
            .await
            .expect("stop")
            .finish()
            .expect("verified");
        assert_eq!(std::fs::read(store.blob_path(&sha)).expect("read"), content);
    }

    #[tokio::test]
    async fn too_many_bytes_or_a_wrong_hash_throw_the_partial_away() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(dir.path()).expect("open");
        let content = vec![9u8; BLOCK + 10];
        let sha = sha256_hex(&content);
        let mut streaming = StreamingDownload::start(store.begin(&sha, 100).expect("begin"));
        let _ = streaming.write(&content).await;
        assert!(matches!(
            streaming.stop().await,
            Err(BlobError::Corrupt { .. })
        ));
        assert_eq!(store.partial_len(&sha), 0);
        let mut flipped = content.clone();
        flipped[BLOCK + 3] ^= 1;
        let size = content.len() as u64;
        let mut streaming = StreamingDownload::start(store.begin(&sha, size).expect("begin"));
        streaming.write(&flipped).await.expect("write");
        let finished = streaming.stop().await.expect("stop").finish();
        assert!(matches!(finished, Err(BlobError::Corrupt { .. })));
        assert_eq!(store.partial_len(&sha), 0);
        assert!(!store.blob_path(&sha).exists());
    }
}
