//! Test harness. Nothing here asserts behaviour of turnus itself; it starts
//! things, talks to them and waits for them, always with a deadline.

pub mod api;
pub mod app;
pub mod browser;
pub mod cluster;
pub mod load;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod scripts;
pub mod sentinel;
pub mod sse;
pub mod tls;

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Bearer tokens the test nodes accept, one per role.
pub const ADMIN: &str = "test-admin-token";
pub const OPERATOR: &str = "test-operator-token";
pub const KIOSK: &str = "test-kiosk-token";
pub const DISPLAY: &str = "test-display-token";
pub const PEER: &str = "test-peer-token";

/// The `TURNUS__AUTH__*` variables for the tokens above.
pub fn token_env() -> Vec<(String, String)> {
    [
        ("TURNUS__AUTH__ADMIN_TOKENS", ADMIN),
        ("TURNUS__AUTH__OPERATOR_TOKENS", OPERATOR),
        ("TURNUS__AUTH__KIOSK_TOKENS", KIOSK),
        ("TURNUS__AUTH__DISPLAY_TOKENS", DISPLAY),
        ("TURNUS__AUTH__PEER_TOKENS", PEER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An identifier the test knows is valid.
pub fn id(value: &str) -> turnus::domain::Id {
    turnus::domain::Id::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// A loopback port that was free a moment ago. Never 6379, so a test can
/// never talk to (or flush) a developer's own Redis.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral loopback port")
            .port();
        if port != 6379 {
            return port;
        }
    }
}

/// Polls `probe` until it yields `Some`, or panics naming `what` once
/// `within` has passed. The way tests wait for a condition: no fixed sleeps.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
