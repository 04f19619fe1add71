//! `RedisServer`: a private `redis-server` for one test, on a free loopback
//! port (never 6379), without persistence, with its log in a temp dir.
//! The process is killed when the value is dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;

const BINARY: &str = "redis-server";
const READY_WITHIN: Duration = Duration::from_secs(20);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// More `redis-server` arguments (a replica's `--replicaof`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Vec::new())
    }

    /// Starts a replica of the server on `master_port` and waits until it
    /// answers PING (it may still be syncing).
    pub fn start_replica_of(master_port: u16) -> RedisServer {
        RedisServer::start_with(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master_port.to_string(),
        ])
    }

    /// Starts a server with more `redis-server` arguments (a TLS port, say)
    /// and waits until its plain port answers PING.
    pub fn start_with(extra: Vec<String>) -> RedisServer {
        let mut last_log = String::new();
        // A port found free can be taken before redis binds it; try again.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("turnus-test-redis-")
                .tempdir()
                .expect("create a temp dir for redis");
            let port = free_port();
            let mut server = RedisServer {
                child: Some(spawn(port, &dir, &as_strs(&extra))),
                port,
                dir,
                extra: extra.clone(),
            };
            if server.wait_ready_blocking() {
                return server;
            }
            last_log = server.log();
            server.kill();
        }
        panic!("redis-server did not start in five attempts; last log:\n{last_log}");
    }

    /// `redis://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Stops the server (SIGTERM, then SIGKILL after a deadline) and waits
    /// until it has exited. Async so that an in-process node on the same
    /// thread keeps running meanwhile.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop))
    /// and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs a stopped server");
        self.child = Some(spawn(self.port, &self.dir, &as_strs(&self.extra)));
        let deadline = Instant::now() + READY_WITHIN;
        while !ping(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server exited with {status} on restart; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within {READY_WITHIN:?} after restart; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, at once (a crash); [`restart`](Self::restart) brings it
    /// back on the same port with the same arguments.
    pub fn kill_now(&mut self) {
        self.kill();
    }

    /// SIGSTOP: the server holds its connections but answers nothing.
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
        }
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
        }
    }

    /// Writes the data set to `dump.rdb` now (the server otherwise keeps
    /// nothing on disk), so a restart loads it.
    pub async fn save(&self) {
        let client = redis::Client::open(self.url()).expect("redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis");
        let () = redis::cmd("SAVE")
            .query_async(&mut conn)
            .await
            .expect("SAVE");
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop))
    /// with the loading of every key of its `dump.rdb` delayed by
    /// `key_load_delay_us` (Redis's own `key-load-delay` test setting), and
    /// returns as soon as it answers `-LOADING`: the window in which a
    /// restarted Redis with a large data set refuses commands.
    pub async fn restart_loading_slowly(&mut self, key_load_delay_us: u32) {
        assert!(self.child.is_none(), "restart needs a stopped server");
        let delay = key_load_delay_us.to_string();
        self.child = Some(spawn(
            self.port,
            &self.dir,
            &[
                "--key-load-delay",
                &delay,
                // Answer clients between small chunks of the file.
                "--loading-process-events-interval-bytes",
                "1024",
            ],
        ));
        let deadline = Instant::now() + READY_WITHIN;
        while ping_reply(self.port).as_deref() != Some(b"-LOADING".as_slice()) {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered LOADING after restart; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn wait_ready_blocking(&mut self) -> bool {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false; // exited: most likely the port was taken
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn spawn(port: u16, dir: &TempDir, extra: &[&str]) -> Child {
    let log = dir.path().join("redis.log");
    Command::new(BINARY)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        // A replica syncs at once instead of after Redis 7's 5 s default.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--dir", &dir.path().to_string_lossy()])
        .args(["--logfile", &log.to_string_lossy()])
        .args(["--daemonize", "no"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BINARY} (is it installed?): {e}"))
}

/// Whether a server on `port` answers `+PONG` (not `-LOADING`).
pub fn ping(port: u16) -> bool {
    ping_reply(port).as_deref() == Some(b"+PONG".as_slice())
}

/// The first word of the server's answer to PING (`+PONG`, `-LOADING`…),
/// or `None` when it does not answer.
fn ping_reply(port: u16) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).ok()?;
    let word = reply[..n]
        .split(|b| *b == b' ' || *b == b'\r')
        .next()
        .unwrap_or_default();
    Some(word.to_vec())
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}
