//! Customers' ticket links: `/t/{branch}/{id}?k={key}` (API.md "A ticket").
//!
//! The kiosk's answer carries the link; the one-ticket read and the `/t/`
//! page accept its key instead of a bearer token, for that ticket only. The
//! key is an HMAC (`domain::link`) with the group's secret, which the store
//! keeps and this caches after the first read: the secret never changes
//! while the group's Redis keeps its data.

use tokio::sync::OnceCell;

use super::error::ApiError;
use crate::domain::link::{key_opens, ticket_key};
use crate::domain::Id;
use crate::store::Store;

/// Signs and checks ticket links with the group's secret.
pub struct TicketLinks {
    store: Store,
    group: Id,
    secret: OnceCell<Vec<u8>>,
}

impl TicketLinks {
    pub fn new(store: Store, group: Id) -> TicketLinks {
        TicketLinks {
            store,
            group,
            secret: OnceCell::new(),
        }
    }

    async fn secret(&self) -> Result<&[u8], ApiError> {
        let secret = self
            .secret
            .get_or_try_init(|| self.store.link_secret(&self.group))
            .await?;
        Ok(secret)
    }

    /// The customer's link to a ticket.
    pub async fn link(&self, branch: &Id, ticket: &str) -> Result<String, ApiError> {
        let key = ticket_key(self.secret().await?, branch.as_str(), ticket);
        Ok(format!("/t/{branch}/{ticket}?k={key}"))
    }

    /// `Ok` when `key` opens this ticket; a wrong key is the same 404 as an
    /// unknown ticket, so a guess learns nothing about which tickets exist.
    pub async fn check(&self, branch: &Id, ticket: &Id, key: &str) -> Result<(), ApiError> {
        if key_opens(self.secret().await?, branch.as_str(), ticket.as_str(), key) {
            Ok(())
        } else {
            Err(ApiError::UnknownTicket(format!("no ticket {ticket}")))
        }
    }
}
