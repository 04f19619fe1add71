//! Serving a file with HTTP Range (one range; anything else is served
//! whole), streamed in chunks from disk so memory does not grow with file
//! size. A file still growing (a blob this slave node is downloading) can
//! be followed until it is complete.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures::Stream;
use std::io::{Read, Seek};

use super::error::ApiError;
use crate::blobs::pace::BusyPace;

/// Bytes read from disk per chunk of a response: large enough that the hop
/// to the blocking pool is cheap per byte, small enough that what a cut
/// connection wastes stays small.
const SERVE_CHUNK: usize = 512 * 1024;

/// How long a followed file may stop growing before the response is cut
/// (the client resumes from what it got).
const FOLLOW_STALL: Duration = Duration::from_secs(10);
/// How often a followed file that has no new bytes yet is looked at again.
const FOLLOW_POLL: Duration = Duration::from_millis(5);

/// A byte range `start..start + len` of a file of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
    pub total: u64,
    pub partial: bool,
}

/// Reads the `Range` header: `bytes=a-b`, `bytes=a-` or `bytes=-n`.
/// Several ranges, or a header that is not a byte range, get the whole file
/// (RFC 9110 allows ignoring Range).
pub fn span(req: &HttpRequest, total: u64) -> Result<Span, ApiError> {
    let whole = Span {
        start: 0,
        len: total,
        total,
        partial: false,
    };
    let Some(value) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(whole);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(whole);
    };
    if spec.contains(',') {
        return Ok(whole);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(whole);
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (false, true) => (number(first), total.checked_sub(1)),
        (false, false) => (
            number(first),
            number(last).map(|l| l.min(total.saturating_sub(1))),
        ),
        (true, false) => match number(last) {
            Some(0) | None => (None, None),
            Some(n) => (Some(total.saturating_sub(n)), total.checked_sub(1)),
        },
        (true, true) => (None, None),
    };
    match (start, end) {
        (Some(start), Some(end)) if start <= end && start < total => Ok(Span {
            start,
            len: end - start + 1,
            total,
            partial: true,
        }),
        _ => Err(ApiError::RangeNotSatisfiable(total)),
    }
}

/// A file growing towards `total` bytes, followed while it grows.
pub struct Follow {
    /// Where the file is being written.
    pub growing: PathBuf,
    /// Where it will be once complete.
    pub complete: PathBuf,
}

/// The response for `span` of `file`: 200 or 206, with `Content-Range`,
/// `Accept-Ranges`, the given ETag and Content-Type; `on_chunk` sees every
/// chunk's length as it is sent, and `pace` slows the body down while the
/// node is busy with ticket changes.
pub async fn respond(
    file: PathBuf,
    span: Span,
    etag: &str,
    content_type: &str,
    follow: Option<Follow>,
    pace: BusyPace,
    on_chunk: impl Fn(u64) + 'static,
) -> Result<HttpResponse, ApiError> {
    let opening = file.clone();
    let opened = tokio::task::spawn_blocking(move || {
        // Gone or never complete here: the caller's 404.
        let Ok(mut opened) = std::fs::File::open(&opening) else {
            return Ok(None);
        };
        let inode = opened.metadata()?.ino();
        opened.seek(SeekFrom::Start(span.start))?;
        Ok::<_, std::io::Error>(Some((opened, inode)))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string().into()))?
    .map_err(|e| ApiError::Internal(format!("open {}: {e}", file.display()).into()))?;
    let (opened, inode) = opened
        .ok_or_else(|| ApiError::UnknownMedia("the file is not complete on this node".into()))?;
    let mut builder = if span.partial {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                span.start,
                span.start + span.len - 1,
                span.total
            ),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{etag}\"")))
        .insert_header((header::CONTENT_TYPE, content_type.to_owned()))
        .no_chunking(span.len);
    let body = chunks(opened, span.len, follow.map(|f| (f, inode)), pace, on_chunk);
    Ok(builder.streaming(body))
}

struct Reading<F> {
    /// `None` only while a read runs on the blocking pool.
    file: Option<std::fs::File>,
    left: u64,
    follow: Option<(Follow, u64)>,
    pace: BusyPace,
    on_chunk: F,
}

/// Reads up to `want` bytes at the file's position on the blocking pool,
/// into a buffer that becomes the chunk (no copy).
async fn read_chunk(
    mut file: std::fs::File,
    want: usize,
) -> std::io::Result<(std::fs::File, Bytes)> {
    tokio::task::spawn_blocking(move || {
        // read_to_end fills the spare capacity without zeroing it first;
        // at the file's current end (a growing file) it returns what is there.
        let mut buffer = Vec::with_capacity(want);
        (&mut file).take(want as u64).read_to_end(&mut buffer)?;
        Ok((file, Bytes::from(buffer)))
    })
    .await
    .map_err(std::io::Error::other)?
}

fn chunks(
    file: std::fs::File,
    len: u64,
    follow: Option<(Follow, u64)>,
    pace: BusyPace,
    on_chunk: impl Fn(u64) + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let state = Reading {
        file: Some(file),
        left: len,
        follow,
        pace,
        on_chunk,
    };
    futures::stream::try_unfold(state, |mut s| async move {
        if s.left == 0 {
            return Ok(None);
        }
        let mut stalled_since: Option<Instant> = None;
        loop {
            let want = s.left.min(SERVE_CHUNK as u64) as usize;
            let file = s
                .file
                .take()
                .ok_or_else(|| std::io::Error::other("no file"))?;
            let (file, chunk) = read_chunk(file, want).await?;
            s.file = Some(file);
            if !chunk.is_empty() {
                s.left -= chunk.len() as u64;
                (s.on_chunk)(chunk.len() as u64);
                s.pace.moved(chunk.len() as u64).await;
                return Ok(Some((chunk, s)));
            }
            // End of what is on disk, short of the promised length.
            let Some((follow, inode)) = &s.follow else {
                return Err(std::io::Error::other("file shorter than announced"));
            };
            let same = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| m.ino() == *inode);
            let finished = same(&follow.complete);
            if !finished && !same(&follow.growing) {
                return Err(std::io::Error::other("the growing file was discarded"));
            }
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if !finished && since.elapsed() > FOLLOW_STALL {
                return Err(std::io::Error::other("the growing file stalled"));
            }
            if finished && since.elapsed() > FOLLOW_POLL * 20 {
                return Err(std::io::Error::other(
                    "completed file shorter than announced",
                ));
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn range(value: &str, total: u64) -> Result<Span, ApiError> {
        span(
            &TestRequest::default()
                .insert_header((header::RANGE, value))
                .to_http_request(),
            total,
        )
    }

    #[test]
    fn ranges() {
        let s = |start, len| Span {
            start,
            len,
            total: 100,
            partial: true,
        };
        assert_eq!(range("bytes=0-9", 100).ok(), Some(s(0, 10)));
        assert_eq!(range("bytes=90-", 100).ok(), Some(s(90, 10)));
        assert_eq!(range("bytes=-5", 100).ok(), Some(s(95, 5)));
        assert_eq!(range("bytes=50-500", 100).ok(), Some(s(50, 50)));
        assert_eq!(
            range("bytes=0-1,5-6", 100).ok().map(|r| r.partial),
            Some(false)
        );
        assert_eq!(range("items=0-1", 100).ok().map(|r| r.partial), Some(false));
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=x-1",
            "bytes=-",
        ] {
            assert!(
                matches!(range(bad, 100), Err(ApiError::RangeNotSatisfiable(100))),
                "{bad}"
            );
        }
        assert!(range("bytes=0-", 0).is_err(), "nothing to range over");
    }
}
