//! The web pages in a real headless Chromium against real nodes: the
//! kiosk's button issues a ticket, the counter page calls it, the display
//! board shows it live, the customer's phone follows it, the dashboard shows
//! a second branch; the display recovers by itself when its node dies; every
//! page passes axe-core's WCAG 2.1 AA rules, reflows at 200 % zoom and
//! respects reduced motion. `pages::screenshots` (ignored) writes
//! `docs/screenshots/`.
//!
//! One browser session per test, reused across the pages of that test.

mod a11y;
mod flow;
mod recovery;
mod screenshots;
mod serving;

use serde_json::json;

use crate::support::api::ApiClient;

/// A bank branch named with markup, which every page must show as text.
pub const HOSTILE_NAME: &str = "<script>window.pwned=1</script> & Co";

/// `main` (cash, accounts; counters c1, c2) and `second`, whose name is
/// [`HOSTILE_NAME`] and whose one service has a target wait of 1 s.
pub async fn two_branches(api: &ApiClient) {
    branch(
        api,
        "main",
        "Lisbon, Avenida",
        &[
            ("cash", "Cash and payments", "C", 600),
            ("accounts", "Accounts", "A", 600),
        ],
        &[
            ("c1", "Counter 1", &[("cash", 1), ("accounts", 2)]),
            ("c2", "Counter 2", &[("accounts", 1)]),
        ],
    )
    .await;
    branch(
        api,
        "second",
        HOSTILE_NAME,
        // A target of one second: its waiting customers are soon over it.
        &[("loans", "Loans", "L", 1)],
        &[("c9", "Counter 9", &[("loans", 1)])],
    )
    .await;
}

type CounterRow<'a> = (&'a str, &'a str, &'a [(&'a str, u32)]);

async fn branch(
    api: &ApiClient,
    id: &str,
    name: &str,
    services: &[(&str, &str, &str, u64)],
    counters: &[CounterRow<'_>],
) {
    api.put_branch(id, json!({"name": name, "timezone": "Europe/Lisbon"}))
        .await;
    for (service, service_name, prefix, target) in services {
        let body = json!({"name": service_name, "prefix": prefix, "target_wait_s": target});
        api.put_service(id, service, body).await;
    }
    for (counter, counter_name, row) in counters {
        let services: Vec<_> = row
            .iter()
            .map(|(s, p)| json!({"service": s, "priority": p}))
            .collect();
        api.request(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/branches/{id}/counters/{counter}"),
            Some(crate::support::ADMIN),
            Some(json!({"name": counter_name, "services": services})),
        )
        .await;
    }
}
