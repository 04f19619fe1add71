//! Importing a configuration file (such as `config/demo.toml`) into an
//! installation, through the same domain rules and compare-and-swap writes as
//! the administration API.

use serde::Deserialize;

use crate::domain::config::{BranchInput, CounterInput, ServiceInput};
use crate::domain::media::{PlayerInput, PlaylistItem};
use crate::domain::{Branch, Id, MatrixEntry};
use crate::store::config::UpdateError;
use crate::store::Store;

/// The demo configuration shipped with the binary.
pub const DEMO: &str = include_str!("../config/demo.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    branches: Vec<BranchEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchEntry {
    id: Id,
    name: String,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    close_time: Option<String>,
    #[serde(default)]
    services: Vec<ServiceEntry>,
    #[serde(default)]
    counters: Vec<CounterEntry>,
    #[serde(default)]
    players: Vec<PlayerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayerEntry {
    id: Id,
    name: String,
    playlist: Vec<PlaylistItem>,
}

fn utc() -> String {
    "UTC".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    id: Id,
    name: String,
    prefix: String,
    target_wait_s: Option<u32>,
    first: Option<u32>,
    last: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterEntry {
    id: Id,
    name: String,
    services: Vec<MatrixEntry>,
}

/// Builds the branches of a configuration file, validating each.
fn parse(text: &str) -> anyhow::Result<Vec<Branch>> {
    let file: File = toml::from_str(text)?;
    let mut branches = Vec::new();
    for entry in file.branches {
        let mut branch = Branch::create(
            entry.id.clone(),
            BranchInput {
                name: entry.name,
                timezone: entry.timezone,
                group: entry.group,
                close_time: entry.close_time,
                alerts: None,
            },
        )?;
        for s in entry.services {
            branch.put_service(
                s.id,
                ServiceInput {
                    name: s.name,
                    prefix: s.prefix,
                    target_wait_s: s.target_wait_s,
                    first: s.first,
                    last: s.last,
                },
            )?;
        }
        for c in entry.counters {
            branch.put_counter(
                c.id,
                CounterInput {
                    name: c.name,
                    services: c.services,
                },
            )?;
        }
        for p in entry.players {
            branch.put_player(
                p.id,
                PlayerInput {
                    name: p.name,
                    playlist: p.playlist,
                },
            )?;
        }
        branches.push(branch);
    }
    Ok(branches)
}

/// Imports `text` into `group`'s configuration, creating or replacing each
/// branch it names. Returns the configuration version after the import.
pub async fn import(store: &Store, group: &Id, text: &str) -> anyhow::Result<u64> {
    let mut version = store.config_version(group).await?;
    for branch in parse(text)? {
        let id = branch.id.clone();
        let (v, _) = store
            .update_branch(group, &id, |_| {
                Ok::<_, std::convert::Infallible>(Some(branch.clone()))
            })
            .await
            .map_err(|e| match e {
                UpdateError::Store(s) => anyhow::Error::new(s),
                UpdateError::Rejected(never) => match never {},
            })?;
        version = v;
    }
    Ok(version)
}

/// Demo tokens for the roles that have none configured, so the first command
/// of the README gives a usable system. Never used unless `--demo` is given.
pub fn fill_demo_tokens(settings: &mut crate::settings::Settings) {
    let auth = &mut settings.auth;
    for (tokens, token) in [
        (&mut auth.admin_tokens, "demo-admin"),
        (&mut auth.operator_tokens, "demo-operator"),
        (&mut auth.kiosk_tokens, "demo-kiosk"),
        (&mut auth.display_tokens, "demo-display"),
        (&mut auth.peer_tokens, "demo-peer"),
    ] {
        if tokens.is_empty() {
            tokens.push(token.to_owned().into());
        }
    }
}

/// What the demo prints: URLs and commands to try.
pub fn banner(settings: &crate::settings::Settings, port: u16) -> String {
    let host = settings
        .http
        .listen
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let base = format!("http://{host}:{port}");
    // The banner prints the tokens on purpose: it is what the demo is for.
    let first = |tokens: &Vec<crate::settings::Secret>| {
        tokens
            .first()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default()
    };
    let (admin, operator, kiosk, display) = (
        first(&settings.auth.admin_tokens),
        first(&settings.auth.operator_tokens),
        first(&settings.auth.kiosk_tokens),
        first(&settings.auth.display_tokens),
    );
    format!(
        r#"
turnus is running at {base}  (stop with Ctrl-C)
  demo branches: main, paulista (served here); porto (served by slave group north, see cluster/local.sh)

  pages (open in a browser; the token after # stays in the browser):
    all pages      {base}/
    kiosk          {base}/kiosk/main#token={kiosk}&display={display}
    counter c1     {base}/counter/main/c1#token={operator}&display={display}
    display board  {base}/display/main?player=lobby#token={display}
    media player   {base}/player/main/lobby#token={display}
    dashboard      {base}/dashboard#token={display}
    (the kiosk's ticket shows a QR code of the customer's phone page)

  health        {base}/healthz   {base}/readyz   {base}/metrics
  API document  {base}/api/v1/openapi.json

  take a ticket (kiosk):
    curl -s -X POST -H 'Authorization: Bearer {kiosk}' -H 'Content-Type: application/json' \
         -d '{{"service":"cash"}}' {base}/api/v1/branches/main/tickets
  call the next one at counter c1 (operator):
    curl -s -X POST -H 'Authorization: Bearer {operator}' {base}/api/v1/branches/main/counters/c1/call
  what the display board shows, and the queues (display):
    curl -s -H 'Authorization: Bearer {display}' {base}/api/v1/branches/main/display
    curl -s -H 'Authorization: Bearer {display}' {base}/api/v1/branches/main/queues
  live events (display):
    curl -sN -H 'Authorization: Bearer {display}' {base}/api/v1/branches/main/events
  the lobby screen's playlist, and one of its files (from media/):
    curl -s -H 'Authorization: Bearer {display}' {base}/api/v1/branches/main/players/lobby
    curl -sI {base}/media/ads/welcome.svg
  administration (admin):
    curl -s -H 'Authorization: Bearer {admin}' {base}/api/v1/admin/branches
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_configuration_is_valid() {
        let branches = super::parse(super::DEMO).expect("demo parses");
        assert_eq!(branches.len(), 3);
        assert!(branches.iter().all(|b| !b.counters.is_empty()));
    }

    #[test]
    fn the_demo_player_plays_the_sample_media() {
        let branches = super::parse(super::DEMO).expect("demo parses");
        let players: Vec<_> = branches.iter().flat_map(|b| &b.players).collect();
        assert!(!players.is_empty(), "the demo has a player profile");
        let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("media");
        for item in players.iter().flat_map(|p| &p.playlist) {
            assert!(
                library.join(&item.media).is_file(),
                "media/{} is missing",
                item.media
            );
        }
    }
}
