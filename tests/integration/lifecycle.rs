//! The node as a process: SIGTERM stops it cleanly together with its
//! embedded Redis, keeping every ticket; SIGSTOP freezes it and SIGCONT
//! brings it back without losing anything.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::process::{process_alive, process_state, NodeConfig, NodeProcess};

#[tokio::test]
async fn sigterm_stops_the_node_and_its_embedded_redis_cleanly() {
    let data = tempfile::Builder::new()
        .prefix("turnus-test-data-")
        .tempdir()
        .expect("data dir");
    let config = NodeConfig::new("graceful").data_dir(data.path());
    let mut node = NodeProcess::start_ready(config.clone()).await;
    node.api()
        .setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    let ticket = node.api().issue("main", "cash").await;
    let pid_file = data.path().join("redis").join("turnus-redis.pid");
    let redis_pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the embedded Redis has a pid file")
        .trim()
        .parse()
        .expect("a pid");

    let status = node
        .stop(Duration::from_secs(30))
        .await
        .expect("the node exits on SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // The node waits for its Redis to stop before it exits.
    assert!(
        !process_alive(redis_pid),
        "the embedded redis-server outlived a graceful stop"
    );
    assert!(!pid_file.exists(), "a clean stop removes the pid file");
    drop(node);

    let node = NodeProcess::start_ready(config).await;
    assert_eq!(
        node.api().ticket("main", &ticket.id).await.number,
        ticket.number
    );
}

/// Signals are delivered asynchronously: waits for the process state.
async fn wait_state(pid: u32, what: &str, ok: impl Fn(Option<char>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(process_state(pid)) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} not {what} within 10 s: {:?}",
            process_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_paused_node_answers_nothing_and_resumes_where_it_was() {
    let node = NodeProcess::start_ready(NodeConfig::new("sleepy")).await;
    node.api()
        .setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    let before = node.api().issue("main", "cash").await;

    node.pause();
    wait_state(node.pid(), "stopped by SIGSTOP", |state| state == Some('T')).await;
    let probe = node
        .api()
        .http
        .get(node.api().url("/healthz"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(probe.is_err(), "a SIGSTOPped node answered: {probe:?}");

    node.resume();
    wait_state(node.pid(), "running again after SIGCONT", |state| {
        state != Some('T')
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.api().readyz().await != Some(StatusCode::OK) {
        assert!(
            Instant::now() < deadline,
            "not ready within 30 s of SIGCONT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = node.api().issue("main", "cash").await;
    assert_eq!(
        (before.number.as_str(), after.number.as_str()),
        ("C001", "C002")
    );
    assert_eq!(
        node.api().call("main", "c1").await.map(|t| t.id),
        Some(before.id)
    );
}

/// The SIGSTOP case of issue 12: requests that reached a paused node wait in
/// its socket buffers; when it resumes, their clients have given up. A
/// ticket or call request whose turn comes after the node's deadline
/// (`http.request_deadline_ms`, 3 s by default) is refused with 503
/// `request-expired` instead of performed.
#[tokio::test]
async fn requests_that_waited_out_a_pause_are_refused_not_performed() {
    let node = NodeProcess::start_ready(NodeConfig::new("frozen")).await;
    let api = node.api();
    api.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    let before = api.issue("main", "cash").await;

    node.pause();
    wait_state(node.pid(), "stopped by SIGSTOP", |state| state == Some('T')).await;
    let paused_at = Instant::now();
    let send = |path: &'static str, token: &'static str, client_timeout: Duration| {
        let mut request = api.http.post(api.url(path)).bearer_auth(token);
        if path.ends_with("tickets") {
            request = request.json(&serde_json::json!({"service": "cash"}));
        }
        request.timeout(client_timeout).send()
    };
    use crate::support::{KIOSK, OPERATOR};
    // Kiosks that give up after a second, and one client that waits.
    let gave_up = futures::future::join_all((0..3).map(|_| {
        send(
            "/api/v1/branches/main/tickets",
            KIOSK,
            Duration::from_secs(1),
        )
    }));
    let patient_issue = tokio::spawn(send(
        "/api/v1/branches/main/tickets",
        KIOSK,
        Duration::from_secs(60),
    ));
    let patient_call = tokio::spawn(send(
        "/api/v1/branches/main/counters/c1/call",
        OPERATOR,
        Duration::from_secs(60),
    ));
    for answer in gave_up.await {
        assert!(answer.is_err(), "a paused node answered: {answer:?}");
    }
    // The fault itself: the node stays paused past its request deadline.
    tokio::time::sleep(Duration::from_millis(4_500).saturating_sub(paused_at.elapsed())).await;
    node.resume();

    for (what, patient) in [("issue", patient_issue), ("call", patient_call)] {
        let response = patient
            .await
            .expect("the client task")
            .unwrap_or_else(|e| panic!("{what}: no answer after SIGCONT: {e}"));
        crate::support::api::assert_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "request-expired",
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.readyz().await != Some(StatusCode::OK) {
        assert!(
            Instant::now() < deadline,
            "not ready within 30 s of SIGCONT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing queued during the pause was performed: the first ticket is
    // still the only one waiting, uncalled, and numbering goes on from it.
    let queues = api.queues("main").await;
    assert_eq!(
        queues.iter().map(|q| q.waiting).sum::<u64>(),
        1,
        "{queues:?}"
    );
    assert_eq!(api.ticket("main", &before.id).await.status, "waiting");
    assert_eq!(api.issue("main", "cash").await.number, "C002");
    let text = api.metrics().await.expect("/metrics");
    let expired = crate::support::api::metric_value(&text, "turnus_requests_expired_total")
        .expect("the counter is exported");
    assert!(expired >= 2.0, "expired requests counted: {expired}");
}
