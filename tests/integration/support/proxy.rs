//! `Proxy`: a TCP proxy on a free loopback port in front of one address,
//! for cutting a node off from its Redis (or from a peer) and healing it.
//!
//! - [`cut`](Proxy::cut): existing connections are dropped and new ones are
//!   closed as soon as they are accepted (the client sees a reset or EOF).
//! - [`blackhole`](Proxy::blackhole): existing connections are dropped and
//!   new ones are accepted but never answered (the client sees timeouts),
//!   which is what a real partition looks like.
//! - [`drop_responses`](Proxy::drop_responses): forwards requests, but
//!   drops a share of the connections as the answer comes back (the server
//!   did the work, the client never hears of it), so clients resend.
//! - [`heal`](Proxy::heal): forwards again.
//! - [`flip_byte_once`](Proxy::flip_byte_once): corrupts one byte of what
//!   the target sends back, at a given offset into a connection, once (a
//!   blob damaged on the wire).
//! - [`retarget`](Proxy::retarget): forwards new connections to another
//!   address, like a load balancer that moved a dead node's clients on.
//!
//! Runs on the tokio runtime of the test that starts it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Forward,
    Refuse,
    Blackhole,
    /// Forward, dropping the connection instead of this share of answers.
    Lossy(f64),
}

struct Shared {
    mode: Mode,
    target: SocketAddr,
    /// Forwarding tasks (and held blackholed sockets): aborting one drops
    /// both of its sockets.
    connections: Vec<AbortHandle>,
    /// `(arming, offset)`: the next connection whose target → client bytes
    /// reach `offset` bytes past the arming gets that byte inverted.
    flip_at: Option<(u64, u64)>,
    /// Counts armings, so a connection measures from the latest one.
    armings: u64,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Mutex::new(Shared {
            mode: Mode::Forward,
            target,
            connections: Vec::new(),
            flip_at: None,
            armings: 0,
        }));
        let accept = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Drops every connection and refuses new ones until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.set_mode(Mode::Refuse);
    }

    /// Drops every connection and silently holds new ones until
    /// [`heal`](Self::heal).
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Forwards, but drops `share` (0–1) of the answers coming back, with
    /// the connection they were on.
    pub fn drop_responses(&self, share: f64) {
        self.set_mode(Mode::Lossy(share));
    }

    /// Forwards new connections again (held blackholed ones are dropped).
    pub fn heal(&self) {
        self.set_mode(Mode::Forward);
    }

    /// Inverts one byte of what the target sends: the byte `at` bytes after
    /// this call in the first connection to get that far (once).
    pub fn flip_byte_once(&self, at: u64) {
        let mut shared = self.shared.lock().expect("proxy lock");
        shared.armings += 1;
        shared.flip_at = Some((shared.armings, at));
    }

    /// Sends new connections to `target`; existing ones are dropped.
    #[allow(dead_code)] // for the page tests' load balancer
    pub fn retarget(&self, target: SocketAddr) {
        self.shared.lock().expect("proxy lock").target = target;
        self.set_mode(Mode::Forward);
    }

    fn set_mode(&self, mode: Mode) {
        let mut shared = self.shared.lock().expect("proxy lock");
        shared.mode = mode;
        for connection in shared.connections.drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_mode(Mode::Refuse);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mut state = shared.lock().expect("proxy lock");
        state.connections.retain(|c| !c.is_finished());
        match state.mode {
            Mode::Refuse => drop(client),
            Mode::Blackhole => {
                let held = tokio::spawn(async move {
                    let _client = client;
                    std::future::pending::<()>().await;
                });
                state.connections.push(held.abort_handle());
            }
            Mode::Forward => {
                let task = tokio::spawn(forward(client, state.target, shared.clone()));
                state.connections.push(task.abort_handle());
            }
            Mode::Lossy(share) => {
                let task = tokio::spawn(forward_lossy(client, state.target, share));
                state.connections.push(task.abort_handle());
            }
        }
    }
}

async fn forward(client: TcpStream, target: SocketAddr, shared: Arc<Mutex<Shared>>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return; // dropping the client tells it the target is down
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
    let downstream = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0u8; 64 * 1024];
        // Bytes passed since the latest arming this connection has seen.
        let (mut arming, mut passed) = (0u64, 0u64);
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut state = shared.lock().expect("proxy lock");
                if let Some((armed, at)) = state.flip_at {
                    if armed != arming {
                        (arming, passed) = (armed, 0);
                    }
                    if (passed..passed + read as u64).contains(&at) {
                        buffer[(at - passed) as usize] ^= 0xff;
                        state.flip_at = None;
                    }
                }
            }
            passed += read as u64;
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        _ = upstream => {}
        () = downstream => {}
    }
}

/// Requests go through; each chunk of an answer is, with probability
/// `share`, not delivered: both sockets are closed instead.
async fn forward_lossy(client: TcpStream, target: SocketAddr, share: f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if fastrand::f64() < share {
                return; // the answer is lost; dropping closes both sides
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::Proxy;

    /// An echo server; returns its address.
    async fn echo_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = socket.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        addr
    }

    /// Long enough for any machine to echo a few bytes.
    const ANSWER_WITHIN: Duration = Duration::from_secs(10);
    /// How long a held (blackholed) connection is watched for an answer.
    const SILENCE_FOR: Duration = Duration::from_millis(300);

    /// Writes `message` and reads it back; `None` when the connection fails,
    /// is closed, or stays silent for `within`.
    async fn round_trip(
        stream: &mut TcpStream,
        message: &[u8],
        within: Duration,
    ) -> Option<Vec<u8>> {
        let exchange = async {
            stream.write_all(message).await.ok()?;
            let mut reply = vec![0u8; message.len()];
            stream.read_exact(&mut reply).await.ok()?;
            Some(reply)
        };
        tokio::time::timeout(within, exchange).await.ok().flatten()
    }

    #[tokio::test]
    async fn forwards_cuts_blackholes_and_heals() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut before = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(
            round_trip(&mut before, b"hello", ANSWER_WITHIN)
                .await
                .as_deref(),
            Some(&b"hello"[..])
        );

        proxy.cut();
        // The existing connection is gone...
        assert_eq!(round_trip(&mut before, b"again", ANSWER_WITHIN).await, None);
        // ...and a new one is closed at once: EOF (or reset) on read.
        if let Ok(mut during) = TcpStream::connect(proxy.addr()).await {
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(10), during.read(&mut buf))
                .await
                .expect("a refused connection is closed, not held");
            assert!(
                matches!(read, Ok(0) | Err(_)),
                "read through a cut proxy: {read:?}"
            );
        }

        proxy.heal();
        let mut after = TcpStream::connect(proxy.addr())
            .await
            .expect("connect after heal");
        assert_eq!(
            round_trip(&mut after, b"healed", ANSWER_WITHIN)
                .await
                .as_deref(),
            Some(&b"healed"[..])
        );

        proxy.blackhole();
        assert_eq!(
            round_trip(&mut after, b"x", ANSWER_WITHIN).await,
            None,
            "existing connection dropped"
        );
        let mut held = TcpStream::connect(proxy.addr())
            .await
            .expect("a blackholed proxy accepts");
        assert_eq!(
            round_trip(&mut held, b"void", SILENCE_FOR).await,
            None,
            "nothing comes back"
        );

        proxy.heal();
        let mut last = TcpStream::connect(proxy.addr())
            .await
            .expect("connect after heal");
        assert_eq!(
            round_trip(&mut last, b"back", ANSWER_WITHIN)
                .await
                .as_deref(),
            Some(&b"back"[..])
        );
    }
}
