//! `TestCertificates`: a throw-away certificate authority and a server
//! certificate for 127.0.0.1, made with the `openssl` command, for the TLS
//! tests (a `redis-server` with `--tls-port`).

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

pub struct TestCertificates {
    dir: TempDir,
}

impl TestCertificates {
    pub fn generate() -> TestCertificates {
        let dir = tempfile::Builder::new()
            .prefix("turnus-test-tls-")
            .tempdir()
            .expect("a temp dir for certificates");
        let certs = TestCertificates { dir };
        std::fs::write(certs.path("san.ext"), "subjectAltName=IP:127.0.0.1\n")
            .expect("write the extension file");
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=turnus test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        certs.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        certs.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        certs
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `redis-server` arguments that add a TLS port (clients need no
    /// certificate of their own).
    pub fn redis_args(&self, tls_port: u16) -> Vec<String> {
        let file = |name: &str| self.path(name).to_string_lossy().into_owned();
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }

    /// The authority's certificate, for `redis.tls_ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.crt")
    }
}
