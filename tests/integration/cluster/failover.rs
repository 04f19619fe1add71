//! Failover under traffic: a SIGKILLed leader is replaced, and no ticket
//! acknowledged to a kiosk or a counter is lost or issued twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;

use super::{BRANCH, LEADER_WITHIN, NODES};
use crate::support::api::{ApiClient, Ticket};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::eventually;

#[derive(Default)]
struct Traffic {
    issued: Vec<Ticket>,
    called: Vec<Ticket>,
    failures: Vec<String>,
}

/// Issues and calls through `api` until `stop` (at most `MAX_REQUESTS`
/// rounds), recording only what was acknowledged.
async fn traffic(
    api: ApiClient,
    counter: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> Traffic {
    const MAX_REQUESTS: usize = 1_000;
    let mut seen = Traffic::default();
    for round in 0..MAX_REQUESTS {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let service = if round % 2 == 0 { "cash" } else { "loans" };
        match api.try_issue(BRANCH, service).await {
            Ok(ticket) => {
                seen.issued.push(ticket);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => seen.failures.push(e),
        }
        if round % 2 == 1 {
            match api.try_call(BRANCH, counter).await {
                Ok(Some(ticket)) => seen.called.push(ticket),
                Ok(None) => {}
                Err(e) => seen.failures.push(e),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

#[tokio::test]
async fn a_killed_leader_is_replaced_and_no_acknowledged_ticket_is_lost() {
    let mut cluster = Cluster::start(&NODES, Timing::DEFAULT).await;
    let api = cluster.nodes[0].api().clone();
    let version = api
        .setup_branch(
            BRANCH,
            &[("cash", "C"), ("loans", "L")],
            &[
                ("k1", &[("cash", 1), ("loans", 2)]),
                ("k2", &[("loans", 1), ("cash", 2)]),
                ("k3", &[("cash", 1), ("loans", 1)]),
            ],
        )
        .await;
    for node in &cluster.nodes {
        wait_config(node.api(), BRANCH, version).await;
    }
    let old = cluster.wait_leader(LEADER_WITHIN).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = cluster
        .nodes
        .iter()
        .zip(["k1", "k2", "k3"])
        .map(|(node, counter)| {
            let task = tokio::spawn(traffic(
                node.api().clone(),
                counter,
                stop.clone(),
                acked.clone(),
            ));
            (node.id().to_owned(), task)
        })
        .collect();
    let acked_by = |n: usize| {
        let acked = acked.clone();
        move || {
            let acked = acked.clone();
            async move { (acked.load(Ordering::SeqCst) >= n).then_some(()) }
        }
    };
    eventually(
        "30 tickets before the kill",
        Duration::from_secs(30),
        acked_by(30),
    )
    .await;

    let killed_at = Instant::now();
    cluster.node_mut(&old.node).kill();
    let ttl = cluster.timing.ttl();
    let (new, seen_at) = cluster
        .wait_new_leader(&old, ttl + Duration::from_secs(1), Duration::from_millis(5))
        .await;
    println!(
        "SIGKILL of leader {}: {} took the lease (epoch {}) after {:?}",
        old.node,
        new.node,
        new.epoch,
        seen_at - killed_at
    );
    // Tickets keep flowing through the survivors after the failover too.
    let after = acked.load(Ordering::SeqCst) + 30;
    eventually(
        "30 more tickets after the failover",
        Duration::from_secs(30),
        acked_by(after),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut issued = Vec::new();
    let mut called = Vec::new();
    for (node, task) in tasks {
        let seen = task.await.expect("traffic task");
        // Ticket operations need no leader: the survivors never failed one.
        if node != old.node {
            assert!(
                seen.failures.is_empty(),
                "{node} failed requests: {:?}",
                seen.failures
            );
        }
        issued.extend(seen.issued);
        called.extend(seen.called);
    }

    let mut numbers = HashSet::new();
    for ticket in &issued {
        assert!(
            numbers.insert((ticket.service.clone(), ticket.number.clone())),
            "number {} of {} issued twice",
            ticket.number,
            ticket.service
        );
    }
    let mut called_ids = HashSet::new();
    for ticket in &called {
        assert!(
            called_ids.insert(ticket.id.clone()),
            "ticket {} called twice",
            ticket.id
        );
    }
    let reader = cluster.node(&new.node).api().clone();
    let missing: Vec<String> = futures::stream::iter(&issued)
        .map(|ticket| {
            let reader = reader.clone();
            async move {
                let path = format!("/api/v1/branches/{BRANCH}/tickets/{}", ticket.id);
                let response = reader
                    .request(
                        reqwest::Method::GET,
                        &path,
                        Some(crate::support::DISPLAY),
                        None,
                    )
                    .await;
                if response.status() != StatusCode::OK {
                    return Some(format!("{} ({})", ticket.id, response.status()));
                }
                let stored: Ticket = response.json().await.expect("a ticket");
                (stored.number != ticket.number).then(|| format!("{} renumbered", ticket.id))
            }
        })
        .buffer_unordered(16)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    assert!(missing.is_empty(), "acknowledged tickets lost: {missing:?}");
    println!(
        "{} tickets issued and {} called across the failover",
        issued.len(),
        called.len()
    );
}
