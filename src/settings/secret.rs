//! Values that must never reach a log, an error message or `config print`
//! in clear: bearer tokens ([`Secret`]) and URLs that may carry
//! `user:password@` ([`SecretUrl`]).
//!
//! Their `Debug`, `Display` and `Serialize` mask the secret part, so a
//! derived `Debug` of a settings struct, a `tracing` field or the TOML of
//! `config print` cannot leak it; code that really needs the value asks for
//! it by name with `expose()`. This module owns masking only; whether a
//! value is acceptable is checked in `settings::check`.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// What a masked secret shows.
pub const MASK: &str = "********";

/// A secret string such as a bearer token.
#[derive(Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must compare or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            f.write_str(MASK)
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A URL that may carry credentials (`rediss://user:password@host:6380`).
/// Shown with the user information masked and everything else, the scheme
/// included, as given.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> SecretUrl {
        SecretUrl(value.into())
    }

    /// The URL with its credentials, for the connection that needs them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> SecretUrl {
        SecretUrl(value)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", mask_url(&self.0))
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `url` with any `user:password@` replaced by the mask; the scheme, host,
/// port, path and query stay. Works on text that is not a valid URL too
/// (it is what error messages about a malformed URL print).
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}{MASK}{}{tail}", &authority[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_scheme_and_host_and_lose_credentials() {
        for (given, shown) in [
            (
                "rediss://user:pw@10.0.0.1:6380/2",
                "rediss://********@10.0.0.1:6380/2",
            ),
            ("redis://:pw@host", "redis://********@host"),
            (
                "http://peer:s3cr3t@master-1:8080/base?x=1",
                "http://********@master-1:8080/base?x=1",
            ),
            ("http://master:8080/p@th", "http://master:8080/p@th"),
            ("redis://10.0.0.1:6379", "redis://10.0.0.1:6379"),
            ("user:pw@host:1", "********@host:1"),
            ("", ""),
        ] {
            assert_eq!(mask_url(given), shown, "{given}");
        }
    }

    #[test]
    fn debug_display_and_serialize_never_show_the_secret() {
        let token = Secret::new("tok-123");
        let url = SecretUrl::new("rediss://u:pw-456@h:1");
        let shown = [
            format!("{token:?} {token} {url:?} {url}"),
            serde_json::to_string(&(&token, &url)).expect("serialises"),
        ];
        for text in shown {
            assert!(
                !text.contains("tok-123") && !text.contains("pw-456"),
                "{text}"
            );
            assert!(text.contains("rediss://") && text.contains(MASK), "{text}");
        }
        assert_eq!(token.expose(), "tok-123");
        assert_eq!(url.expose(), "rediss://u:pw-456@h:1");
    }
}
