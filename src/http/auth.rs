//! Bearer-token authorisation by role (API.md "Auth").
//!
//! Handlers declare what they need as an extractor argument, for example
//! `_: Authorized<Operator>`; the request is refused with 401 (no or unknown
//! token) or 403 (a role not allowed here) before the handler runs.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::settings::AuthSettings;

/// The roles tokens are configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    Admin,
    Operator,
    Kiosk,
    Display,
    Peer,
}

impl TokenRole {
    /// `admin` may do everything an operator, kiosk or display may; the
    /// node-to-node `peer` role is separate.
    pub fn allows(self, needed: TokenRole) -> bool {
        self == needed || (self == TokenRole::Admin && needed != TokenRole::Peer)
    }
}

/// Token → role.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<String, TokenRole>);

impl Tokens {
    pub fn from_settings(auth: &AuthSettings) -> Tokens {
        let mut map = HashMap::new();
        for (tokens, role) in [
            (&auth.admin_tokens, TokenRole::Admin),
            (&auth.operator_tokens, TokenRole::Operator),
            (&auth.kiosk_tokens, TokenRole::Kiosk),
            (&auth.display_tokens, TokenRole::Display),
            (&auth.peer_tokens, TokenRole::Peer),
        ] {
            for token in tokens {
                map.insert(token.expose().to_owned(), role);
            }
        }
        Tokens(map)
    }

    fn role_of(&self, req: &HttpRequest) -> Option<TokenRole> {
        self.0.get(bearer_token(req)?).copied()
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 9110 11.1).
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let (scheme, token) = header.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A role an endpoint requires.
pub trait Required {
    const ROLE: TokenRole;
}

macro_rules! required {
    ($($name:ident => $role:ident),*) => {$(
        #[doc = concat!("Requires the `", stringify!($role), "` role (or admin).")]
        pub struct $name;
        impl Required for $name {
            const ROLE: TokenRole = TokenRole::$role;
        }
    )*};
}
required!(AdminRole => Admin, OperatorRole => Operator, KioskRole => Kiosk, DisplayRole => Display, PeerRole => Peer);

/// Proof that the request carries a token allowed for `R`.
pub struct Authorized<R: Required>(PhantomData<R>);

impl<R: Required> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize::<R>(req))
    }
}

/// The check [`Authorized`] makes, for handlers that need a token only on
/// some paths (a ticket read with its link key needs none).
pub fn authorize<R: Required>(req: &HttpRequest) -> Result<Authorized<R>, ApiError> {
    match req.app_data::<web::Data<AppState>>() {
        None => Err(ApiError::Internal("application state missing".into())),
        Some(state) => match state.tokens.role_of(req) {
            None => Err(ApiError::Unauthorized),
            Some(role) if role.allows(R::ROLE) => Ok(Authorized(PhantomData)),
            Some(_) => Err(ApiError::Forbidden),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_covers_all_but_peer() {
        for needed in [
            TokenRole::Admin,
            TokenRole::Operator,
            TokenRole::Kiosk,
            TokenRole::Display,
        ] {
            assert!(TokenRole::Admin.allows(needed));
        }
        assert!(!TokenRole::Admin.allows(TokenRole::Peer));
        assert!(!TokenRole::Kiosk.allows(TokenRole::Operator));
        assert!(!TokenRole::Display.allows(TokenRole::Kiosk));
        assert!(TokenRole::Peer.allows(TokenRole::Peer));
    }
}
