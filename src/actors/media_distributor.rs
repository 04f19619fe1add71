//! `MediaDistributor`: keeps this node's media where the manifest says
//! (DESIGN.md §2–§3). Runs on its own Arbiter, so hashing and file writes
//! never share a thread with the ticket queues.
//!
//! - Master: scans the library directory every `media.scan_interval_ms`
//!   (uploads are published at once by the HTTP layer).
//! - Slave leader: fetches the master's manifest, swaps it into the group's
//!   Redis under its epoch (fenced), and downloads missing blobs from the
//!   master, first asking its own group for complete copies.
//! - Every slave node: reads the group's wanted manifest and downloads what
//!   it lacks from a node of its own group (the leader's download is
//!   followed while it grows, so the group needs one WAN copy and the
//!   follower is never far behind); see [`super::media_fetch`].
//!
//! It works from "wanted versus present on disk", not from change events, so
//! a node that was down, or lost a file, catches up by itself. Blobs no
//! longer wanted are deleted only once everything wanted is complete here.
//! Held blobs are hashed again every `media.verify_interval_s`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use super::leader::{LeadershipGained, LeadershipLost};
use super::media_fetch::{FetchError, Fetcher};
use super::media_handle::MediaHandle;
use super::node::NodeContext;
use crate::domain::media::Manifest;
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::settings::MediaSettings;
use crate::store::{Store, StoreError};
use crate::upstream::UpstreamClient;

/// How often an idle slave node reads the whole wanted manifest (and the
/// leader the master's).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Meanwhile it looks at the wanted manifest's version this often (one
/// short GET), so a follower starts on a new file while the leader's copy
/// is still growing, not up to a second later.
const VERSION_POLL: Duration = Duration::from_millis(50);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// With the disk full, free space is looked at again this often (no
/// download is attempted meanwhile).
const DISK_FULL_RECHECK: Duration = Duration::from_secs(30);

/// What a slave node's distributor needs.
pub struct MirrorContext {
    pub store: Store,
    pub group: Id,
    pub node_id: String,
    pub handle: MediaHandle,
    pub settings: MediaSettings,
    pub upstream: UpstreamClient,
    /// The peer token presented to the other nodes of the group.
    pub peer_token: String,
    pub metrics: Arc<Metrics>,
}

enum Role {
    Master {
        handle: MediaHandle,
        scan_interval: Duration,
    },
    Slave(Box<MirrorContext>),
}

pub struct MediaDistributor {
    role: Option<Role>,
    epoch: watch::Sender<Option<u64>>,
}

impl MediaDistributor {
    /// The distributor of this node's role, with its own Redis connection
    /// (it runs on its own Arbiter).
    pub fn new(node: &NodeContext) -> MediaDistributor {
        let settings = &node.settings;
        if node.is_master() {
            return MediaDistributor::master(node.media.clone(), &settings.media);
        }
        // Its own connection, like the leader's: one that follows the
        // sentinels and shares the node's memory of the store (a plain
        // connection to the address at start missed every Redis failover).
        let store = node
            .store
            .own_connection()
            .expect("the URL was accepted by the main connection");
        let upstream = &settings.upstream;
        MediaDistributor::slave(MirrorContext {
            store,
            group: node.group.clone(),
            node_id: node.node_id.clone(),
            handle: node.media.clone(),
            settings: settings.media.clone(),
            upstream: UpstreamClient::new(upstream.master_urls.clone(), upstream.token.clone()),
            // The group's nodes share a peer token (ARCHITECTURE.md).
            peer_token: settings
                .auth
                .peer_tokens
                .first()
                .unwrap_or(&upstream.token)
                .expose()
                .to_owned(),
            metrics: node.metrics.clone(),
        })
    }

    pub fn master(handle: MediaHandle, settings: &MediaSettings) -> MediaDistributor {
        MediaDistributor {
            role: Some(Role::Master {
                handle,
                scan_interval: Duration::from_millis(settings.scan_interval_ms),
            }),
            epoch: watch::channel(None).0,
        }
    }

    pub fn slave(context: MirrorContext) -> MediaDistributor {
        MediaDistributor {
            role: Some(Role::Slave(Box::new(context))),
            epoch: watch::channel(None).0,
        }
    }
}

impl Actor for MediaDistributor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        yield_cpu_to_tickets();
        match self.role.take() {
            Some(Role::Master {
                handle,
                scan_interval,
            }) => {
                ctx.spawn(scan_library(handle, scan_interval).into_actor(self));
            }
            Some(Role::Slave(context)) => {
                let epoch = self.epoch.subscribe();
                ctx.spawn(Mirror::new(*context, epoch).run().into_actor(self));
            }
            None => {}
        }
    }
}

impl Handler<LeadershipGained> for MediaDistributor {
    type Result = ();
    fn handle(&mut self, msg: LeadershipGained, _: &mut Context<Self>) {
        self.epoch.send_replace(Some(msg.epoch));
    }
}

impl Handler<LeadershipLost> for MediaDistributor {
    type Result = ();
    fn handle(&mut self, _: LeadershipLost, _: &mut Context<Self>) {
        self.epoch.send_replace(None);
    }
}

/// Lowers this thread's scheduling priority (nice 10): hashing and writing
/// media must not take CPU from ticket operations on a small machine. Linux
/// applies `setpriority` to the calling thread when given its thread id.
fn yield_cpu_to_tickets() {
    // SAFETY: plain system calls without pointers; a failure only leaves
    // the priority as it was.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the media thread's priority");
    }
}

/// The master's library scan, forever.
async fn scan_library(handle: MediaHandle, interval: Duration) {
    let Some(library) = handle.library().cloned() else {
        return;
    };
    loop {
        let scanning = library.clone();
        match tokio::task::spawn_blocking(move || scanning.scan()).await {
            Ok(Ok(true)) => tracing::info!(
                version = %library.manifest().version,
                files = library.manifest().files.len(),
                "media library changed"
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot scan the media library"),
            Err(e) => tracing::error!(error = %e, "media library scan panicked"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// A slave node's mirror loop.
struct Mirror {
    context: MirrorContext,
    fetcher: Fetcher,
    epoch: watch::Receiver<Option<u64>>,
    backoff: Duration,
    last_verify: Instant,
}

impl Mirror {
    fn new(context: MirrorContext, epoch: watch::Receiver<Option<u64>>) -> Mirror {
        let fetcher = Fetcher::new(&context, epoch.clone());
        Mirror {
            context,
            fetcher,
            epoch,
            backoff: MIN_BACKOFF,
            last_verify: Instant::now(),
        }
    }

    async fn run(mut self) {
        let Some(blobs) = self.context.handle.blob_store().cloned() else {
            return;
        };
        loop {
            let epoch = *self.epoch.borrow();
            if let Some(epoch) = epoch {
                self.follow_master(epoch).await;
            }
            let wanted = match self.context.store.media_manifest(&self.context.group).await {
                Ok(Some(m)) => Some(Arc::new(m)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the group's media manifest");
                    None
                }
            };
            let held = match blobs.held() {
                Ok(held) => held,
                Err(e) => {
                    tracing::error!(error = %e, dir = %blobs.root().display(), "cannot list media blobs");
                    self.pause(MAX_BACKOFF).await;
                    continue;
                }
            };
            self.context.handle.update_mirror(|state| {
                if let Some(w) = &wanted {
                    state.wanted = w.clone();
                }
                state.held = held.keys().cloned().collect();
            });
            let wanted = self.context.handle.mirror().wanted;
            let missing: BTreeMap<String, u64> = wanted
                .blobs()
                .into_iter()
                .filter(|(sha, _)| !held.contains_key(*sha))
                .map(|(sha, size)| (sha.to_owned(), size))
                .collect();
            self.publish_progress();
            let Some((sha256, size)) = missing.into_iter().next() else {
                self.settle(&wanted, &held).await;
                self.idle(&wanted.version).await;
                continue;
            };
            match self.fetcher.fetch(&sha256, size).await {
                Ok(()) => {
                    self.backoff = MIN_BACKOFF;
                    self.context.handle.update_mirror(|state| {
                        state.held.insert(sha256.clone());
                        state.problem = None;
                    });
                    self.publish_progress();
                }
                Err(FetchError::DiskFull(problem)) => {
                    tracing::error!(%problem, "media mirror stopped: disk full");
                    self.set_problem(Some(problem));
                    self.pause(DISK_FULL_RECHECK).await;
                }
                Err(FetchError::Corrupt(reason)) => {
                    self.context.metrics.media.blobs_rejected.inc();
                    tracing::warn!(%reason, "media blob rejected; fetching it again");
                    self.pause(MIN_BACKOFF).await;
                }
                Err(FetchError::Failed(problem)) => {
                    tracing::info!(%problem, retry_in = ?self.backoff, "media blob download failed");
                    self.set_problem(Some(problem));
                    let wait = self.backoff.mul_f64(0.8 + fastrand::f64() * 0.4);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.pause(wait).await;
                }
            }
        }
    }

    /// Leader: brings the group's wanted manifest up to the master's.
    async fn follow_master(&mut self, epoch: u64) {
        let manifest = match self.context.upstream.fetch_manifest().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "cannot fetch the master's media manifest");
                return;
            }
        };
        let too_large = manifest
            .files
            .iter()
            .find(|e| e.size > self.context.settings.max_file_bytes);
        if let Some(entry) = too_large {
            tracing::error!(path = %entry.path, size = entry.size, "master's manifest has a file above media.max_file_bytes; not mirrored");
            self.set_problem(Some(format!(
                "{} is larger than media.max_file_bytes",
                entry.path
            )));
            return;
        }
        match self
            .context
            .store
            .swap_media_manifest(&self.context.group, epoch, &manifest)
            .await
        {
            Ok(true) => {
                tracing::info!(version = %manifest.version, files = manifest.files.len(), "new media manifest wanted")
            }
            Ok(false) => {}
            Err(StoreError::Fenced { .. }) => {
                self.context.metrics.fenced_writes_rejected.inc();
                tracing::warn!("media manifest swap refused: a newer leader exists");
            }
            Err(e) => tracing::warn!(error = %e, "cannot store the media manifest"),
        }
    }

    /// Everything wanted is here: remember it as complete, delete what no
    /// manifest references any more, and re-verify when due.
    async fn settle(&mut self, wanted: &Arc<Manifest>, held: &BTreeMap<String, u64>) {
        self.context.handle.update_mirror(|state| {
            state.complete = Some(wanted.clone());
            state.problem = None;
        });
        let Some(blobs) = self.context.handle.blob_store().cloned() else {
            return;
        };
        let referenced = wanted.blobs();
        let partials = blobs.partials().unwrap_or_default();
        let unreferenced: Vec<String> = held
            .keys()
            .cloned()
            .chain(partials)
            .filter(|sha| !referenced.contains_key(sha.as_str()))
            .collect();
        for sha in unreferenced {
            self.context.handle.update_mirror(|state| {
                state.held.remove(&sha);
            });
            match blobs.remove(&sha) {
                Ok(()) => {
                    tracing::info!(blob = %sha, "deleted a media blob no manifest references")
                }
                Err(e) => tracing::warn!(blob = %sha, error = %e, "cannot delete a media blob"),
            }
        }
        let every = self.context.settings.verify_interval_s;
        if every > 0 && self.last_verify.elapsed() >= Duration::from_secs(every) {
            self.last_verify = Instant::now();
            let ids: Vec<String> = held.keys().cloned().collect();
            let checking = blobs.clone();
            let bad = tokio::task::spawn_blocking(move || {
                ids.into_iter()
                    .filter(|sha| !checking.verify(sha).unwrap_or(true))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for sha in bad {
                self.context.metrics.media.blobs_rejected.inc();
                tracing::error!(blob = %sha, "a held media blob no longer matches its sha256; removed, fetching it again");
            }
        }
    }

    fn set_problem(&self, problem: Option<String>) {
        self.context
            .handle
            .update_mirror(|state| state.problem = problem);
        self.publish_progress();
    }

    fn publish_progress(&self) {
        let progress = self.context.handle.progress();
        let media = &self.context.metrics.media;
        media.files_missing.set(progress.missing as i64);
        media.bytes_missing.set(progress.bytes_missing as i64);
    }

    /// Waits [`IDLE_POLL`], or less when leadership changes or (on a
    /// follower) the group's wanted manifest is no longer `version`.
    async fn idle(&mut self, version: &str) {
        let until = Instant::now() + IDLE_POLL;
        while Instant::now() < until {
            if self.epoch.borrow().is_some() {
                // The leader's next look is at the master's manifest.
                self.pause(IDLE_POLL).await;
                return;
            }
            if self.pause(VERSION_POLL).await {
                return;
            }
            let wanted = self.context.store.media_version(&self.context.group).await;
            if matches!(wanted, Ok(Some(v)) if v != version) {
                return;
            }
        }
    }

    /// Waits `duration`, or less when leadership changes (then `true`).
    async fn pause(&mut self, duration: Duration) -> bool {
        tokio::time::timeout(duration, self.epoch.changed())
            .await
            .is_ok()
    }
}
