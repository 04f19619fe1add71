//! The key of a customer's virtual-ticket link (`/t/{branch}/{id}?k={key}`).
//!
//! The key is an HMAC-SHA256 over `branch/id` with the group's link secret,
//! truncated to 128 bits and written as 32 lower-case hex digits: it opens
//! that one ticket, cannot be derived for another without the secret, and
//! needs no state per ticket (so no Lua script changes to issue it). Pure:
//! the secret is passed in; the store keeps it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in the key (hex doubles it).
const KEY_BYTES: usize = 16;

fn mac(secret: &[u8], branch: &str, ticket: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(branch.as_bytes());
    mac.update(b"/");
    mac.update(ticket.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The key of one ticket's link.
pub fn ticket_key(secret: &[u8], branch: &str, ticket: &str) -> String {
    mac(secret, branch, ticket)[..KEY_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `key` opens this ticket. Compares in constant time, so timing
/// tells nothing about how much of a guess was right.
pub fn key_opens(secret: &[u8], branch: &str, ticket: &str, key: &str) -> bool {
    let expected = ticket_key(secret, branch, ticket);
    expected.len() == key.len()
        && expected
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_key_opens_its_own_ticket_only() {
        let key = ticket_key(SECRET, "main", "42");
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(key_opens(SECRET, "main", "42", &key));
        assert!(!key_opens(SECRET, "main", "43", &key));
        assert!(!key_opens(SECRET, "other", "42", &key));
        // "ma" + "in/42" must not collide with "main" + "42" and the like.
        assert!(!key_opens(SECRET, "main/4", "2", &key));
        assert!(!key_opens(b"another secret", "main", "42", &key));
        assert!(!key_opens(SECRET, "main", "42", &key[..31]));
        assert!(!key_opens(SECRET, "main", "42", ""));
    }

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // Python: hmac.new(SECRET, b"main/42", hashlib.sha256).hexdigest()[:32]
        assert_eq!(
            ticket_key(SECRET, "main", "42"),
            "3a3fe71680c5b0a177d6e92f048a4627"
        );
    }
}
