//! The `turnus` command: `serve`, `config print`, `store adopt`, `script NAME`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use turnus::app::{Application, StartOptions};
use turnus::settings::{Settings, SettingsError};

#[derive(Parser)]
#[command(name = "turnus", version, about = "Queue management server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Serve {
        /// TOML configuration file; TURNUS__SECTION__KEY variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Import the demo branches into an empty installation and, where no
        /// tokens are configured, use demo tokens; print what to try.
        #[arg(long)]
        demo: bool,
    },
    /// Show configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The group's Redis (the store).
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Print the Lua source of a store script (`issue`, `call`), as the
    /// benchmark loads it into redis-benchmark.
    Script { name: String },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// The resolved settings with secrets masked.
    Print {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// After a master group's Redis lost its data (`/readyz` 503
    /// `store-lost`) and what it must hold is restored: ask a node to trust
    /// the store as it is now; every node of the group follows within a
    /// heartbeat and serves tickets again. Uses the configuration's first
    /// admin token (`auth.admin_tokens`).
    Adopt {
        /// The node's configuration file (its address and admin token).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The node to ask, e.g. `http://10.0.0.5:8080` (default: the
        /// configuration's `http.advertise_url`, else `http.listen`).
        #[arg(long)]
        url: Option<String>,
    },
}

/// Exit status of a configuration error (as sysexits' EX_USAGE family
/// and most CLIs: 2 = the invocation is wrong, 1 = it failed at run time).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    turnus::logging::init();
    let env: HashMap<String, String> = std::env::vars().collect();
    // Errors are printed here, as text: returning them from `main` would
    // print their Debug form, with a stack trace when RUST_BACKTRACE is set.
    match run(Cli::parse().command, &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<SettingsError>() {
            Some(settings) => {
                eprintln!("turnus: {settings}");
                ExitCode::from(EXIT_CONFIG)
            }
            None => {
                eprintln!("turnus: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(command: Command, env: &HashMap<String, String>) -> anyhow::Result<()> {
    match command {
        Command::Serve { config, demo } => {
            let mut settings = Settings::load(config.as_deref(), env)?;
            if demo {
                turnus::demo::fill_demo_tokens(&mut settings);
            }
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings.clone(), StartOptions { demo }).await?;
                if demo {
                    println!("{}", turnus::demo::banner(&settings, app.port()));
                }
                tracing::info!(port = app.port(), node = %settings.node_id(), role = %settings.node.role, "serving");
                app.run_until_stopped().await.context("server")
            })
        }
        Command::Config {
            action: ConfigAction::Print { config },
        } => {
            print!("{}", Settings::load(config.as_deref(), env)?.printable());
            Ok(())
        }
        Command::Store {
            action: StoreAction::Adopt { config, url },
        } => {
            let settings = Settings::load(config.as_deref(), env)?;
            let url = turnus::store_command::node_url(&settings, url.as_deref());
            let store_id = actix_web::rt::System::new()
                .block_on(turnus::store_command::adopt(&settings, &url))?;
            println!("{url}: the group's store is adopted (store id {store_id}); its nodes serve tickets again within a heartbeat");
            Ok(())
        }
        Command::Script { name } => {
            let source = turnus::store::script_source(&name)
                .with_context(|| format!("no script {name:?}; known: issue, call"))?;
            print!("{source}");
            Ok(())
        }
    }
}
