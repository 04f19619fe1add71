//! The page assets (HTML template, scripts, styles, texts, sound clips,
//! vendored libraries), embedded in the binary from `src/web/assets/` with
//! rust-embed, and served under `/assets/` with an `ETag` (the file's
//! SHA-256) and caching headers. Owns nothing else.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::{Embed, EmbeddedFile};

/// Every file under `src/web/assets/`. `debug-embed` makes debug builds
/// embed them too, so tests run what a release ships.
#[derive(Embed)]
#[folder = "src/web/assets/"]
pub struct Assets;

/// A file's bytes.
pub fn file(path: &str) -> Option<EmbeddedFile> {
    Assets::get(path)
}

/// A file as text (the template, the language files).
pub fn text(path: &str) -> Option<String> {
    Assets::get(path).and_then(|f| String::from_utf8(f.data.into_owned()).ok())
}

/// The first 16 hex digits of a file's SHA-256: pages put it in asset URLs
/// (`?v=`), so a changed file gets a new URL and an unchanged one can be
/// cached for good.
pub fn version(path: &str) -> String {
    Assets::get(path)
        .map(|f| hex(&f.metadata.sha256_hash()[..8]))
        .unwrap_or_default()
}

/// Every embedded path.
pub fn paths() -> impl Iterator<Item = std::borrow::Cow<'static, str>> {
    Assets::iter()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /assets/{path}`: 200 with the file, 304 when the client's copy is
/// current, 404 when there is no such file.
pub fn serve(req: &HttpRequest, path: &str) -> Option<HttpResponse> {
    let file = Assets::get(path)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hex(&hash));
    // A URL with the current version never changes: cache it for a year.
    // Any other (no or an old `?v=`) is revalidated with the ETag each time.
    let versioned = req
        .query_string()
        .split('&')
        .any(|pair| pair == format!("v={}", hex(&hash[..8])));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Some(if matches {
        response.finish()
    } else {
        response
            .content_type(content_type(path))
            .body(file.data.into_owned())
    })
}
