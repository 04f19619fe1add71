//! `ScriptRunner`: runs turnus's real Lua scripts on a test Redis with an
//! injected "now", for the differential tests. The text is the production
//! text from `turnus::store::scripts` with only the clock swapped
//! (`Clock::Injected`: "now" in µs is one extra, last argument).

use std::collections::HashMap;

use redis::Script;
use turnus::domain::Id;
use turnus::store::keys;
use turnus::store::scripts::{by_name, Clock};

use super::redis::RedisServer;

pub struct ScriptRunner {
    conn: redis::Connection,
    scripts: HashMap<&'static str, Script>,
    next_branch: u64,
}

impl ScriptRunner {
    pub fn connect(redis: &RedisServer) -> ScriptRunner {
        let conn = redis::Client::open(redis.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis");
        ScriptRunner {
            conn,
            scripts: HashMap::new(),
            next_branch: 0,
        }
    }

    /// A branch no earlier case has used, so cases never share state.
    pub fn fresh_branch(&mut self) -> Id {
        self.next_branch += 1;
        super::id(&format!("b{}", self.next_branch))
    }

    /// Runs script `name` on `branch`'s keys with `args`, at `now_us`.
    pub fn run<T: redis::FromRedisValue>(
        &mut self,
        name: &'static str,
        branch: &Id,
        args: &[String],
        now_us: i64,
    ) -> T {
        let def = by_name(name).unwrap_or_else(|| panic!("no script {name}"));
        let script = self
            .scripts
            .entry(name)
            .or_insert_with(|| Script::new(&def.source(Clock::Injected)));
        let mut invocation = script.key(keys::branch_prefix(branch));
        if def.takes_idempotency_key() {
            // No Idempotency-Key, and so no fingerprint either.
            invocation.arg("").arg("");
        }
        for arg in args {
            invocation.arg(arg);
        }
        invocation.arg(now_us);
        invocation
            .invoke(&mut self.conn)
            .unwrap_or_else(|e| panic!("script {name} {args:?} at {now_us}: {e}"))
    }

    /// One field of a ticket's hash.
    pub fn ticket_field(&mut self, branch: &Id, id: &str, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(keys::branch_ticket(branch, id))
            .arg(field)
            .query(&mut self.conn)
            .expect("HGET")
    }

    /// A service's moving-average service time as the scripts stored it.
    pub fn service_time_s(&mut self, branch: &Id, service: &str) -> Option<f64> {
        let value: Option<String> = redis::cmd("HGET")
            .arg(keys::branch_service_times(branch))
            .arg(service)
            .query(&mut self.conn)
            .expect("HGET");
        value.map(|v| v.parse().expect("a number"))
    }
}
