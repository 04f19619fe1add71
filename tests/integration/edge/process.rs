//! Findings about the process: it must refuse to start cleanly (one clear
//! message, the right exit status, no stack trace even with
//! `RUST_BACKTRACE=1`, nothing done to the group) and keep its log quiet
//! under protocol garbage.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::api::metric_value;
use crate::support::eventually;
use crate::support::process::{run_turnus, NodeConfig, NodeProcess};
use crate::support::raw::RawConnection;
use crate::support::redis::RedisServer;

const EXIT_WITHIN: Duration = Duration::from_secs(30);

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_no_stack_trace(text: &str) {
    for sign in ["panicked", "stack backtrace", "RUST_BACKTRACE", "Caused by"] {
        assert!(!text.contains(sign), "{sign:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_port_in_use_is_one_clear_line_and_the_group_is_not_touched() {
    let redis = RedisServer::start();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("address").port();
    let listen = format!("127.0.0.1:{port}");
    let mut config = NodeConfig::new("port-taken").redis(&redis.url());
    config.env = vec![
        ("TURNUS__HTTP__LISTEN".to_owned(), listen.clone()),
        ("RUST_BACKTRACE".to_owned(), "1".to_owned()),
    ];
    let mut node = NodeProcess::start(config);
    let status = node
        .wait_exit(EXIT_WITHIN)
        .await
        .expect("the node exits by itself");
    let log = node.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let expected = format!("turnus: error: cannot listen on {listen}: Address already in use");
    assert!(log.contains(&expected), "{expected:?} missing from:\n{log}");
    assert_no_stack_trace(&log);
    // Bind first: no lease, no member entry, no key at all in the group's Redis.
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis");
    let keys: u64 = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .expect("DBSIZE");
    assert_eq!(keys, 0, "the node wrote to the group's Redis:\n{log}");
    drop(taken);
}

#[test]
fn a_configuration_error_is_one_list_exit_2_and_no_stack_trace() {
    let output = run_turnus(
        &["serve"],
        &[
            ("RUST_BACKTRACE", "1"),
            ("TURNUS__LEADER__LEASE_TTL_MS", "-5"),
            ("TURNUS__NODE__ROLE", "bogus"),
            ("TURNUS__REDIS__URL", "redisx://user:hunter2@db:6379"),
            ("TURNUS__HTTP__ADVERTISE_URL", "httpfoo"),
            ("TURNUS__UPSTREAM__MASTER_URLS", "localhost:19201"),
        ],
        EXIT_WITHIN,
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.starts_with("turnus: invalid configuration:\n"),
        "{text}"
    );
    for expected in [
        r#"leader.lease_ttl_ms = "-5": got string "-5"; allowed: a whole number"#,
        r#"node.role = "bogus": "bogus" is not a role; allowed: master, slave"#,
        r#"redis.url = "redisx://********@db:6379": scheme "redisx" is not allowed; allowed: redis://host[:port] or rediss://host[:port]"#,
        r#"http.advertise_url = "httpfoo": not a URL"#,
        r#"upstream.master_urls[0] = "localhost:19201": scheme "localhost" is not allowed; allowed: http://host[:port] or https://host[:port]"#,
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert_eq!(
        text.lines().count(),
        6,
        "one heading and five problems:\n{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_no_stack_trace(&text);
}

#[test]
fn config_print_masks_credentials_and_keeps_the_scheme_and_unread_variables_are_warned_about() {
    let output = run_turnus(
        &["config", "print"],
        &[
            (
                "TURNUS__REDIS__URL",
                "rediss://user:hunter2@db.example:6380/1",
            ),
            ("TURNUS__NODE__ROLE", "slave"),
            (
                "TURNUS__UPSTREAM__MASTER_URLS",
                "https://peer:letmein@m1:8443,http://m2:8080",
            ),
            ("TURNUS__UPSTREAM__TOKEN", "peer-token-secret"),
            ("TURNUS__AUTH__ADMIN_TOKENS", "admin-token-secret"),
            ("TURNUS_REDIS__URL", "redis://misspelt:1"),
        ],
        EXIT_WITHIN,
    );
    let (out, err) = (String::from_utf8_lossy(&output.stdout), stderr(&output));
    assert!(output.status.success(), "{out}\n{err}");
    for secret in [
        "hunter2",
        "letmein",
        "peer-token-secret",
        "admin-token-secret",
    ] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret}:\n{out}\n{err}"
        );
    }
    assert!(
        out.contains(r#"url = "rediss://********@db.example:6380/1""#),
        "{out}"
    );
    assert!(
        out.contains(r#""https://********@m1:8443","#) && out.contains(r#""http://m2:8080","#),
        "{out}"
    );
    assert!(err.contains("TURNUS_REDIS__URL is not read"), "{err}");
}

#[tokio::test]
async fn protocol_garbage_is_counted_not_logged_per_request() {
    let node = NodeProcess::start_ready(NodeConfig::new("garbage")).await;
    const SENT: usize = 30;
    for i in 0..SENT {
        let mut connection = RawConnection::open(node.port()).await;
        let garbage = format!("GARBAGE {i} \u{1}\r\n\r\n");
        connection.send(garbage.as_bytes()).await;
        let response = connection.response(Duration::from_secs(10)).await;
        assert_eq!(response.status, 400);
    }
    eventually(
        "the malformed requests counted",
        Duration::from_secs(10),
        || async {
            let text = node.api().metrics().await?;
            let counted = metric_value(&text, "turnus_http_malformed_requests_total")?;
            (counted >= SENT as f64).then_some(())
        },
    )
    .await;
    let log = node.log();
    let noisy: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("ERROR") || line.contains("WARN"))
        .collect();
    assert!(
        noisy.is_empty(),
        "{} log lines:\n{}",
        noisy.len(),
        noisy.join("\n")
    );
}
