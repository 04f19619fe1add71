//! `Sentinels`: three real `redis-sentinel` processes on free loopback
//! ports watching one master (with a short `down-after-milliseconds`), for
//! the failover tests. Killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::free_port;
use super::redis::ping;
use super::tls::TestCertificates;

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "turnus-test";

pub struct Sentinels {
    children: Vec<Child>,
    ports: Vec<u16>,
    dir: TempDir,
    /// The sentinels' `requirepass` and the master's, when set.
    password: Option<String>,
    /// With TLS: the port each sentinel speaks TLS on (beside its plain
    /// one, which the harness uses).
    tls_ports: Vec<u16>,
}

impl Sentinels {
    /// Starts three sentinels monitoring the master on `master_port`
    /// (quorum 2) and waits until each answers.
    pub async fn start(master_port: u16, down_after_ms: u64) -> Sentinels {
        Sentinels::start_with(master_port, down_after_ms, None, None).await
    }

    /// Like [`Sentinels::start`], with `password` as the sentinels'
    /// `requirepass` (and between sentinels) and as the master's password;
    /// with `tls`, each sentinel also has a TLS port and speaks TLS to the
    /// master (then `master_port` is the master's TLS port) and to the
    /// other sentinels.
    pub async fn start_with(
        master_port: u16,
        down_after_ms: u64,
        password: Option<&str>,
        tls: Option<&TestCertificates>,
    ) -> Sentinels {
        let dir = tempfile::Builder::new()
            .prefix("turnus-test-sentinel-")
            .tempdir()
            .expect("a temp dir for the sentinels");
        let mut sentinels = Sentinels {
            children: Vec::new(),
            ports: Vec::new(),
            dir,
            password: password.map(str::to_owned),
            tls_ports: Vec::new(),
        };
        let auth = password.map_or(String::new(), |pw| {
            format!(
                "requirepass {pw}\nsentinel sentinel-pass {pw}\nsentinel auth-pass {MASTER_NAME} {pw}\n"
            )
        });
        for i in 0..3 {
            let port = free_port();
            let tls_config = match tls {
                None => String::new(),
                Some(certs) => {
                    let tls_port = free_port();
                    sentinels.tls_ports.push(tls_port);
                    let file = |name: &str| certs.path(name).display().to_string();
                    format!(
                        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\n\
                         tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
                        file("server.crt"),
                        file("server.key"),
                        file("ca.crt"),
                    )
                }
            };
            let config = sentinels.dir.path().join(format!("sentinel-{i}.conf"));
            let log = sentinels.dir.path().join(format!("sentinel-{i}.log"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile {log}\n\
                     dir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n{auth}{tls_config}",
                    log = log.display(),
                    dir = sentinels.dir.path().display(),
                ),
            )
            .expect("write a sentinel config");
            let child = Command::new("redis-sentinel")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start redis-sentinel (is it installed?): {e}"));
            sentinels.children.push(child);
            sentinels.ports.push(port);
        }
        // A sentinel with requirepass answers PING with -NOAUTH; asking it
        // with the password is the readiness check then.
        for &port in &sentinels.ports {
            let password = sentinels.password.clone();
            super::eventually("a sentinel to answer", Duration::from_secs(20), || {
                let up = match &password {
                    None => ping(port),
                    Some(_) => Self::connect(port, password.as_deref()).is_some(),
                };
                std::future::ready(up.then_some(()))
            })
            .await;
        }
        sentinels
    }

    /// Waits until every sentinel knows the other two and `replicas`
    /// replicas, so a failover can be agreed on.
    pub async fn wait_settled(&self, replicas: usize) {
        for &port in &self.ports {
            super::eventually(
                "the sentinels to know each other and the replica",
                Duration::from_secs(30),
                || {
                    let settled = Self::settled(port, self.password.as_deref(), replicas);
                    std::future::ready(settled.then_some(()))
                },
            )
            .await;
        }
    }

    /// A connection to the sentinel on `port` that answers PING.
    fn connect(port: u16, password: Option<&str>) -> Option<redis::Connection> {
        let auth = password.map_or(String::new(), |pw| format!(":{pw}@"));
        let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{port}/")).ok()?;
        let mut conn = client.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut conn).ok()?;
        Some(conn)
    }

    fn settled(port: u16, password: Option<&str>, replicas: usize) -> bool {
        let Some(mut conn) = Self::connect(port, password) else {
            return false;
        };
        let Ok(flat): Result<Vec<String>, _> = redis::cmd("SENTINEL")
            .arg("master")
            .arg(MASTER_NAME)
            .query(&mut conn)
        else {
            return false;
        };
        let field = |name: &str| {
            flat.chunks(2)
                .find(|pair| pair[0] == name)
                .and_then(|pair| pair.get(1))
                .and_then(|v| v.parse::<usize>().ok())
        };
        field("num-other-sentinels") == Some(2) && field("num-slaves") == Some(replicas)
    }

    /// `host:port,host:port,…` for `TURNUS__REDIS__SENTINELS`.
    pub fn addresses(&self) -> String {
        let ports = if self.tls_ports.is_empty() {
            &self.ports
        } else {
            &self.tls_ports
        };
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port as the first sentinel sees it now.
    pub fn master_port(&self) -> Option<u16> {
        let mut conn = Self::connect(self.ports[0], self.password.as_deref())?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query(&mut conn)
            .ok()?;
        addr.map(|(_, port)| port)
    }

    /// Asks the first sentinel for a failover now (`SENTINEL FAILOVER`): it
    /// promotes a replica and turns the old master, still running, into a
    /// replica of it.
    pub fn failover(&self) {
        let mut conn =
            Self::connect(self.ports[0], self.password.as_deref()).expect("connect to a sentinel");
        let _: () = redis::cmd("SENTINEL")
            .arg("failover")
            .arg(MASTER_NAME)
            .query(&mut conn)
            .expect("SENTINEL FAILOVER");
    }

    /// The sentinels' logs (printed when a test fails).
    pub fn logs(&self) -> String {
        (0..self.ports.len())
            .map(|i| {
                let path: PathBuf = self.dir.path().join(format!("sentinel-{i}.log"));
                std::fs::read_to_string(path).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("sentinel logs:\n{}", self.logs());
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
