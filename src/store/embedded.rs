//! The embedded default: a private `redis-server` child that the node
//! starts, supervises and stops.
//!
//! Supervision: a thread polls the child every [`SUPERVISE_EVERY`]; when it
//! has exited (crash, OOM killer, an operator's SIGKILL) the thread reaps it
//! (no zombie), logs, counts the restart, and starts it again on the same
//! port and data directory after a back-off (0.2 s doubling to 5 s, back to
//! 0.2 s once a child has run for a minute). The node's connection manager
//! reconnects to the same URL by itself, and the AOF brings back every
//! acknowledged ticket. Restarted children are forked by the supervisor
//! thread, which lives until [`EmbeddedRedis::stop`], so their parent-death
//! signal stays armed.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the supervisor looks at the child.
pub const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A child that ran this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const READY_WITHIN: Duration = Duration::from_secs(15);

/// Called once per restart of the child (the node counts it in a metric).
pub type OnRestart = Arc<dyn Fn() + Send + Sync>;

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

/// A running private `redis-server`, supervised; stopped (gracefully, so
/// the AOF is flushed) when dropped.
pub struct EmbeddedRedis {
    port: u16,
    pid_file: PathBuf,
    /// The current child; `None` while a restart is pending.
    child: Arc<Mutex<Option<Child>>>,
    stopping: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

/// How to start the child again.
struct Launch {
    binary: String,
    dir: PathBuf,
    appendfsync: String,
    port: u16,
    pid_file: PathBuf,
}

impl Launch {
    fn command(&self) -> Command {
        let log_file = self.dir.join("redis.log");
        let mut command = Command::new(&self.binary);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--appendonly", "yes", "--appendfsync", &self.appendfsync])
            .args(["--save", ""])
            .args(["--maxmemory-policy", "noeviction"])
            .args(["--protected-mode", "yes", "--daemonize", "no"])
            .args(["--logfile", &log_file.to_string_lossy()])
            .args(["--pidfile", &self.pid_file.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        set_parent_death_signal(&mut command);
        command
    }

    /// Starts the child and waits until it answers PING.
    fn spawn_ready(&self) -> Result<Child, EmbeddedError> {
        let mut child = self.command().spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                EmbeddedError::NotInstalled {
                    binary: self.binary.clone(),
                }
            } else {
                EmbeddedError::Spawn {
                    binary: self.binary.clone(),
                    source,
                }
            }
        })?;
        // Pid file for the leftover check of the next start; redis writes
        // it too, but only once it is up.
        let _ = fs::write(&self.pid_file, child.id().to_string());
        match wait_ready(&mut child, self.port, READY_WITHIN) {
            Ok(()) => Ok(child),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(EmbeddedError::NotReady(
                    READY_WITHIN,
                    self.dir.join("redis.log"),
                ))
            }
        }
    }
}

impl EmbeddedRedis {
    /// Starts `binary` with its data under `data_dir/redis` on a free
    /// loopback port, waits until it answers, and supervises it from then
    /// on, calling `on_restart` at each restart.
    pub fn start(
        binary: &str,
        data_dir: &Path,
        appendfsync: &str,
        on_restart: OnRestart,
    ) -> Result<Self, EmbeddedError> {
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

        let mut last_error = None;
        // A port found free can be taken before redis binds it; try a few.
        for _ in 0..5 {
            let port = free_port().map_err(|source| EmbeddedError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
            let launch = Launch {
                binary: binary.to_owned(),
                dir: dir.clone(),
                appendfsync: appendfsync.to_owned(),
                port,
                pid_file: pid_file.clone(),
            };
            match launch.spawn_ready() {
                Ok(child) => {
                    tracing::info!(port, dir = %dir.display(), "embedded redis-server started");
                    let child = Arc::new(Mutex::new(Some(child)));
                    let stopping = Arc::new(AtomicBool::new(false));
                    let supervisor = {
                        let (child, stopping) = (child.clone(), stopping.clone());
                        std::thread::Builder::new()
                            .name("embedded-redis".into())
                            .spawn(move || supervise(&launch, &child, &stopping, &on_restart))
                            .map_err(|source| EmbeddedError::Spawn {
                                binary: binary.to_owned(),
                                source,
                            })?
                    };
                    return Ok(EmbeddedRedis {
                        port,
                        pid_file,
                        child,
                        stopping,
                        supervisor: Some(supervisor),
                    });
                }
                Err(e @ EmbeddedError::NotInstalled { .. }) => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(EmbeddedError::NotReady(
            Duration::ZERO,
            dir.join("redis.log"),
        )))
    }

    /// The URL of the running server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops supervising, then the server: SIGTERM (Redis flushes the AOF
    /// and exits), then SIGKILL if it has not exited within five seconds.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        send_signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = fs::remove_file(&self.pid_file);
                tracing::info!("embedded redis-server stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// The supervisor thread: reaps a child that exited and starts another on
/// the same port and data, with back-off, until the node stops.
fn supervise(
    launch: &Launch,
    slot: &Mutex<Option<Child>>,
    stopping: &AtomicBool,
    on_restart: &OnRestart,
) {
    let mut backoff = BACKOFF_MIN;
    let mut started = Instant::now();
    while !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(SUPERVISE_EVERY);
        let exited = {
            let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    guard.take(); // reaped by try_wait: no zombie left
                    Some(status.to_string())
                }
                Some(Ok(None)) => None,
                Some(Err(e)) => Some(format!("cannot be waited for: {e}")),
                None => Some("not running".to_owned()),
            }
        };
        let Some(how) = exited else { continue };
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff = BACKOFF_MIN;
        }
        tracing::error!(
            port = launch.port,
            exit = %how,
            backoff_ms = backoff.as_millis(),
            "embedded redis-server died; restarting it on the same port and data"
        );
        on_restart();
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match launch.spawn_ready() {
            Ok(child) => {
                tracing::info!(port = launch.port, "embedded redis-server restarted");
                started = Instant::now();
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
            }
            Err(e) => tracing::error!(error = %e, "embedded redis-server did not restart"),
        }
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
