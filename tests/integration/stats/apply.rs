//! The apply script (Lua, on a real Redis) against the reference model
//! (`domain::stats::Rollups`): generated event streams shipped in batches
//! that are resent, overlap and arrive late must leave exactly the rollups
//! the model has after applying every event once. The watermark rule is
//! kept twice (Lua compares stream ids, Rust generates them in order), so it
//! is checked where it runs.

use std::collections::BTreeMap;

use turnus::domain::stats::{
    day_totals, event_ops, waiting_by_service, RollupKey, Rollups, StreamId,
};
use turnus::domain::{Branch, Id, TicketEvent, TicketStatus};
use turnus::settings::RedisSettings;
use turnus::store::stats::{ApplyOutcome, EventOps, LiveWanted, Sender};
use turnus::store::{keys, Store};

use crate::support::redis::RedisServer;

pub fn test_branch(id: &str) -> Branch {
    let mut b: Branch = serde_json::from_value(serde_json::json!({
        "id": id, "name": "B", "timezone": "Europe/Lisbon", "services": [], "counters": []
    }))
    .expect("branch document");
    for (service, target) in [("loans", 120), ("cash", 600)] {
        b.services.push(
            serde_json::from_value(serde_json::json!({
                "id": service, "name": service, "prefix": "A", "target_wait_s": target,
                "first": 1, "last": 999
            }))
            .expect("service document"),
        );
    }
    b
}

/// An open ticket: id, service, issued ms, (counter, called ms) while
/// called, whether it was ever called.
type Open = (String, String, i64, Option<(String, i64)>, bool);

/// A random but consistent ticket history: issues, first calls, calls after
/// transfers, serves, no-shows, closes; ids in stream order.
pub fn generate(seed: u64, n: usize) -> Vec<(StreamId, TicketEvent)> {
    // A different time of day per seed: day and hour boundaries get crossed.
    generate_from(
        seed,
        n,
        1_780_000_000_000 + (seed as i64 * 7_919_317) % 86_400_000,
    )
}

/// [`generate`], starting at `start_ms` (one event every minute on average).
pub fn generate_from(seed: u64, n: usize, start_ms: i64) -> Vec<(StreamId, TicketEvent)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut now: i64 = start_ms;
    let mut open: Vec<Open> = Vec::new();
    let (mut out, mut next_id) = (Vec::new(), 0u64);
    let mut seq = 0;
    while out.len() < n {
        let step = rng.i64(0..120_000);
        seq = if step == 0 { seq + 1 } else { 0 };
        now += step;
        let id = StreamId {
            ms: now as u64,
            seq,
        };
        let base = |kind: &str, t: &Open| TicketEvent {
            kind: serde_json::from_value(serde_json::Value::String(kind.into()))
                .expect("event kind"),
            id: t.0.clone(),
            service: t.1.clone(),
            number: "A001".into(),
            status: TicketStatus::Waiting,
            issued_ms: t.2,
            called_ms: t.3.as_ref().map(|c| c.1),
            finished_ms: None,
            counter: t.3.as_ref().map(|c| c.0.clone()),
            from_service: None,
            from_counter: None,
            from_called_ms: None,
            first_call: false,
            counter_free_ms: None,
            waiting_since_ms: None,
            ts_ms: now,
        };
        let pick = rng.usize(0..10);
        if open.is_empty() || pick < 3 {
            next_id += 1;
            let service = if rng.bool() { "loans" } else { "cash" };
            let t = (next_id.to_string(), service.to_owned(), now, None, false);
            out.push((id, base("ticket-issued", &t)));
            open.push(t);
            continue;
        }
        let i = rng.usize(0..open.len());
        let t = &mut open[i];
        let event = match (&t.3, pick) {
            (None, 3..=7) => {
                t.3 = Some((format!("c{}", rng.u8(1..4)), now));
                let first = !t.4;
                t.4 = true;
                // Idle time (domain::counter_idle): F and W within the
                // hour before, sometimes over the open window or unknown.
                let free = (rng.u8(0..8) > 0).then(|| now - rng.i64(0..2_400_000));
                TicketEvent {
                    first_call: first,
                    counter_free_ms: free,
                    waiting_since_ms: Some(now - rng.i64(0..3_600_000)),
                    ..base("ticket-called", t)
                }
            }
            (None, _) => {
                let e = base("ticket-closed", t);
                open.remove(i);
                e
            }
            (Some(_), 3..=5) => {
                let e = base(
                    if pick == 5 {
                        "ticket-no-show"
                    } else {
                        "ticket-served"
                    },
                    t,
                );
                open.remove(i);
                e
            }
            (Some((counter, called)), 6) => {
                let to = if t.1 == "loans" { "cash" } else { "loans" };
                let e = TicketEvent {
                    service: to.into(),
                    called_ms: None,
                    counter: None,
                    from_service: Some(t.1.clone()),
                    from_counter: Some(counter.clone()),
                    from_called_ms: Some(*called),
                    ..base("ticket-transferred", t)
                };
                t.1 = to.into();
                t.3 = None;
                e
            }
            (Some(_), _) => base("ticket-recalled", t),
        };
        out.push((id, event));
    }
    out
}

pub fn ops_of(branch: &Branch, events: &[(StreamId, TicketEvent)]) -> Vec<EventOps> {
    events
        .iter()
        .map(|(id, e)| EventOps {
            id: *id,
            ops: event_ops(branch, e),
        })
        .collect()
}

/// Every rollup key the model has, read back from Redis in the model's shape.
pub async fn read_rollups(url: &str, branch: &Id, model: &Rollups) -> Rollups {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut out = Rollups::default();
    let mut hash_keys: Vec<RollupKey> = model.hashes.keys().cloned().collect();
    hash_keys.push(RollupKey::Current);
    for key in hash_keys {
        let h: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::branch_rollup(branch, &key))
            .query_async(&mut conn)
            .await
            .expect("HGETALL");
        if !h.is_empty() {
            out.hashes.insert(key, h);
        }
    }
    // Every service's waiting set Redis has (not only the model's), so a
    // set the model lacks shows up as a difference.
    let prefix = keys::branch_rollup(branch, &RollupKey::Waiting(String::new()));
    let names: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    for name in names {
        let service = name[prefix.len()..].to_owned();
        let z: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&name)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .expect("ZRANGE");
        if !z.is_empty() {
            out.zsets.insert(
                RollupKey::Waiting(service),
                z.into_iter().map(|(m, s)| (m, s as i64)).collect(),
            );
        }
    }
    out
}

#[actix_web::test]
async fn lua_apply_matches_the_reference_model_under_resends_and_overlaps() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("north").expect("id");
    for seed in 1..=4u64 {
        let branch_id = Id::parse(&format!("b{seed}")).expect("id");
        let branch = test_branch(branch_id.as_str());
        let events = generate(seed, 400);
        let all = ops_of(&branch, &events);
        let mut model = Rollups::default();
        all.iter().for_each(|e| model.apply(&e.ops));

        // Batches of random size; each sent once or twice, sometimes an
        // older batch again after newer ones, sometimes overlapping.
        let mut rng = fastrand::Rng::with_seed(seed * 31);
        let mut start = 0;
        let mut sent: Vec<(usize, usize)> = Vec::new();
        while start < all.len() {
            let end = (start + rng.usize(1..60)).min(all.len());
            let from = if rng.bool() && start > 10 {
                start - rng.usize(1..10)
            } else {
                start
            };
            let times = if rng.usize(0..4) == 0 { 2 } else { 1 };
            let ship = |range: std::ops::Range<usize>| {
                store.apply_stats(
                    &branch_id,
                    Sender::Peer {
                        group: &group,
                        epoch: 3,
                        after: None,
                        lost: 0,
                    },
                    "src-a",
                    0,
                    &all[range],
                )
            };
            for _ in 0..times {
                let outcome = ship(from..end).await.expect("apply");
                let ApplyOutcome::Applied { through, .. } = outcome else {
                    panic!("seed {seed}: {outcome:?}");
                };
                assert_eq!(
                    through,
                    Some(all[end - 1].id),
                    "the watermark is the batch's last id"
                );
            }
            sent.push((from, end));
            if rng.usize(0..5) == 0 {
                let (a, b) = sent[rng.usize(0..sent.len())];
                ship(a..b).await.expect("late resend");
            }
            start = end;
        }
        let stored = read_rollups(&redis.url(), &branch_id, &model).await;
        assert_eq!(
            stored, model,
            "seed {seed}: Redis rollups differ from the model"
        );
        let meta = store.stats_meta(&branch_id).await.expect("meta");
        assert_eq!(
            meta.applied,
            all.len() as u64,
            "each event applied exactly once"
        );
    }
}

/// How many scripts Redis has run so far (`INFO commandstats`).
async fn scripts_run(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// A batch whose folded ops exceed one script's bound goes in several
/// scripts, each with its part of the watermark; resending an overlapping
/// big batch then applies only what is new, across those parts.
#[actix_web::test]
async fn a_batch_too_big_for_one_script_is_split_and_counted_once() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("north").expect("id");
    let branch_id = Id::parse("big").expect("id");
    let branch = test_branch("big");
    let all = ops_of(&branch, &generate(11, 6_000));
    let mut model = Rollups::default();
    all.iter().for_each(|e| model.apply(&e.ops));
    let peer = Sender::Peer {
        group: &group,
        epoch: 1,
        after: None,
        lost: 0,
    };

    // (an empty batch first, so the script is loaded before counting)
    store
        .apply_stats(&branch_id, peer, "src", 0, &[])
        .await
        .expect("apply");
    let before = scripts_run(&redis.url()).await;
    let first = store
        .apply_stats(&branch_id, peer, "src", 0, &all[..4_000])
        .await
        .expect("apply");
    assert_eq!(
        first,
        ApplyOutcome::Applied {
            through: Some(all[3_999].id),
            applied: 4_000,
            counted: 4_000,
            lost: 0
        }
    );
    let scripts = scripts_run(&redis.url()).await - before;
    assert!(
        scripts >= 2,
        "4,000 events in {scripts} script(s): the cost bound did not split the batch"
    );
    let again = store
        .apply_stats(&branch_id, peer, "src", 0, &all[1_000..])
        .await
        .expect("apply");
    assert_eq!(
        again,
        ApplyOutcome::Applied {
            through: Some(all[5_999].id),
            applied: 2_000,
            counted: 6_000,
            lost: 0
        }
    );
    assert_eq!(read_rollups(&redis.url(), &branch_id, &model).await, model);
    let meta = store.stats_meta(&branch_id).await.expect("meta");
    assert_eq!(meta.applied, 6_000, "each event applied exactly once");
}

#[actix_web::test]
async fn a_new_source_is_counted_and_a_stale_epoch_changes_nothing() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("north").expect("id");
    let branch_id = Id::parse("b1").expect("id");
    let branch = test_branch("b1");
    let events = ops_of(&branch, &generate(7, 40));
    let peer = |epoch| Sender::Peer {
        group: &group,
        epoch,
        after: None,
        lost: 0,
    };
    store
        .apply_stats(&branch_id, peer(5), "old", 0, &events[..20])
        .await
        .expect("apply");

    // The slave's store was replaced: its new history reuses low stream ids
    // under a new source identity. Nothing of it may be dropped.
    let outcome = store
        .apply_stats(&branch_id, peer(5), "new", 0, &events[..20])
        .await
        .expect("apply");
    assert!(
        matches!(outcome, ApplyOutcome::Applied { applied: 20, .. }),
        "{outcome:?}"
    );

    let before = store.stats_meta(&branch_id).await.expect("meta");
    let mut model = Rollups::default();
    events[..20].iter().for_each(|e| model.apply(&e.ops));
    let snapshot = read_rollups(&redis.url(), &branch_id, &model).await;
    let outcome = store
        .apply_stats(&branch_id, peer(4), "old", 0, &events[20..])
        .await
        .expect("apply");
    assert_eq!(outcome, ApplyOutcome::StaleEpoch { highest: 5 });
    assert_eq!(
        read_rollups(&redis.url(), &branch_id, &model).await,
        snapshot
    );
    assert_eq!(
        store.stats_meta(&branch_id).await.expect("meta").applied,
        before.applied
    );
}

/// The summary's reads (day totals with `HMGET`, each service's waiting
/// count and head) give what the whole day and waiting sets of the model
/// give, on every day of generated histories over two services.
#[actix_web::test]
async fn the_summary_reads_agree_with_the_whole_rollups() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let mut services_waiting = 0;
    for seed in 1..=3u64 {
        let branch_id = Id::parse(&format!("s{seed}")).expect("id");
        let branch = test_branch(branch_id.as_str());
        // Fewer events than the other test, so tickets are left waiting.
        let all = ops_of(&branch, &generate(seed, 150));
        let mut model = Rollups::default();
        all.iter().for_each(|e| model.apply(&e.ops));
        store
            .apply_stats(
                &branch_id,
                Sender::Local { group: &branch_id },
                "src",
                0,
                &all,
            )
            .await
            .expect("apply");
        let members = model
            .zsets
            .values()
            .flat_map(|z| z.iter().map(|(m, s)| (m.as_str(), *s)));
        let waiting = waiting_by_service(members);
        services_waiting += waiting.len();
        for (key, fields) in &model.hashes {
            let RollupKey::Day(day) = key else { continue };
            let wanted = LiveWanted {
                branch: branch_id.clone(),
                today: *day,
                services: vec!["loans".into(), "cash".into()],
            };
            let live = store.stats_live(&[wanted]).await.expect("live");
            let whole = day_totals(
                fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.parse().expect("n"))),
            );
            let read =
                turnus::domain::stats::totals_of(live[0].day.iter().map(|(k, v)| (k.as_str(), *v)));
            assert_eq!(
                (
                    read.issued,
                    read.called,
                    read.served,
                    read.no_show,
                    read.sla
                ),
                (
                    whole.issued,
                    whole.called,
                    whole.served,
                    whole.no_show,
                    whole.sla
                ),
                "seed {seed} day {day}"
            );
            assert_eq!(live[0].waiting, waiting, "seed {seed}: waiting per service");
        }
    }
    assert!(services_waiting > 0, "the histories left nothing waiting");
}

/// Reconciliation where it runs: a batch that continues above the store's
/// watermark (the master was restored from an older backup) applies
/// nothing and answers the watermark; a batch that declares the events in
/// between lost is applied and the loss recorded once, resends included.
#[actix_web::test]
async fn a_batch_above_the_watermark_is_refused_unless_the_gap_is_declared() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("north").expect("id");
    let branch_id = Id::parse("b1").expect("id");
    let events = ops_of(&test_branch("b1"), &generate(11, 60));
    let id = |i: usize| Some(events[i].id);
    let peer = |after: Option<StreamId>, lost| Sender::Peer {
        group: &group,
        epoch: 1,
        after,
        lost,
    };
    let start = Some(StreamId { ms: 0, seq: 0 });
    let first = store
        .apply_stats(&branch_id, peer(start, 0), "s", 0, &events[..20])
        .await
        .expect("apply");
    assert!(
        matches!(
            first,
            ApplyOutcome::Applied {
                applied: 20,
                counted: 20,
                lost: 0,
                ..
            }
        ),
        "{first:?}"
    );
    // What the first 20 events make, and every key any of the 60 touches.
    let (mut model, mut every_key) = (Rollups::default(), Rollups::default());
    for (i, event) in events.iter().enumerate() {
        if i < 20 {
            model.apply(&event.ops);
        }
        every_key.apply(&event.ops);
    }
    assert_eq!(
        read_rollups(&redis.url(), &branch_id, &every_key).await,
        model
    );

    // Continues from event 29: events 20..=29 would be missing.
    let behind = store
        .apply_stats(&branch_id, peer(id(29), 0), "s", 0, &events[30..40])
        .await
        .expect("apply");
    assert_eq!(
        behind,
        ApplyOutcome::Behind {
            through: id(19),
            counted: 20
        }
    );
    assert_eq!(
        read_rollups(&redis.url(), &branch_id, &every_key).await,
        model,
        "a refused batch changes nothing"
    );
    // Resent from the watermark: applied.
    let resent = store
        .apply_stats(&branch_id, peer(id(19), 0), "s", 0, &events[20..40])
        .await
        .expect("apply");
    assert!(
        matches!(
            resent,
            ApplyOutcome::Applied {
                applied: 20,
                counted: 40,
                ..
            }
        ),
        "{resent:?}"
    );

    // Events 40..=44 are gone on the sender: declared lost, recorded once.
    for round in 0..2 {
        let outcome = store
            .apply_stats(&branch_id, peer(id(44), 5), "s", 0, &events[45..50])
            .await
            .expect("apply");
        let expected_lost = if round == 0 { 5 } else { 0 };
        let expected_applied = if round == 0 { 5 } else { 0 };
        assert_eq!(
            outcome,
            ApplyOutcome::Applied {
                through: id(49),
                applied: expected_applied,
                counted: 50,
                lost: expected_lost,
            },
            "round {round}"
        );
    }
    // An empty batch declaring a loss moves the watermark to `after`.
    let empty = store
        .apply_stats(&branch_id, peer(id(54), 5), "s", 0, &[])
        .await
        .expect("apply");
    assert_eq!(
        empty,
        ApplyOutcome::Applied {
            through: id(54),
            applied: 0,
            counted: 55,
            lost: 5
        }
    );
    let meta = store.stats_meta(&branch_id).await.expect("meta");
    assert_eq!((meta.applied, meta.lost), (45, 10));
}
