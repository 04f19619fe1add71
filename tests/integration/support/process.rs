//! `NodeProcess`: the real `turnus serve` binary as a child process,
//! configured through `TURNUS__SECTION__KEY` variables, with its output in a
//! per-node log file. Killed on drop; when the test is failing, its log is
//! printed so the failure can be diagnosed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tempfile::TempDir;

use super::api::ApiClient;
use super::{free_port, token_env};

/// How long a node may take to answer `/readyz` with 200 after start.
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node id (also names the log file).
    pub id: String,
    /// The group's Redis; `None` runs the embedded one.
    pub redis_url: Option<String>,
    /// Where the node keeps its files; `None` uses a fresh temp dir.
    pub data_dir: Option<PathBuf>,
    /// More `TURNUS__*` variables.
    pub env: Vec<(String, String)>,
}

impl NodeConfig {
    pub fn new(id: &str) -> NodeConfig {
        NodeConfig {
            id: id.to_owned(),
            redis_url: None,
            data_dir: None,
            env: Vec::new(),
        }
    }

    pub fn redis(mut self, url: &str) -> NodeConfig {
        self.redis_url = Some(url.to_owned());
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> NodeConfig {
        self.data_dir = Some(dir.to_owned());
        self
    }
}

pub struct NodeProcess {
    child: Child,
    id: String,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    // Holds the log (and the data dir, unless one was given) until drop.
    _dir: TempDir,
    api: ApiClient,
}

impl NodeProcess {
    /// Starts the node; it is not ready yet (see [`wait_ready`](Self::wait_ready)).
    pub fn start(config: NodeConfig) -> NodeProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("turnus-test-{}-", config.id))
            .tempdir()
            .expect("create a temp dir for the node");
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let log_path = dir.path().join(format!("{}.log", config.id));
        let log = File::create(&log_path).expect("create the node log");
        let port = free_port();

        let mut command = Command::new(env!("CARGO_BIN_EXE_turnus"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("NODE_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env("NO_COLOR", "1")
            .env("TURNUS__NODE__ID", &config.id)
            .env("TURNUS__NODE__DATA_DIR", &data_dir)
            .env("TURNUS__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("TURNUS__HTTP__WORKERS", "2")
            .envs(token_env())
            // Never the repository's own media/ (the default when run from it).
            .env("TURNUS__MEDIA__LIBRARY_DIR", data_dir.join("library"))
            .envs(config.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        if let Some(url) = &config.redis_url {
            command.env("TURNUS__REDIS__URL", url);
        }
        let child = command.spawn().expect("spawn the turnus binary");
        NodeProcess {
            child,
            id: config.id,
            port,
            data_dir,
            log_path,
            _dir: dir,
            api: ApiClient::new(format!("http://127.0.0.1:{port}")),
        }
    }

    /// Starts the node and waits until it is ready.
    pub async fn start_ready(config: NodeConfig) -> NodeProcess {
        let mut node = NodeProcess::start(config);
        node.wait_ready(START_WITHIN).await;
        node
    }

    /// Polls `/readyz` until 200; panics (with the log) if the process exits
    /// or `within` passes.
    pub async fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "node {} exited with {status} before it was ready; log:\n{}",
                    self.id,
                    self.log()
                );
            }
            if self.api.readyz().await == Some(StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not ready within {within:?}; log:\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    #[allow(dead_code)] // for the cluster tests
    pub fn id(&self) -> &str {
        &self.id
    }

    #[allow(dead_code)] // for the cluster tests
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful stop) and wait for the exit, SIGKILL after `within`.
    pub async fn stop(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.terminate();
        self.wait_exit(within).await
    }

    /// SIGTERM without waiting (a second one would make the node skip its
    /// graceful drain, so wait with [`wait_exit`](Self::wait_exit)).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the process to exit; SIGKILL after `within` (then `None`).
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGSTOP: the node freezes, connections stay open.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        send_signal(self.child.id(), signal);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // SIGKILL also ends a paused (SIGSTOPped) node.
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- log of node {} (port {}) -----\n{}----- end of log of node {} -----",
                self.id,
                self.port,
                self.log(),
                self.id
            );
        }
    }
}

/// Runs the `turnus` binary to its end with only `PATH` and `env` set (for
/// commands that exit: `config print`, a `serve` that must refuse to start).
/// Killed after `within`.
pub fn run_turnus(args: &[&str], env: &[(&str, &str)], within: Duration) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnus"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the turnus binary");
    let deadline = Instant::now() + within;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

/// kill(2) on a pid.
pub fn send_signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The state letter of `pid` from `/proc/<pid>/stat` (`R`, `S`, `T` for
/// stopped, `Z` for a zombie, ...), or `None` when there is no such process.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3, after the parenthesised command name (which may hold spaces).
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// Whether `pid` is a live process (a zombie waiting for its parent to reap
/// it counts as gone: it runs no code and holds no port).
pub fn process_alive(pid: u32) -> bool {
    !matches!(process_state(pid), Some('Z') | Some('X') | None)
}
