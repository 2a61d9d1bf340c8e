//! The `newsroom` binary: the server (`serve`, the default), token administration and the
//! reporter's terminal client.
//!
//! Subcommands (clap): `newsroom` / `newsroom serve [--role …]` runs the server; `token create`
//! adds a token to the local store; `projection rebuild [--view stories|actors]` rebuilds the views
//! with a progress bar; `verify` checks the database and the hash chains (`newsroom_log::verify`);
//! `export [--output FILE]` and `import FILE` move the log between stores
//! (`newsroom_log::transfer`; the export file is created owner-only; an import rebuilds the views
//! afterwards); `story …` (`client.rs`, `StoryVerb`) is the reporter's terminal client, one HTTP
//! call per subcommand (reqwest). On first start the server creates the first admin token and
//! prints it once (to stdout, never to the log). anyhow is used only in this crate, at the edge;
//! the library crates return typed errors.

mod client;

/// mimalloc instead of the system allocator: a server that opens and closes thousands of
/// streams and renders many small strings frees memory back to the system when it is done
/// with it, and allocates faster. The `system-allocator` feature leaves the system's in place,
/// for heap profilers that follow `malloc` (heaptrack, valgrind).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use newsroom::config::Config;
use newsroom::{Newsroom, ProcessRole};
use newsroom_domain::Role;
use newsroom_projection::{ViewName, ViewStore};
use newsroom_web::Tokens;
use tracing_subscriber::EnvFilter;

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
        /// Which parts to run: everything (embedded mode), or one part of a scale-out deployment
        /// (`web`: the desk and the alert pages).
        #[arg(long, value_enum, env = "NEWSROOM_ROLE", default_value_t = ProcessRole::All)]
        role: ProcessRole,
    },
    /// Administer API tokens in the local store.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Maintain the reader views.
    Projection {
        #[command(subcommand)]
        command: ProjectionCommand,
    },
    /// Check every story's hash chain: report events changed behind newsroom's back.
    Verify,
    /// Write the whole event log as JSON Lines, one event a line, exactly as stored.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an export into the configured event log, which must be empty (SQLite or
    /// PostgreSQL, as `NEWSROOM_DATABASE_URL` says); then rebuild the views from it.
    Import {
        /// The export (JSON Lines); `-` reads standard input.
        file: PathBuf,
    },
    /// Work on stories through a running server.
    Story {
        #[command(flatten)]
        connection: client::Connection,
        #[command(subcommand)]
        command: Box<client::StoryVerb>,
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

#[derive(Debug, Subcommand)]
enum ProjectionCommand {
    /// Replay the whole log into fresh view tables and swap them in atomically.
    Rebuild {
        /// Rebuild only this view (stories or actors); all views by default.
        #[arg(long)]
        view: Option<ViewName>,
    },
}

fn main() -> anyhow::Result<()> {
    newsroom::fewer_malloc_arenas();
    newsroom::disable_transparent_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        listen: None,
        role: ProcessRole::All,
    }) {
        Command::Serve { listen, role } => {
            let mut config = Config::load(cli.config.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            init_tracing(&config.log);
            serve(config, role).await
        }
        Command::Token {
            command: TokenCommand::Create { role, name },
        } => {
            let config = Config::load(cli.config.as_deref())?;
            let issued = Tokens::new(config.open_log().await?)
                .create(role, name)
                .await
                .context("creating the token")?;
            println!("{}", serde_json::to_string_pretty(&issued)?);
            Ok(())
        }
        Command::Projection {
            command: ProjectionCommand::Rebuild { view },
        } => {
            let config = Config::load(cli.config.as_deref())?;
            init_tracing(&config.log);
            rebuild(&config, view).await
        }
        Command::Verify => {
            let config = Config::load(cli.config.as_deref())?;
            let log = config.open_log().await?;
            let report = newsroom_log::verify::verify_log(&log)
                .await
                .context("reading the log")?;
            match &report.integrity {
                Some(damage) if damage.is_empty() => println!("database file: intact"),
                Some(damage) => {
                    for line in damage {
                        println!("database file damaged: {line}");
                    }
                }
                None => println!("database file: not checked (PostgreSQL)"),
            }
            if let Some(why) = &report.stopped {
                println!("the log could not be read to its end: {why}");
            }
            for f in &report.findings {
                println!(
                    "position {} (story {}, sequence {}): {}",
                    f.position, f.story_id, f.sequence, f.problem
                );
            }
            println!(
                "checked {} events of {} stories: {}",
                report.events,
                report.stories,
                if report.findings.is_empty() {
                    "every chain is intact".to_owned()
                } else {
                    format!("{} problems", report.findings.len())
                }
            );
            if !report.is_sound() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Export { output } => {
            let config = Config::load(cli.config.as_deref())?;
            export(&config, output).await
        }
        Command::Import { file } => {
            let config = Config::load(cli.config.as_deref())?;
            import(&config, &file).await
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

async fn export(config: &Config, output: Option<PathBuf>) -> anyhow::Result<()> {
    let log = config.open_log().await?;
    let summary = match &output {
        Some(path) => {
            // Written beside the target and renamed into place: a failed export leaves no
            // half-written file under the name.
            let partial = path.with_extension("partial");
            // As sensitive as the log itself: only its owner may read it.
            let file = newsroom_log::private::create_private_file(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let summary = log.export(&mut out).await.context("exporting the log")?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            summary
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            log.export(&mut out).await.context("exporting the log")?
        }
    };
    eprintln!(
        "exported {} events of {} stories (positions 1 to {}){}",
        summary.events,
        summary.stories,
        summary.head,
        output
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

async fn import(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let log = config.open_log().await?;
    let input: Box<dyn std::io::BufRead + Send> = if file == std::path::Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let summary = log
        .import(input)
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    println!(
        "imported {} events of {} stories (positions 1 to {})",
        summary.events, summary.stories, summary.head
    );
    // Views left from another log would skip the imported events below their checkpoint.
    rebuild(config, None).await
}

async fn rebuild(config: &Config, view: Option<ViewName>) -> anyhow::Result<()> {
    let log = config.open_log().await?;
    let views_path = config.views_path();
    let views = ViewStore::beside(&log, &views_path)
        .await
        .with_context(|| format!("opening the views at {}", views_path.display()))?;
    let progress = indicatif::ProgressBar::new(log.current_head().await? as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let only: Vec<ViewName> = view.into_iter().collect();
    let report = newsroom_projection::rebuild(&log, &views, &only, Some(progress))
        .await
        .context("rebuilding the views")?;
    println!(
        "rebuilt {} from {} events of {} stories, up to position {}",
        report
            .views
            .iter()
            .map(ViewName::as_str)
            .collect::<Vec<_>>()
            .join(" and "),
        report.events,
        report.stories,
        report.position
    );
    Ok(())
}

async fn serve(config: Config, role: ProcessRole) -> anyhow::Result<()> {
    // Listen for signals before anything else: a SIGTERM during start-up is a shutdown too.
    let shutdown = shutdown_signal()?;
    let mut settings = config.newsroom_settings()?;
    settings.role = role;
    let database = settings.command.database_path.clone();
    let app = Newsroom::build(settings).await?;
    if let Some(admin) = app
        .state()
        .tokens
        .bootstrap_admin()
        .await
        .context("creating the first admin token")?
    {
        // Printed, not logged: this is the only time the secret exists in the clear.
        println!(
            "\nFirst start: created an admin token. It is shown only this once — keep it safe.\n\n    {token}\n\nSign in with it at the desk, {desk}, or use it from a terminal:\n    export NEWSROOM_TOKEN={token}\n    newsroom story open --slug campaign-hack --headline \"Campaign reports a hack\"\n    newsroom token create --role reporter --name \"Your Name\"\n",
            token = admin.token,
            desk = format_args!("http://{}/desk", app.local_addr()),
        );
    }
    tracing::info!(
        address = %app.local_addr(),
        database = %database.display(),
        ?role,
        "newsroom is serving"
    );
    app.run_until_stopped(shutdown).await?;
    tracing::info!("newsroom stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
