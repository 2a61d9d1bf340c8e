//! The `newsroom` binary: the server (`serve`, the default), token administration and the
//! reporter's terminal client.

mod client;
mod config;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use newsroom_command::{Application, SqliteOptions, SqliteStore, Tokens};
use newsroom_domain::Role;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "newsroom", version, about = "Event-sourced story tracker")]
struct Cli {
    /// A TOML configuration file; `NEWSROOM_*` variables override it.
    #[arg(long, env = "NEWSROOM_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// `host:port` to listen on (overrides the configuration).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Administer API tokens in the local store.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Work on stories through a running server.
    Story {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: Box<client::StoryCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (once).
    Create {
        /// reporter, editor or admin.
        #[arg(long)]
        role: Role,
        /// Who it is for; recorded as the author of what it writes.
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            let mut config = Config::load(cli.config.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            init_tracing(&config.log);
            serve(config).await
        }
        Command::Token {
            command: TokenCommand::Create { role, name },
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let path = config.database_path()?;
            let store = SqliteStore::open(&path, SqliteOptions::default())
                .with_context(|| format!("opening the store at {}", path.display()))?;
            let issued = Tokens::new(store)
                .create(role, name)
                .await
                .context("creating the token")?;
            println!("{}", serde_json::to_string_pretty(&issued)?);
            Ok(())
        }
        Command::Story {
            connection,
            command,
        } => {
            // A refused request is an answer, not a crash: say why, without a backtrace.
            if let Err(e) = client::run(connection, *command).await {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_env("NEWSROOM_LOG")
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let settings = config.settings()?;
    let database = settings.database_path.clone();
    let app = Application::build(settings)
        .await
        .context("starting the command service")?;
    if let Some(admin) = app
        .state()
        .tokens
        .bootstrap_admin()
        .await
        .context("creating the first admin token")?
    {
        // Printed, not logged: this is the only time the secret exists in the clear.
        println!(
            "\nFirst start: created an admin token. It is shown only this once — keep it safe.\n\n    {token}\n\nUse it from a terminal:\n    export NEWSROOM_TOKEN={token}\n    newsroom story open --slug campaign-hack --headline \"Campaign reports a hack\"\n    newsroom token create --role reporter --name \"Your Name\"\n",
            token = admin.token
        );
    }
    tracing::info!(
        address = %app.local_addr(),
        database = %database.display(),
        "newsroom is serving"
    );
    app.run_until_stopped(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("newsroom stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
