//! The embedded default: a private `redis-server` child that the node
//! starts, supervises and stops.
//!
//! Durability: AOF is on, so an acknowledged ticket is in the AOF file (in
//! the OS page cache at least) before the node answers; killing the node or
//! Redis loses nothing, and with `appendfsync always` neither does an OS
//! crash. The child gets `PR_SET_PDEATHSIG`, so even a SIGKILLed node leaves
//! no orphaned `redis-server` behind; a pid file catches the rare one that
//! survives anyway (for example a node killed during start-up).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the embedded Redis could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "{binary} was not found. turnus runs a private Redis when redis.url is empty; install it \
         (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: `brew install redis`) \
         or set redis.url / TURNUS__REDIS__URL to an existing Redis"
    )]
    NotInstalled { binary: String },
    #[error("cannot prepare {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("redis-server did not become ready within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
}

/// A running private `redis-server`; stopped (gracefully, so the AOF is
/// flushed) when dropped.
pub struct EmbeddedRedis {
    child: Child,
    port: u16,
    pid_file: PathBuf,
}

impl EmbeddedRedis {
    /// Starts `binary` with its data under `data_dir/redis` on a free
    /// loopback port and waits until it answers.
    pub fn start(binary: &str, data_dir: &Path, appendfsync: &str) -> Result<Self, EmbeddedError> {
        let dir = data_dir.join("redis");
        fs::create_dir_all(&dir).map_err(|source| EmbeddedError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let dir = dir
            .canonicalize()
            .map_err(|source| EmbeddedError::DataDir {
                path: dir.clone(),
                source,
            })?;
        let pid_file = dir.join("turnus-redis.pid");
        kill_leftover(&pid_file);

        let log_file = dir.join("redis.log");
        let mut last_error = None;
        // A port found free can be taken before redis binds it; try a few.
        for _ in 0..5 {
            let port = free_port().map_err(|source| EmbeddedError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
            let mut command = Command::new(binary);
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--dir", &dir.to_string_lossy()])
                .args(["--appendonly", "yes", "--appendfsync", appendfsync])
                .args(["--save", ""])
                .args(["--maxmemory-policy", "noeviction"])
                .args(["--protected-mode", "yes", "--daemonize", "no"])
                .args(["--logfile", &log_file.to_string_lossy()])
                .args(["--pidfile", &pid_file.to_string_lossy()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            set_parent_death_signal(&mut command);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(EmbeddedError::NotInstalled {
                        binary: binary.to_owned(),
                    })
                }
                Err(source) => {
                    return Err(EmbeddedError::Spawn {
                        binary: binary.to_owned(),
                        source,
                    })
                }
            };
            // Pid file for the leftover check of the next start; redis
            // writes it too, but only once it is up.
            let _ = fs::write(&pid_file, child.id().to_string());
            match wait_ready(&mut child, port, Duration::from_secs(15)) {
                Ok(()) => {
                    tracing::info!(port, dir = %dir.display(), "embedded redis-server started");
                    return Ok(EmbeddedRedis {
                        child,
                        port,
                        pid_file,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(EmbeddedError::NotReady(Duration::ZERO, log_file))).map_err(|e| {
            match e {
                EmbeddedError::NotReady(d, _) => EmbeddedError::NotReady(d, dir.join("redis.log")),
                other => other,
            }
        })
    }

    /// The URL of the running server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server: SIGTERM (Redis flushes the AOF and exits), then
    /// SIGKILL if it has not exited within five seconds.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = fs::remove_file(&self.pid_file);
                tracing::info!("embedded redis-server stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(child: &mut Child, port: u16, limit: Duration) -> Result<(), EmbeddedError> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            if let Some(stderr) = child.stderr.take() {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::error!("redis-server: {line}");
                }
            }
            return Err(EmbeddedError::NotReady(limit, PathBuf::new()));
        }
        if ping(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(EmbeddedError::NotReady(limit, PathBuf::new()))
}

/// A synchronous PING, answered with `+PONG` (also while the AOF loads,
/// Redis answers `-LOADING`, which is not ready yet).
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Kills a `redis-server` left behind by an earlier run of this data dir.
fn kill_leftover(pid_file: &Path) {
    let Some(pid) = fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let is_redis = fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|cmd| cmd.contains("redis-server"))
        .unwrap_or(false);
    if is_redis {
        tracing::warn!(pid, "stopping a redis-server left behind by an earlier run");
        send_signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = fs::remove_file(pid_file);
}

fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls async-signal-safe functions (prctl, getppid, kill).
    unsafe {
        command.pre_exec(|| {
            // The signal fires when the thread that forked exits; the node
            // forks from its main thread, which lives as long as the process.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() == 1 {
                // The parent died between fork and prctl.
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}
