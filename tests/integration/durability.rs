//! An acknowledged ticket survives SIGKILL of the node: the embedded Redis
//! goes down with it (no orphan), and a node started again on the same data
//! dir has every ticket with the status it had. And SIGKILL of the embedded
//! Redis alone: the node restarts it and keeps every acknowledged ticket.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::support::api::Ticket;
use crate::support::process::{process_alive, send_signal, NodeConfig, NodeProcess};

const BRANCH: &str = "main";
const TICKETS: usize = 500;

/// The pid of the node's embedded `redis-server`, from its pid file.
fn embedded_redis_pid(data_dir: &Path) -> u32 {
    let pid_file = data_dir.join("redis").join("turnus-redis.pid");
    let text = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
    let pid: u32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("redis-server"),
        "pid {pid} is not a running redis-server"
    );
    pid
}

#[tokio::test]
async fn acknowledged_tickets_survive_sigkill_of_the_node() {
    let data = tempfile::Builder::new()
        .prefix("turnus-test-data-")
        .tempdir()
        .expect("data dir");
    let config = NodeConfig::new("durable").data_dir(data.path());
    let mut node = NodeProcess::start_ready(config.clone()).await;
    let api = node.api().clone();
    api.setup_branch(
        BRANCH,
        &[("cash", "C"), ("loans", "L")],
        &[("c1", &[("cash", 1)]), ("c2", &[("loans", 1)])],
    )
    .await;

    let issued: Vec<Ticket> = futures::stream::iter(0..TICKETS)
        .map(|i| api.issue(BRANCH, if i % 2 == 0 { "cash" } else { "loans" }))
        .buffered(16)
        .collect()
        .await;
    // Every status a ticket can have, by what the counters were told.
    let mut expected: HashMap<String, &str> =
        issued.iter().map(|t| (t.id.clone(), "waiting")).collect();
    let a = api.call(BRANCH, "c1").await.expect("cash waits");
    let b = api.call(BRANCH, "c1").await.expect("cash waits");
    expected.insert(a.id.clone(), "served");
    let no_show = api.counter_action(BRANCH, "c1", "no-show").await;
    assert_eq!(no_show.id, b.id);
    expected.insert(b.id.clone(), "no_show");
    let c = api.call(BRANCH, "c2").await.expect("loans wait");
    let finished = api.counter_action(BRANCH, "c2", "finish").await;
    assert_eq!(finished.id, c.id);
    expected.insert(c.id.clone(), "served");
    let d = api.call(BRANCH, "c2").await.expect("loans wait");
    expected.insert(d.id.clone(), "called");
    let e = api.call(BRANCH, "c1").await.expect("cash waits");
    expected.insert(e.id.clone(), "called");

    // Killed right after the last acknowledged write.
    let redis_pid = embedded_redis_pid(node.data_dir());
    node.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    while process_alive(redis_pid) {
        if Instant::now() > deadline {
            // Do not leave it running for the next test, then fail.
            send_signal(redis_pid, libc::SIGKILL);
            panic!(
                "the embedded redis-server (pid {redis_pid}) outlived its SIGKILLed node by 20 s"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(node);

    let node = NodeProcess::start_ready(config).await;
    let api = node.api().clone();
    let after: Vec<Ticket> = futures::stream::iter(&issued)
        .map(|t| api.ticket(BRANCH, &t.id))
        .buffered(16)
        .collect()
        .await;
    for (before, now) in issued.iter().zip(&after) {
        assert_eq!(
            (now.number.as_str(), now.service.as_str(), now.issued_at),
            (
                before.number.as_str(),
                before.service.as_str(),
                before.issued_at
            ),
            "ticket {}",
            before.id
        );
        assert_eq!(
            now.status, expected[&before.id],
            "ticket {} ({})",
            before.id, before.number
        );
    }
    let waiting = expected.values().filter(|s| **s == "waiting").count() as u64;
    let queued: u64 = api.queues(BRANCH).await.iter().map(|q| q.waiting).sum();
    assert_eq!(queued, waiting);
    // The counters still hold what they were serving.
    assert_eq!(api.counter_action(BRANCH, "c2", "recall").await.id, d.id);
    assert_eq!(api.counter_action(BRANCH, "c1", "recall").await.id, e.id);
    // Numbering goes on after the last number issued, not from the start.
    let last_cash = issued
        .iter()
        .filter(|t| t.service == "cash")
        .map(|t| t.number.clone())
        .max();
    let next = api.issue(BRANCH, "cash").await;
    assert!(
        Some(next.number.clone()) > last_cash,
        "{} after {last_cash:?}",
        next.number
    );
}

/// The embedded `redis-server` SIGKILLed while the node runs under ticket
/// load: the node reaps it, starts it again on the same data, and issues
/// again within seconds; every ticket acknowledged before, during or after
/// the kill is there, numbering goes on, and the restart is counted.
#[tokio::test]
async fn a_killed_embedded_redis_is_restarted_with_every_acknowledged_ticket() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let node = NodeProcess::start_ready(NodeConfig::new("supervisor")).await;
    let api = node.api().clone();
    api.setup_branch(BRANCH, &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    let acknowledged = Arc::new(Mutex::new(Vec::<Ticket>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let kiosks: Vec<_> = (0..4)
        .map(|_| {
            let (api, acknowledged, running) = (api.clone(), acknowledged.clone(), running.clone());
            tokio::spawn(async move {
                while running.load(Ordering::SeqCst) {
                    match api.try_issue(BRANCH, "cash").await {
                        Ok(t) => acknowledged.lock().expect("lock").push(t),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    let count = || acknowledged.lock().expect("lock").len();
    let wait_for = |n: usize, what: &'static str| {
        let count = &count;
        crate::support::eventually(what, Duration::from_secs(30), move || {
            std::future::ready((count() >= n).then_some(()))
        })
    };
    wait_for(50, "50 tickets before the kill").await;

    let old_pid = embedded_redis_pid(node.data_dir());
    send_signal(old_pid, libc::SIGKILL);
    let killed_at = Instant::now();
    let before_kill = count();
    // Back to issuing: tickets acknowledged after the kill.
    wait_for(before_kill + 50, "issuing again after the kill").await;
    let back_after = killed_at.elapsed();
    running.store(false, Ordering::SeqCst);
    for kiosk in kiosks {
        kiosk.await.expect("kiosk task");
    }

    // The old child was reaped (no zombie) and a new one serves.
    assert!(
        !process_alive(old_pid),
        "pid {old_pid} still exists (a zombie?)"
    );
    let new_pid = embedded_redis_pid(node.data_dir());
    assert_ne!(new_pid, old_pid);
    let text = api.metrics().await.expect("/metrics");
    assert_eq!(
        crate::support::api::metric_value(&text, "turnus_embedded_redis_restarts_total"),
        Some(1.0)
    );
    assert!(
        node.log().contains("embedded redis-server died"),
        "the restart is logged"
    );

    let acknowledged = acknowledged.lock().expect("lock").clone();
    let mut numbers = std::collections::HashSet::new();
    for ticket in &acknowledged {
        assert!(
            numbers.insert(ticket.number.clone()),
            "{} twice",
            ticket.number
        );
        assert_eq!(api.ticket(BRANCH, &ticket.id).await.number, ticket.number);
    }
    let queued: u64 = api.queues(BRANCH).await.iter().map(|q| q.waiting).sum();
    assert_eq!(
        queued,
        acknowledged.len() as u64,
        "no ticket lost, none extra"
    );
    println!(
        "embedded redis SIGKILLed: issuing again {back_after:?} after the kill; {} tickets acknowledged, all present",
        acknowledged.len()
    );
}
