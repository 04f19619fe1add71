//! File I/O of the media library and its mirrors; nothing else touches
//! media files.
//!
//! - [`library`]: the master's library directory: scanning (a file copied in
//!   by hand is published only once its size and mtime are the same in two
//!   scans in a row, and names starting with `.` are never published), and
//!   uploads streamed to a dot-named temporary file, fsynced and renamed
//!   into place.
//! - [`store`]: a slave node's content-addressed blob store: `blobs/<sha256>`
//!   holds only complete, verified blobs; downloads grow in
//!   `partial/<sha256>` and are renamed into `blobs/` after size and sha256
//!   are checked and the file is fsynced. A reader of `blobs/` therefore
//!   never sees a partial file.
//! - [`stream`]: a download fed from async code, written and hashed on two
//!   other threads.
//! - [`pace`]: how fast media bytes move (the WAN limit, and the pace a node
//!   busy with ticket changes allows).
//!
//! This module knows no HTTP and no Redis; it must not decide *what* to
//! fetch or publish (that is the `MediaDistributor`'s job).

pub mod library;
pub mod pace;
pub mod store;
pub mod stream;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use library::Library;
pub use store::BlobStore;

/// Read and hash buffer size.
pub const CHUNK: usize = 256 * 1024;

/// Free bytes for an unprivileged user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is a
    // plain-data struct that statvfs fills in; both outlive the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Feeds the first `len` bytes of `file` (from its current position) into
/// `hasher`; fewer when the file is shorter.
pub fn hash_into(file: &mut File, hasher: &mut Sha256, len: u64) -> io::Result<u64> {
    let mut buffer = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(CHUNK as u64) as usize;
        let read = file.read(&mut buffer[..want])?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        done += read as u64;
    }
    Ok(done)
}

/// sha256 (hex) and size of a whole file.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let size = hash_into(&mut file, &mut hasher, u64::MAX)?;
    Ok((crate::domain::media::hex(&hasher.finalize()), size))
}

/// Makes a rename or an unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to` after fsyncing `file` (the open `from`), then
/// fsyncs the target directory: after a crash `to` is either absent, the
/// old file, or the complete new one.
pub fn publish(file: &File, from: &Path, to: &Path) -> io::Result<()> {
    file.sync_all()?;
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
