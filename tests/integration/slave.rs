//! Slave groups (DESIGN.md §1–§2): a master group "central" and a slave
//! group "north", two real `turnus` processes each on their own Redis, with a
//! fault proxy on every slave → master link (see `topology`).
//!
//! - administration on the master reaches every slave node, and tickets work
//!   there with it;
//! - with the link cut the slave group keeps issuing and calling, survives
//!   the loss of its leader, reports the link down, and catches up after
//!   the heal, and no node ever serves an older version after a newer one;
//! - with one master node down it mirrors from the other;
//! - it refuses administration and changes nothing;
//! - a deposed (paused) slave leader is fenced and mirroring goes on under
//!   the new leader;
//! - the master's long-poll endpoint itself (in-process);
//! - `data_loss`: a master whose Redis lost data serves the lower version,
//!   the slaves refuse it and mirror again once the master is ahead;
//! - `lag::mirror_lag` (ignored): the propagation-lag benchmark,
//!   `scripts/bench-mirror-lag.sh`.

mod data_loss;
mod lag;
pub mod topology;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::api::{assert_error, ApiClient};
use crate::support::app::spawn_app;
use crate::support::process::process_state;
use crate::support::{eventually, ADMIN, DISPLAY, PEER};
use topology::{
    cluster_view, metric, publish_change, served_version, setup_branch, version_of, Links,
    Topology, Traffic, VersionSampler, BRANCH, GROUP, WITHIN,
};

#[tokio::test]
async fn an_administrative_change_reaches_every_slave_node_and_tickets_work_there() {
    let topology = Topology::start(Links::Proxied).await;
    let master = topology.master();
    let version = setup_branch(master).await;
    topology.wait_slaves_at(version).await;
    for slave in &topology.slaves {
        let branch = slave.api().branch(BRANCH).await;
        assert_eq!(branch["group"], GROUP, "{branch}");
        assert_eq!(branch["services"][0]["id"], "cash", "{branch}");
        assert_eq!(branch["counters"][0]["id"], "c1", "{branch}");
    }

    // A second service and a counter row for it, added later, also arrive.
    master
        .put_service(
            BRANCH,
            "loans",
            json!({"name": "Loans", "prefix": "L", "target_wait_s": 900}),
        )
        .await;
    let version = version_of(
        &master
            .put_counter(BRANCH, "c2", &[("loans", 1), ("cash", 2)])
            .await,
    );
    topology.wait_slaves_at(version).await;

    // Issued on one slave node, called on the other: one group, one Redis.
    let (north_1, north_2) = (topology.slaves[0].api(), topology.slaves[1].api());
    let cash = north_1.issue(BRANCH, "cash").await;
    let loans = north_2.issue(BRANCH, "loans").await;
    assert_eq!(
        (cash.number.as_str(), loans.number.as_str()),
        ("C001", "L001")
    );
    let called = north_2
        .call(BRANCH, "c2")
        .await
        .expect("loans waits for c2");
    assert_eq!(
        (called.id.as_str(), called.status.as_str()),
        (loans.id.as_str(), "called")
    );
    let called = north_1.call(BRANCH, "c1").await.expect("cash waits for c1");
    assert_eq!(called.id, cash.id);
    assert_eq!(north_2.ticket(BRANCH, &cash.id).await.status, "called");
}

/// Publishes versions `base + n` for `n` in `range` on the master.
async fn publish(master: &ApiClient, base: u64, range: std::ops::RangeInclusive<usize>) {
    for n in range {
        let published = publish_change(master, n).await;
        assert_eq!(published, base + n as u64, "consecutive versions");
    }
}

#[tokio::test]
async fn a_cut_link_leaves_the_slave_group_working_and_it_catches_up_after_the_heal() {
    let mut topology = Topology::start(Links::Proxied).await;
    let version = setup_branch(topology.master()).await;
    topology.wait_slaves_at(version).await;
    let sampler = VersionSampler::start(&topology);
    let traffic = Traffic::start(&topology);
    traffic.wait_for(10).await;
    let (leader, epoch) = topology.wait_slave_leader().await;
    let leader_index = topology.slave_index(&leader);
    let survivor_index = 1 - leader_index;

    topology.cut_links();
    let cut_at = chrono::Utc::now();
    // Versions v+1 and v+2 are published before the slave leader dies,
    // v+3 to v+5 after.
    publish(topology.master(), version, 1..=2).await;
    traffic.wait_for(10).await;

    // The leader dies while the link is down; the other node takes over
    // and finds the master unreachable too.
    traffic.remove(leader_index).await;
    topology.slaves[leader_index].kill();
    let (new_leader, new_epoch) = eventually("a new slave leader", WITHIN, || async {
        topology
            .slave_lease()
            .await
            .filter(|(node, _)| *node != leader)
    })
    .await;
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    assert_eq!(new_leader, topology.slaves[survivor_index].id());
    topology.restart_slave(leader_index).await;
    let restarted = topology.slaves[leader_index].api().clone();
    sampler.retarget(&leader, restarted.clone());
    traffic.add(leader_index, restarted).await;
    publish(topology.master(), version, 3..=5).await;
    traffic.wait_for(10).await;

    let survivor = topology.slaves[survivor_index].api();
    let upstream = eventually("the slave to report the link down", WITHIN, || async {
        let view = cluster_view(survivor).await;
        (view["upstream"]["connected"] == false).then(|| view["upstream"].clone())
    })
    .await;
    let last_contact: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(upstream["last_contact"].clone())
            .unwrap_or_else(|e| panic!("last_contact while cut: {e}: {upstream}"));
    assert!(
        last_contact <= chrono::Utc::now(),
        "last contact in the future: {upstream}"
    );
    assert_eq!(upstream["config_version"], version, "{upstream}");
    assert_eq!(
        metric(survivor, "turnus_upstream_connected").await,
        Some(0.0)
    );
    // Nothing came through the cut link.
    for slave in &topology.slaves {
        let served = slave.api().branch(BRANCH).await;
        assert_eq!(served["config_version"], version, "{}", slave.id());
    }
    traffic.wait_for(10).await;

    topology.heal_links();
    topology.wait_slaves_at(version + 5).await;
    eventually("the slave to report the link up", WITHIN, || async {
        let view = cluster_view(survivor).await;
        let last: Option<chrono::DateTime<chrono::Utc>> =
            serde_json::from_value(view["upstream"]["last_contact"].clone()).ok();
        (view["upstream"]["connected"] == true && last.is_some_and(|t| t > cut_at)).then_some(())
    })
    .await;
    traffic.wait_for(10).await;
    for slave in &topology.slaves {
        let api = slave.api();
        let gauge = metric(api, "turnus_config_version").await;
        assert_eq!(gauge, Some((version + 5) as f64), "{}", slave.id());
        assert_eq!(metric(api, "turnus_upstream_connected").await, Some(1.0));
    }

    let failures = traffic.finish().await;
    assert!(
        failures.is_empty(),
        "ticket operations refused: {failures:#?}"
    );
    let samples = sampler.finish().await;
    for slave in &topology.slaves {
        let seen = samples
            .get(slave.id())
            .unwrap_or_else(|| panic!("no samples of {}", slave.id()));
        let mut distinct = seen.clone();
        distinct.dedup();
        assert!(
            seen.windows(2).all(|pair| pair[0] <= pair[1]),
            "{} served an older version after a newer one: {distinct:?}",
            slave.id()
        );
        assert_eq!(
            seen.last(),
            Some(&(version + 5)),
            "{}: {distinct:?}",
            slave.id()
        );
    }
}

#[tokio::test]
async fn with_one_master_node_down_the_slaves_mirror_from_the_other() {
    let mut topology = Topology::start(Links::Proxied).await;
    let version = setup_branch(topology.master()).await;
    topology.wait_slaves_at(version).await;

    // The first URL is the one the slaves try first.
    topology.masters[0].kill();
    let survivor = topology.masters[1].api();
    for n in 1..=2 {
        let published = publish_change(survivor, n).await;
        assert_eq!(published, version + n as u64);
        topology.wait_slaves_at(published).await;
    }
    let view = cluster_view(topology.slaves[0].api()).await;
    assert_eq!(view["upstream"]["connected"], true, "{view}");
}

#[tokio::test]
async fn a_slave_refuses_administration_and_changes_nothing() {
    let topology = Topology::start(Links::Proxied).await;
    let master = topology.master();
    let version = setup_branch(master).await;
    topology.wait_slaves_at(version).await;

    let branch = format!("/api/v1/admin/branches/{BRANCH}");
    let service = format!("{branch}/services/cash");
    let counter = format!("{branch}/counters/c1");
    let writes: [(Method, &str, Option<Value>); 7] = [
        (
            Method::PUT,
            &branch,
            Some(json!({"name": "Renamed", "timezone": "Europe/Lisbon", "group": GROUP})),
        ),
        (
            Method::PUT,
            "/api/v1/admin/branches/braga",
            Some(json!({"name": "Braga", "timezone": "Europe/Lisbon", "group": GROUP})),
        ),
        (
            Method::PUT,
            &service,
            Some(json!({"name": "Renamed", "prefix": "R", "target_wait_s": 60})),
        ),
        (
            Method::PUT,
            &counter,
            Some(json!({"name": "Renamed", "services": [{"service": "cash", "priority": 2}]})),
        ),
        (Method::DELETE, &counter, None),
        (Method::DELETE, &service, None),
        (Method::DELETE, &branch, None),
    ];
    for slave in &topology.slaves {
        for (method, path, body) in &writes {
            let response = slave
                .api()
                .request(method.clone(), path, Some(ADMIN), body.clone())
                .await;
            assert_error(response, StatusCode::CONFLICT, "read-only-replica").await;
        }
    }

    assert_eq!(master.config_version().await, version);
    for slave in &topology.slaves {
        let served = slave.api().branch(BRANCH).await;
        assert_eq!(served["config_version"], version, "{served}");
        assert_eq!(served["name"], "Porto", "{served}");
        assert_eq!(served["services"][0]["name"], "Cash", "{served}");
        assert_eq!(
            served["counters"][0]["services"][0]["priority"], 1,
            "{served}"
        );
    }
    let unknown = topology.slaves[0]
        .api()
        .request(Method::GET, "/api/v1/branches/braga", Some(DISPLAY), None)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // Nor does a slave serve the peer protocol.
    let mirror = topology.slaves[0]
        .api()
        .request(
            Method::GET,
            &format!("/api/v1/mirror/config?group={GROUP}&since=0&wait_s=0"),
            Some(PEER),
            None,
        )
        .await;
    assert_error(mirror, StatusCode::CONFLICT, "read-only-replica").await;
}

/// `POST /api/v1/cluster/fence-check` on one node: the status and body.
async fn fence_check(api: &ApiClient) -> (StatusCode, Value) {
    let response = api
        .request(
            Method::POST,
            "/api/v1/cluster/fence-check",
            Some(ADMIN),
            None,
        )
        .await;
    let status = response.status();
    (
        status,
        response.json().await.expect("fence-check body is JSON"),
    )
}

#[tokio::test]
async fn a_deposed_slave_leader_is_fenced_and_mirroring_goes_on_under_the_new_one() {
    let topology = Topology::start(Links::Proxied).await;
    let master = topology.master();
    let version = setup_branch(master).await;
    topology.wait_slaves_at(version).await;
    let (old_leader, old_epoch) = topology.wait_slave_leader().await;
    let old = &topology.slaves[topology.slave_index(&old_leader)];
    let new = &topology.slaves[1 - topology.slave_index(&old_leader)];

    old.pause();
    let (_, new_epoch) = eventually("the other slave node to take the lease", WITHIN, || async {
        topology
            .slave_lease()
            .await
            .filter(|(node, _)| node == new.id())
    })
    .await;
    assert!(new_epoch > old_epoch);
    // A change while the old leader sleeps: its long-poll may hand it the
    // snapshot the moment it wakes, before it notices it was deposed.
    let during = publish_change(master, 1).await;
    eventually("the new leader to mirror the change", WITHIN, || async {
        (served_version(new.api()).await == Some(during)).then_some(())
    })
    .await;
    assert_eq!(process_state(old.pid()), Some('T'), "still stopped");
    old.resume();

    let (status, body) = fence_check(old.api()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "fenced", "{body}");
    let (status, body) = fence_check(new.api()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["epoch"], new_epoch, "{body}");
    assert!(metric(old.api(), "turnus_fenced_writes_rejected_total").await >= Some(1.0));

    let after = publish_change(master, 2).await;
    topology.wait_slaves_at(after).await;
    assert_eq!(
        topology.slave_lease().await,
        Some((new.id().to_owned(), new_epoch)),
        "the change was applied under the new leader's epoch, which never changed"
    );
    eventually("the old leader to rejoin as a follower", WITHIN, || async {
        (metric(old.api(), "turnus_leader").await == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(cluster_view(old.api()).await["leader"], new.id());
    let (status, _) = fence_check(old.api()).await;
    assert_eq!(status, StatusCode::CONFLICT, "the old epoch stays fenced");
}

/// `GET /api/v1/mirror/config` on an in-process master node.
async fn mirror(
    api: &ApiClient,
    query: &str,
    token: Option<&str>,
) -> (StatusCode, Option<Value>, Duration) {
    let started = Instant::now();
    let response = api
        .request(
            Method::GET,
            &format!("/api/v1/mirror/config?{query}"),
            token,
            None,
        )
        .await;
    let status = response.status();
    let body = response.json().await.ok();
    (status, body, started.elapsed())
}

/// The ids of a snapshot's branches, sorted.
fn branch_ids(body: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = body["branches"]
        .as_array()
        .unwrap_or_else(|| panic!("no branches in {body}"))
        .iter()
        .map(|b| b["id"].as_str().expect("branch id"))
        .collect();
    ids.sort_unstable();
    ids
}

#[actix_web::test]
async fn the_master_long_poll_answers_newer_versions_waits_and_wakes() {
    let app = spawn_app().await;
    let branch = |name: &str, group: Option<&str>| {
        let mut body = json!({"name": name, "timezone": "Europe/Lisbon"});
        if let Some(group) = group {
            body["group"] = json!(group);
        }
        body
    };
    app.put_branch("porto", branch("Porto", Some("north")))
        .await;
    let north_changed = version_of(
        &app.put_branch("braga", branch("Braga", Some("north")))
            .await,
    );
    app.put_branch("faro", branch("Faro", Some("south"))).await;
    let current = version_of(&app.put_branch("lisboa", branch("Lisboa", None)).await);

    // Older than the group's last change: the group's branches at once, and
    // only those, at the current version.
    for since in [0, north_changed - 1] {
        let query = format!("group=north&since={since}&wait_s=20");
        let (status, body, took) = mirror(&app, &query, Some(PEER)).await;
        let body = body.expect("a body");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["version"], current, "{body}");
        assert_eq!(branch_ids(&body), ["braga", "porto"], "{body}");
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
    // Changes to other groups' branches (faro, lisboa) do not wake north.
    let query = format!("group=north&since={north_changed}&wait_s=1");
    assert_eq!(
        mirror(&app, &query, Some(PEER)).await.0,
        StatusCode::NOT_MODIFIED
    );
    // A group without branches has nothing to mirror.
    let (status, _, _) = mirror(&app, "group=east&since=0&wait_s=0", Some(PEER)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // Nothing newer: 304 once wait_s has passed.
    let query = format!("group=north&since={current}&wait_s=1");
    let (status, _, took) = mirror(&app, &query, Some(PEER)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(
        took >= Duration::from_millis(950),
        "answered after {took:?}"
    );

    // A write during the wait ends it at once with the new version.
    let query = format!("group=north&since={current}&wait_s=20");
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = json!({"name": "Cash", "prefix": "C", "target_wait_s": 600});
        version_of(&app.put_service("porto", "cash", body).await)
    };
    let ((status, body, took), written) = futures::join!(mirror(&app, &query, Some(PEER)), write);
    let body = body.expect("a body");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], written, "{body}");
    assert!(took < Duration::from_secs(10), "woke after {took:?}");
    let porto = body["branches"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["id"] == "porto"))
        .unwrap_or_else(|| panic!("no porto in {body}"));
    assert_eq!(porto["services"][0]["id"], "cash", "{body}");

    // Tokens, roles and parameters.
    let query = "group=north&since=0&wait_s=0";
    assert_eq!(mirror(&app, query, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        mirror(&app, query, Some("no-such-token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    for token in [ADMIN, DISPLAY] {
        assert_eq!(
            mirror(&app, query, Some(token)).await.0,
            StatusCode::FORBIDDEN
        );
    }
    for (query, code) in [
        ("group=north&since=0&wait_s=31", "invalid-query"),
        ("group=North&since=0&wait_s=0", "invalid-identifier"),
        ("group=-x&since=0&wait_s=0", "invalid-identifier"),
        ("since=0&wait_s=0", "invalid-query"),
        ("group=north&since=abc", "invalid-query"),
    ] {
        let response = app
            .request(
                Method::GET,
                &format!("/api/v1/mirror/config?{query}"),
                Some(PEER),
                None,
            )
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
}
