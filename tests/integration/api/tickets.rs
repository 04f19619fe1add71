//! Tickets: issuing and numbering, calling by the matrix rule, the counter
//! actions, queues and the display board.

use serde_json::json;
use turnus::domain::estimate::DEFAULT_SERVICE_S;

use crate::support::app::{spawn_app, TestApp};

/// A branch like a bank's: `c1` calls cash before accounts, `c2` treats
/// both alike, `c3` only calls loans.
pub(super) async fn bank() -> TestApp {
    let app = spawn_app().await;
    app.setup_branch(
        "main",
        &[("loans", "L"), ("cash", "C"), ("accounts", "A")],
        &[
            ("c1", &[("cash", 1), ("accounts", 2)]),
            ("c2", &[("cash", 1), ("accounts", 1)]),
            ("c3", &[("loans", 1)]),
        ],
    )
    .await;
    app
}

fn estimate(position: u64, counters: u64) -> u64 {
    (position as f64 * DEFAULT_SERVICE_S / counters as f64).ceil() as u64
}

#[actix_web::test]
async fn issuing_numbers_tickets_and_tells_position_and_estimate() {
    let app = bank().await;
    let first = app.issue("main", "loans").await;
    assert_eq!(
        first.number, "L001",
        "prefix and the number padded to the width of last (999)"
    );
    assert_eq!(
        (first.branch.as_str(), first.service.as_str()),
        ("main", "loans")
    );
    assert_eq!(first.status, "waiting");
    assert_eq!(first.position, Some(1));
    assert_eq!(
        (first.called_at, first.finished_at, first.counter.clone()),
        (None, None, None)
    );
    // No history yet: the default service time over the one counter (c3)
    // that serves loans.
    assert_eq!(first.estimated_wait_s, Some(estimate(1, 1)));

    let second = app.issue("main", "loans").await;
    assert_eq!(second.number, "L002");
    assert_eq!(second.position, Some(2));
    assert_eq!(second.estimated_wait_s, Some(estimate(2, 1)));
    assert_ne!(first.id, second.id);
    assert!(second.issued_at >= first.issued_at);

    // Two counters serve cash: the wait is shared between them.
    let cash = app.issue("main", "cash").await;
    assert_eq!((cash.number.as_str(), cash.position), ("C001", Some(1)));
    assert_eq!(cash.estimated_wait_s, Some(estimate(1, 2)));

    // Reading a ticket shows where it is now.
    let read = app.ticket("main", &second.id).await;
    assert_eq!(
        (read.number.as_str(), read.status.as_str(), read.position),
        ("L002", "waiting", Some(2))
    );
    app.call("main", "c3").await.expect("c3 calls L001");
    let read = app.ticket("main", &second.id).await;
    assert_eq!(read.position, Some(1), "one ahead of it was called");
    let called = app.ticket("main", &first.id).await;
    assert_eq!(called.status, "called");
    assert_eq!(
        (called.position, called.estimated_wait_s),
        (None, None),
        "only a waiting ticket has a position"
    );
}

#[actix_web::test]
async fn numbers_are_padded_to_the_range_and_wrap_within_it() {
    let app = spawn_app().await;
    app.setup_branch("main", &[], &[]).await;
    app.put_service(
        "main",
        "wrap",
        json!({"name": "Wrap", "prefix": "A", "first": 5, "last": 7}),
    )
    .await;
    app.put_service(
        "main",
        "wide",
        json!({"name": "Wide", "prefix": "WB", "first": 1, "last": 9999}),
    )
    .await;
    app.put_service(
        "main",
        "biz",
        json!({"name": "Business", "prefix": "E", "first": 100, "last": 499}),
    )
    .await;

    let mut numbers = Vec::new();
    for _ in 0..4 {
        numbers.push(app.issue("main", "wrap").await.number);
    }
    assert_eq!(numbers, ["A5", "A6", "A7", "A5"]);
    assert_eq!(app.issue("main", "wide").await.number, "WB0001");
    assert_eq!(app.issue("main", "wide").await.number, "WB0002");
    assert_eq!(app.issue("main", "biz").await.number, "E100");
}

#[actix_web::test]
async fn calls_follow_the_matrix_rule() {
    let app = bank().await;

    // A smaller priority number first, even over an older ticket.
    let accounts = app.issue("main", "accounts").await;
    let cash = app.issue("main", "cash").await;
    assert_eq!(
        app.call("main", "c1").await.expect("cash waits").id,
        cash.id
    );
    assert_eq!(
        app.call("main", "c1").await.expect("accounts waits").id,
        accounts.id
    );

    // Equal priority: the ticket that has waited longest, whatever its service.
    let accounts = app.issue("main", "accounts").await;
    let cash = app.issue("main", "cash").await;
    assert_eq!(
        app.call("main", "c2").await.expect("two wait").id,
        accounts.id
    );
    assert_eq!(app.call("main", "c2").await.expect("one waits").id, cash.id);

    // Within one service, first come first served.
    let early = app.issue("main", "cash").await;
    let late = app.issue("main", "cash").await;
    assert_eq!(app.call("main", "c2").await.expect("two wait").id, early.id);
    assert_eq!(app.call("main", "c2").await.expect("one waits").id, late.id);

    // A counter never calls a service outside its row.
    let loans = app.issue("main", "loans").await;
    assert_eq!(
        app.call("main", "c1").await,
        None,
        "c1 does not serve loans"
    );
    assert_eq!(
        app.call("main", "c2").await,
        None,
        "c2 does not serve loans"
    );
    let called = app.call("main", "c3").await.expect("c3 serves loans");
    assert_eq!(called.id, loans.id);
    assert_eq!(called.status, "called");
    assert_eq!(called.counter.as_deref(), Some("c3"));
    assert!(called.called_at.is_some());

    // Nothing left: 204.
    assert_eq!(app.call("main", "c3").await, None);
}

#[actix_web::test]
async fn a_call_finishes_the_previous_ticket_as_served() {
    let app = bank().await;
    let first = app.issue("main", "cash").await;
    let second = app.issue("main", "cash").await;
    assert_eq!(app.call("main", "c1").await.expect("first").id, first.id);
    assert_eq!(app.call("main", "c1").await.expect("second").id, second.id);

    let served = app.ticket("main", &first.id).await;
    assert_eq!(served.status, "served");
    assert_eq!(served.counter.as_deref(), Some("c1"));
    assert!(served.finished_at.is_some() && served.called_at.is_some());
    assert!(served.finished_at >= served.called_at);

    // Also when nothing is waiting any more.
    assert_eq!(app.call("main", "c1").await, None);
    assert_eq!(app.ticket("main", &second.id).await.status, "served");
}

#[actix_web::test]
async fn recall_finish_and_no_show_end_or_repeat_the_current_ticket() {
    let app = bank().await;
    let a = app.issue("main", "cash").await;
    let b = app.issue("main", "cash").await;

    app.call("main", "c1").await.expect("a");
    app.call("main", "c2").await.expect("b");
    let board = app.display("main").await;
    assert_eq!(board[0].number, b.number, "newest call first");

    // Recall: the same ticket, announced again at the top of the board.
    let recalled = app.counter_action("main", "c1", "recall").await;
    assert_eq!(
        (recalled.id.as_str(), recalled.status.as_str()),
        (a.id.as_str(), "called")
    );
    let board = app.display("main").await;
    assert_eq!(
        board
            .iter()
            .map(|e| (e.number.as_str(), e.counter.as_str()))
            .collect::<Vec<_>>(),
        [(a.number.as_str(), "c1"), (b.number.as_str(), "c2")],
        "a recalled ticket moves to the top, once"
    );
    assert!(board[0].called_at >= board[1].called_at);

    // Finish: served.
    let finished = app.counter_action("main", "c1", "finish").await;
    assert_eq!(
        (finished.id.as_str(), finished.status.as_str()),
        (a.id.as_str(), "served")
    );
    assert!(finished.finished_at.is_some());
    assert_eq!(app.ticket("main", &a.id).await.status, "served");

    // No-show.
    let missing = app.counter_action("main", "c2", "no-show").await;
    assert_eq!(
        (missing.id.as_str(), missing.status.as_str()),
        (b.id.as_str(), "no_show")
    );
    let read = app.ticket("main", &b.id).await;
    assert_eq!(read.status, "no_show");
    assert!(read.finished_at.is_some());
}

#[actix_web::test]
async fn a_transferred_ticket_keeps_its_place_by_issue_time() {
    let app = bank().await;
    // Issued before anything waits for cash.
    let loan = app.issue("main", "loans").await;
    let cash_later = app.issue("main", "cash").await;

    assert_eq!(app.call("main", "c3").await.expect("loan").id, loan.id);
    let moved = app.transfer("main", "c3", "cash").await;
    assert_eq!(moved.id, loan.id);
    assert_eq!(
        (moved.service.as_str(), moved.status.as_str()),
        ("cash", "waiting")
    );
    assert_eq!(moved.number, loan.number, "a ticket keeps its number");
    assert_eq!(
        moved.position,
        Some(1),
        "ahead of the cash ticket issued after it"
    );
    assert_eq!((moved.counter, moved.called_at), (None, None));

    let queues = app.queues("main").await;
    let waiting = |service: &str| {
        queues
            .iter()
            .find(|q| q.service == service)
            .expect("listed")
            .waiting
    };
    assert_eq!((waiting("loans"), waiting("cash")), (0, 2));

    // The transferring counter no longer has it; a cash counter calls it
    // before the cash ticket that was issued later.
    assert_eq!(app.call("main", "c3").await, None);
    assert_eq!(
        app.call("main", "c1").await.expect("moved ticket").id,
        loan.id
    );
    assert_eq!(
        app.call("main", "c1").await.expect("later cash").id,
        cash_later.id
    );
}

#[actix_web::test]
async fn queues_show_waiting_counts_and_estimates() {
    let app = bank().await;
    for service in ["loans", "loans", "cash"] {
        app.issue("main", service).await;
    }
    let mut queues = app.queues("main").await;
    queues.sort_by(|a, b| a.service.cmp(&b.service));
    let summary: Vec<(&str, u64)> = queues
        .iter()
        .map(|q| (q.service.as_str(), q.waiting))
        .collect();
    assert_eq!(summary, [("accounts", 0), ("cash", 1), ("loans", 2)]);
    let accounts = &queues[0];
    assert_eq!(accounts.longest_wait_s, 0, "nobody waits");
    // What a ticket issued now would wait: behind everyone already waiting.
    assert_eq!(
        queues[2].estimated_wait_s,
        estimate(3, 1),
        "loans: 2 waiting, 1 counter"
    );
    assert_eq!(
        queues[1].estimated_wait_s,
        estimate(2, 2),
        "cash: 1 waiting, 2 counters"
    );
    // longest_wait_s counts whole seconds since the oldest ticket's issue;
    // it cannot be above the time this test has run.
    assert!(queues[2].longest_wait_s < 600);

    app.call("main", "c3").await.expect("a loan");
    app.call("main", "c3").await.expect("a loan");
    let queues = app.queues("main").await;
    let loans = queues
        .iter()
        .find(|q| q.service == "loans")
        .expect("loans listed");
    assert_eq!((loans.waiting, loans.longest_wait_s), (0, 0));
}

#[actix_web::test]
async fn the_display_shows_the_latest_ten_calls_newest_first() {
    let app = bank().await;
    assert!(app.display("main").await.is_empty());
    let mut numbers = Vec::new();
    for _ in 0..12 {
        numbers.push(app.issue("main", "cash").await.number);
    }
    for _ in 0..12 {
        app.call("main", "c1").await.expect("a cash ticket");
    }
    let board = app.display("main").await;
    let shown: Vec<&str> = board.iter().map(|e| e.number.as_str()).collect();
    let expected: Vec<&str> = numbers.iter().rev().take(10).map(String::as_str).collect();
    assert_eq!(shown, expected);
    assert!(board.iter().all(|e| e.counter == "c1"));
    assert!(board.windows(2).all(|w| w[0].called_at >= w[1].called_at));
}
