//! Identifiers of branches, services, counters, players and groups.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A validated identifier: `^[a-z0-9][a-z0-9-]{0,62}$`.
///
/// Identifiers end up in Redis key names and URL paths, so the narrow alphabet
/// is what keeps both safe; the only way to get one is [`Id::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// Validates `value` as an identifier.
    pub fn parse(value: &str) -> Result<Id, DomainError> {
        let bytes = value.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= 63 {
            Ok(Id(value.to_owned()))
        } else {
            Err(DomainError::InvalidId {
                value: value.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Id::parse(&value)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Hash and Eq of `Id` are those of its string, so maps keyed by `Id` can be
// searched with a `&str`.
impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_rejects_by_the_contract() {
        for ok in ["a", "0", "main", "branch-7", "a-", &"x".repeat(63)] {
            assert!(Id::parse(ok).is_ok(), "{ok:?} should be valid");
        }
        for bad in [
            "",
            "-a",
            "Main",
            "a_b",
            "a b",
            "a/b",
            "..",
            "é",
            &"x".repeat(64),
            "a\n",
        ] {
            assert!(Id::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_pattern(s in "\\PC{0,70}") {
            let valid = !s.is_empty()
                && s.len() <= 63
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            prop_assert_eq!(Id::parse(&s).is_ok(), valid);
        }
    }
}
