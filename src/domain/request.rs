//! What a ticket or counter request carries besides its body: the client's
//! `Idempotency-Key` (API.md "Retries") and the moment it arrived, from which
//! its deadline follows. Pure: the instants are read by the HTTP edge and
//! passed in.

use std::fmt;
use std::time::{Duration, Instant};

use super::DomainError;

/// How long a repeated key returns the first answer (API.md: 24 h).
pub const IDEMPOTENCY_TTL_S: u64 = 86_400;

/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters (no
/// spaces or control characters), so it can be stored in a Redis key name
/// and logged without escaping. UUIDs and ULIDs fit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<IdempotencyKey, DomainError> {
        let fits = !value.is_empty()
            && value.len() <= IDEMPOTENCY_KEY_MAX_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        if fits {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(DomainError::Invalid {
                problems: vec![format!(
                    "Idempotency-Key: use 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters (no spaces)"
                )],
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ticket or counter request as it reaches its ticket queue.
#[derive(Debug, Clone)]
pub struct RequestTag {
    /// The client's key, when it sent one.
    pub key: Option<IdempotencyKey>,
    /// When the node took the request in (or, after the node itself was
    /// stalled, the start of that stall: the request may have waited in the
    /// kernel's buffers all that time).
    pub received: Instant,
    /// How old the request may be when its turn comes.
    pub max_age: Duration,
}

impl RequestTag {
    /// Whether the request has outlived its deadline at `now`: its client
    /// has most likely given up, so performing it would change state no one
    /// sees (the retry, with the same key, is the one to serve).
    pub fn expired_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.received) > self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        for good in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "k:1/2{x}",
            &"x".repeat(255),
        ] {
            assert_eq!(
                IdempotencyKey::parse(good).map(|k| k.0),
                Ok(good.to_owned())
            );
        }
        for bad in ["", "with space", "tab\t", "é", "nl\n", &"x".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_request_expires_only_after_its_max_age() {
        let received = Instant::now();
        let tag = RequestTag {
            key: None,
            received,
            max_age: Duration::from_secs(3),
        };
        assert!(!tag.expired_at(received));
        assert!(!tag.expired_at(received + Duration::from_secs(3)));
        assert!(tag.expired_at(received + Duration::from_millis(3001)));
    }
}
