//! Downloading one media blob into this node's blob store: from the group's
//! own nodes first (a follower only ever asks them; the leader asks them for
//! complete copies), from the master group otherwise (leader only), resumed
//! with HTTP Range from what the partial file holds, verified (size and
//! sha256) before it is renamed into place.
//!
//! From the master it asks for [`WAN_PIECE`]-sized ranges one after the
//! other: what a broken transfer wastes (bytes the master handed to the
//! network that never reached the disk) is bounded by one piece, whatever
//! the socket buffers hold, and leadership is checked between pieces. Only
//! these WAN downloads are rate-limited (`media.bandwidth_limit_bytes_per_s`);
//! copies within the group are not. Every download slows to
//! `media.busy_bandwidth_bytes_per_s` while this node is busy with ticket
//! changes ([`BusyPace`]).

use std::time::Duration;

use crate::actors::media_distributor::MirrorContext;
use crate::actors::membership::EXPIRY;
use crate::blobs::pace::{BusyPace, Pace};
use crate::blobs::store::BlobError;
use crate::blobs::stream::StreamingDownload;
use crate::blobs::BlobStore;
use crate::upstream::{open_blob, BlobRange, UpstreamClient, UpstreamError};

/// A body that sends nothing for this long is given up (and resumed).
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes asked of the master per request.
pub const WAN_PIECE: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
pub enum FetchError {
    /// Not enough free space: the download was not attempted.
    DiskFull(String),
    /// The bytes did not match the manifest; the partial file is gone.
    Corrupt(String),
    /// No source answered, or the transfer broke; the partial file is kept.
    Failed(String),
}

impl From<BlobError> for FetchError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Corrupt { .. } => FetchError::Corrupt(e.to_string()),
            BlobError::Io(io) => FetchError::Failed(format!("blob store: {io}")),
        }
    }
}

/// Where the bytes come from.
enum Source {
    /// A node of this node's own group.
    Peer(String),
    /// The master group.
    Master,
}

pub struct Fetcher {
    store: crate::store::Store,
    group: crate::domain::Id,
    node_id: String,
    upstream: UpstreamClient,
    client: reqwest::Client,
    token: String,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    min_free_bytes: u64,
    bytes_per_s: u64,
    busy: BusyPace,
    blobs: Option<std::sync::Arc<BlobStore>>,
    /// The epoch while this node leads: only then may it ask the master.
    leading: tokio::sync::watch::Receiver<Option<u64>>,
}

impl Fetcher {
    pub fn new(
        context: &MirrorContext,
        leading: tokio::sync::watch::Receiver<Option<u64>>,
    ) -> Fetcher {
        Fetcher {
            store: context.store.clone(),
            group: context.group.clone(),
            node_id: context.node_id.clone(),
            upstream: context.upstream.clone(),
            client: context.upstream.client().clone(),
            token: context.peer_token.clone(),
            metrics: context.metrics.clone(),
            min_free_bytes: context.settings.min_free_bytes,
            bytes_per_s: context.settings.bandwidth_limit_bytes_per_s,
            busy: BusyPace::of_node(&context.metrics, &context.settings),
            blobs: context.handle.blob_store().cloned(),
            leading,
        }
    }

    /// Downloads blob `sha256` of `size` bytes.
    pub async fn fetch(&mut self, sha256: &str, size: u64) -> Result<(), FetchError> {
        let Some(blobs) = self.blobs.clone() else {
            return Err(FetchError::Failed("no blob store".into()));
        };
        let have = blobs.partial_len(sha256).min(size);
        let free = crate::blobs::free_bytes(blobs.root())
            .map_err(|e| FetchError::Failed(format!("free space: {e}")))?;
        let needed = size - have + self.min_free_bytes;
        if free < needed {
            return Err(FetchError::DiskFull(format!(
                "{} free, {needed} needed for blob {sha256} (media.min_free_bytes included)",
                free
            )));
        }
        let (sha, store) = (sha256.to_owned(), blobs.clone());
        let download = tokio::task::spawn_blocking(move || store.begin(&sha, size))
            .await
            .map_err(|e| FetchError::Failed(e.to_string()))?
            .map_err(|e| FetchError::Failed(format!("blob store: {e}")))?;
        let mut streaming = StreamingDownload::start(download);
        let received = self.receive_all(sha256, size, &mut streaming).await;
        // Every byte accepted is on disk before anything else happens: a
        // resume starts from the partial file's length.
        let download = streaming.stop().await?;
        received?;
        tokio::task::spawn_blocking(move || download.finish())
            .await
            .map_err(|e| FetchError::Failed(e.to_string()))??;
        tracing::info!(blob = %sha256, size, "media blob verified and in place");
        Ok(())
    }

    /// Receives the blob from wherever it can, until all of it is accepted.
    async fn receive_all(
        &mut self,
        sha256: &str,
        size: u64,
        streaming: &mut StreamingDownload,
    ) -> Result<(), FetchError> {
        let mut announced = false;
        let mut from_master = false;
        let mut pace = Pace::new(self.bytes_per_s);
        while streaming.offset() < size {
            let offset = streaming.offset();
            let leader_epoch = *self.leading.borrow();
            // Once the master serves this blob, the next pieces come from it
            // too (the group had no complete copy a moment ago).
            let (response, source) = if from_master && leader_epoch.is_some() {
                (
                    self.open_master(sha256, offset, size).await?,
                    Source::Master,
                )
            } else {
                self.open(sha256, offset, size, leader_epoch).await?
            };
            from_master = matches!(source, Source::Master);
            if !announced {
                let from = match &source {
                    Source::Peer(url) => url.as_str(),
                    Source::Master => "master",
                };
                tracing::info!(blob = %sha256, size, offset, %from, "downloading media blob");
                announced = true;
            }
            // Only WAN downloads are limited.
            let pace = from_master.then_some(&mut pace);
            self.receive(response, streaming, pace).await?;
            if streaming.offset() == offset {
                return Err(FetchError::Failed("the source sent nothing".into()));
            }
        }
        Ok(())
    }

    /// Opens the blob of `size` bytes at `offset`: group members first
    /// (complete copies only when this node leads), then one piece from the
    /// master (leader only).
    async fn open(
        &mut self,
        sha256: &str,
        offset: u64,
        size: u64,
        leader_epoch: Option<u64>,
    ) -> Result<(reqwest::Response, Source), FetchError> {
        let mut failures = Vec::new();
        for base in self.peer_urls().await {
            // A follower follows a growing copy; the leader takes only a
            // complete one (a growing copy's source would be itself).
            let range = BlobRange {
                offset,
                last: None,
                complete_only: leader_epoch.is_some(),
            };
            match open_blob(&self.client, &base, &self.token, sha256, range).await {
                Ok(response) => return Ok((response, Source::Peer(base))),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if leader_epoch.is_some() {
            match self.open_master(sha256, offset, size).await {
                Ok(response) => return Ok((response, Source::Master)),
                Err(FetchError::Failed(e)) => failures.push(e),
                Err(other) => return Err(other),
            }
        }
        Err(FetchError::Failed(format!(
            "no source for blob {sha256}: {}",
            if failures.is_empty() {
                "no other node in the group".to_owned()
            } else {
                failures.join("; ")
            }
        )))
    }

    /// The next piece of the blob from the master group.
    async fn open_master(
        &mut self,
        sha256: &str,
        offset: u64,
        size: u64,
    ) -> Result<reqwest::Response, FetchError> {
        let last = (offset + WAN_PIECE).min(size) - 1;
        self.upstream
            .open_blob(sha256, offset, last)
            .await
            .map_err(|e| match e {
                UpstreamError::Refused { status, body } => {
                    FetchError::Failed(format!("master refused: {status} {body}"))
                }
                other => FetchError::Failed(other.to_string()),
            })
    }

    /// The other members of the group, the leader first.
    async fn peer_urls(&self) -> Vec<String> {
        let Ok(view) = self
            .store
            .cluster_state(&self.group, EXPIRY.as_millis() as u64)
            .await
        else {
            return Vec::new();
        };
        let leader = view.leader.map(|l| l.node);
        let mut members: Vec<_> = view
            .members
            .into_iter()
            .filter(|m| m.id != self.node_id && !m.addr.is_empty())
            .collect();
        members.sort_by_key(|m| Some(&m.id) != leader.as_ref());
        members
            .into_iter()
            .map(|m| m.addr.trim_end_matches('/').to_owned())
            .collect()
    }

    /// Streams the body into the download; from the master, at the pace
    /// of the bandwidth limit; while the node is busy, at the busy pace.
    async fn receive(
        &self,
        mut response: reqwest::Response,
        streaming: &mut StreamingDownload,
        mut pace: Option<&mut Pace>,
    ) -> Result<(), FetchError> {
        loop {
            let chunk = match tokio::time::timeout(CHUNK_TIMEOUT, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) => return Err(FetchError::Failed(format!("transfer broke: {e}"))),
                Err(_) => return Err(FetchError::Failed("transfer stalled".into())),
            };
            // A thread that stopped says why in stop(), which the caller
            // calls next.
            streaming
                .write(&chunk)
                .await
                .map_err(|e| FetchError::Failed(e.to_string()))?;
            self.metrics
                .media
                .blob_bytes_received
                .inc_by(chunk.len() as u64);
            if let Some(pace) = pace.as_deref_mut() {
                pace.received(chunk.len() as u64).await;
            }
            self.busy.moved(chunk.len() as u64).await;
        }
    }
}
