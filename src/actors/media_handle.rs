//! `MediaHandle`: what this node holds of the media library, shared by the
//! [`MediaDistributor`](super::MediaDistributor) (which changes it) and the
//! HTTP handlers (which serve from it).
//!
//! On a master node it fronts the library directory. On a slave node it
//! knows the group's wanted manifest, the blobs complete on this node, and
//! the last manifest that was complete here, so a file replaced at the
//! master is served in its old version until the new one is verified, and
//! never half-written.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use utoipa::ToSchema;

use crate::blobs::{BlobStore, Library};
use crate::domain::media::{Manifest, ManifestEntry, PlaylistItem};

/// Where this node's media comes from.
pub enum MediaSource {
    /// Master: the library directory.
    Library(Arc<Library>),
    /// Slave: the node's blob store.
    Mirror(Arc<BlobStore>),
}

/// The mirror's state on a slave node.
#[derive(Debug, Clone, Default)]
pub struct MirrorState {
    pub wanted: Arc<Manifest>,
    /// The last manifest whose every blob was complete here.
    pub complete: Option<Arc<Manifest>>,
    /// Blob ids complete and verified here.
    pub held: HashSet<String>,
    /// Why the mirror is not progressing (disk full, no source), if it is not.
    pub problem: Option<String>,
}

/// `upstream.media` of `GET /api/v1/cluster`: this node's mirror progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaProgress {
    /// The wanted manifest's version.
    pub version: String,
    pub files: u64,
    /// Files not yet complete on this node.
    pub missing: u64,
    pub bytes_missing: u64,
    /// Why it is not progressing, when it is not (an addition to API.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A blob as a peer may fetch it.
pub struct PeerBlob {
    pub file: PathBuf,
    pub size: u64,
    /// Set while the blob is still being downloaded here: the file grows,
    /// and it is complete once this path holds it.
    pub growing_into: Option<PathBuf>,
}

struct Shared {
    source: MediaSource,
    mirror: RwLock<MirrorState>,
    /// (branch, player) → the last playlist whose files were all here.
    playing: Mutex<HashMap<(String, String), Vec<PlaylistItem>>>,
}

#[derive(Clone)]
pub struct MediaHandle(Arc<Shared>);

impl MediaHandle {
    /// Opens this node's media: the library on a master, the blob store
    /// under `<data_dir>/media` on a slave.
    pub fn open(settings: &crate::settings::Settings) -> std::io::Result<MediaHandle> {
        let source = match settings.node.role {
            crate::settings::NodeRole::Master => {
                MediaSource::Library(Arc::new(Library::open(&settings.media.library_dir)?))
            }
            crate::settings::NodeRole::Slave => MediaSource::Mirror(Arc::new(BlobStore::open(
                &settings.node.data_dir.join("media"),
            )?)),
        };
        Ok(MediaHandle::new(source))
    }

    pub fn new(source: MediaSource) -> MediaHandle {
        MediaHandle(Arc::new(Shared {
            source,
            mirror: RwLock::new(MirrorState::default()),
            playing: Mutex::new(HashMap::new()),
        }))
    }

    /// The library, on a master node.
    pub fn library(&self) -> Option<&Arc<Library>> {
        match &self.0.source {
            MediaSource::Library(library) => Some(library),
            MediaSource::Mirror(_) => None,
        }
    }

    /// The blob store, on a slave node.
    pub fn blob_store(&self) -> Option<&Arc<BlobStore>> {
        match &self.0.source {
            MediaSource::Library(_) => None,
            MediaSource::Mirror(store) => Some(store),
        }
    }

    pub fn mirror(&self) -> MirrorState {
        self.0
            .mirror
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn update_mirror(&self, change: impl FnOnce(&mut MirrorState)) {
        let mut state = self
            .0
            .mirror
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut state);
    }

    /// The manifest this node works to: the library's, or the group's wanted one.
    pub fn manifest(&self) -> Arc<Manifest> {
        match &self.0.source {
            MediaSource::Library(library) => library.manifest(),
            MediaSource::Mirror(_) => self.mirror().wanted,
        }
    }

    /// Whether the blob is complete on this node.
    pub fn is_present(&self, sha256: &str) -> bool {
        match &self.0.source {
            MediaSource::Library(library) => library.file_of_blob(sha256).is_some(),
            MediaSource::Mirror(_) => self.mirror().held.contains(sha256),
        }
    }

    /// The complete file behind a media path on this node: the wanted
    /// version if it is here, else the last complete one.
    pub fn file_of_path(&self, path: &str) -> Option<(ManifestEntry, PathBuf)> {
        match &self.0.source {
            MediaSource::Library(library) => library.file_of_path(path),
            MediaSource::Mirror(store) => {
                let state = self.mirror();
                let usable = |m: &Manifest| {
                    m.get(path)
                        .filter(|e| state.held.contains(&e.sha256))
                        .cloned()
                };
                let entry =
                    usable(&state.wanted).or_else(|| state.complete.as_deref().and_then(usable))?;
                let file = store.blob_path(&entry.sha256);
                Some((entry, file))
            }
        }
    }

    /// A blob for a peer: complete, or (slave) still growing here.
    pub fn blob_for_peer(&self, sha256: &str) -> Option<PeerBlob> {
        match &self.0.source {
            MediaSource::Library(library) => {
                library.file_of_blob(sha256).map(|(file, size)| PeerBlob {
                    file,
                    size,
                    growing_into: None,
                })
            }
            MediaSource::Mirror(store) => {
                let state = self.mirror();
                let size = *state.wanted.blobs().get(sha256)?;
                let blob = store.blob_path(sha256);
                if state.held.contains(sha256) {
                    return Some(PeerBlob {
                        file: blob,
                        size,
                        growing_into: None,
                    });
                }
                let partial = store.partial_path(sha256);
                partial.exists().then_some(PeerBlob {
                    file: partial,
                    size,
                    growing_into: Some(blob),
                })
            }
        }
    }

    /// This node's progress against the manifest it works to.
    pub fn progress(&self) -> MediaProgress {
        let state = self.mirror();
        let manifest = self.manifest();
        let blobs = manifest.blobs();
        let missing: Vec<u64> = match &self.0.source {
            MediaSource::Library(_) => Vec::new(),
            MediaSource::Mirror(_) => blobs
                .iter()
                .filter(|(sha, _)| !state.held.contains(**sha))
                .map(|(_, size)| *size)
                .collect(),
        };
        let missing_files = manifest
            .files
            .iter()
            .filter(|e| !self.is_present_in(&state, &e.sha256))
            .count() as u64;
        MediaProgress {
            version: manifest.version.clone(),
            files: manifest.files.len() as u64,
            missing: missing_files,
            bytes_missing: missing.iter().sum(),
            problem: state.problem,
        }
    }

    fn is_present_in(&self, state: &MirrorState, sha256: &str) -> bool {
        match &self.0.source {
            MediaSource::Library(_) => true,
            MediaSource::Mirror(_) => state.held.contains(sha256),
        }
    }

    /// The playlist a player shows now. It switches to `configured` only
    /// once every file it uses is complete here; until then it keeps the
    /// last playlist that was complete, as long as that one still is.
    /// With neither complete, `configured` is shown and its missing items
    /// say `present: false`.
    pub fn playlist_to_play(
        &self,
        branch: &str,
        player: &str,
        configured: &[PlaylistItem],
    ) -> Vec<PlaylistItem> {
        let manifest = self.manifest();
        let all_here = |items: &[PlaylistItem]| {
            items.iter().all(|item| {
                manifest
                    .get(&item.media)
                    .is_some_and(|e| self.is_present(&e.sha256))
            })
        };
        let key = (branch.to_owned(), player.to_owned());
        let mut playing = self
            .0
            .playing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all_here(configured) {
            playing.insert(key, configured.to_vec());
            return configured.to_vec();
        }
        match playing.get(&key) {
            Some(previous) if all_here(previous) => previous.clone(),
            _ => configured.to_vec(),
        }
    }
}
