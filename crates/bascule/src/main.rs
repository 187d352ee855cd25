//! `bascule`: the gateway binary.
//!
//! - `bascule serve --config FILE` runs a gateway from a TOML file.
//! - `bascule demo` starts a real demo desktop (Xvfb + openbox + xterm + x11vnc), a demo user,
//!   and a gateway over HTTPS, and prints the URL and the login.
//! - `bascule hash-password` prints an argon2id hash for the `[[user]]` entries of a config.
//! - `bascule backup` / `bascule restore` save and restore the control plane's database.
//! - `bascule host|pool|resource|entitle|user|group|policy|licence …` administer it
//!   (`admin_cli.rs`, the same service and checks as the REST API).

mod admin_cli;
mod backup;
mod demo;
mod report_cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "bascule", version, about = "Bascule: remote desktops in the browser, through one HTTPS gateway")]
struct Cli {
    /// The gateway's TOML configuration (`serve`, `backup`, `restore` and the administration
    /// commands read the database URL and the data directory from it).
    #[arg(long, global = true, env = "BASCULE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the gateway from a configuration file (`--config`; BASCULE_LISTEN and
    /// BASCULE_DATA_DIR override it).
    Serve,
    /// Start a demo desktop and a gateway in front of it, then print the URL and the login.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Where the demo keeps its certificate, configuration and logs.
        #[arg(long, default_value = ".bascule-data")]
        data_dir: PathBuf,
    },
    /// Read a password on standard input and print its argon2id hash.
    HashPassword,
    /// Manage encrypted secrets of the configuration.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Write the whole control-plane database (users, inventory, access rules, sessions, audit)
    /// to a JSON file. Secrets stay encrypted: keep `secret.key` of the data directory too.
    Backup {
        /// The file to write (`-` for standard output).
        #[arg(long, short)]
        output: PathBuf,
        /// Also put `secret.key` in the backup (then protect the file like the key itself).
        #[arg(long)]
        with_key: bool,
    },
    /// Restore a backup into an empty database (a new SQLite file, or an empty PostgreSQL
    /// database: a backup moves a site from SQLite to PostgreSQL too).
    Restore {
        /// The backup file.
        input: PathBuf,
    },
    /// The daily report: indicators of a day (or the last N days), as a table, CSV or JSON.
    Report(report_cli::ReportArgs),
    /// Sites: named client-address ranges, for the report's bandwidth per site.
    #[command(subcommand)]
    Site(SiteCommand),
    #[command(flatten)]
    Admin(admin_cli::AdminCommand),
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Add or replace a site.
    Set {
        /// Stable id (`mds-meaux`).
        id: String,
        /// Name shown in reports ("MDS Meaux").
        #[arg(long)]
        name: String,
        /// Address ranges (CIDR), repeat or separate with commas: `--range 10.20.0.0/16`.
        #[arg(long = "range", required = true)]
        ranges: Vec<String>,
    },
    /// List the sites.
    List,
    /// Remove a site.
    Remove {
        /// The site.
        id: String,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Read a secret (a backend password) on standard input and print it encrypted with the
    /// data directory's secret.key (created if missing), for the configuration file.
    Encrypt {
        /// The gateway's data directory (where secret.key lives).
        #[arg(long, env = "BASCULE_DATA_DIR", default_value = "/var/lib/bascule")]
        data_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASCULE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve | Command::Demo { .. }) {
        // Long-running: a fixed malloc mmap threshold keeps memory per session from
        // fragmenting (bascule_gateway::malloc); re-executes once, before anything starts.
        if let Err(error) = bascule_gateway::malloc::reexec_with_fixed_mmap_threshold() {
            tracing::warn!(%error, "could not re-execute with a fixed malloc mmap threshold; going on with glibc's defaults");
        }
    }
    match cli.command {
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password on standard input")?;
            println!("{}", bascule_gateway::hash_password(password.trim_end_matches(['\r', '\n'])));
            Ok(())
        }
        Command::Backup { output, with_key } => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(backup::backup(&config, &output, with_key))
        }
        Command::Restore { input } => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(backup::restore(&config, &input))
        }
        Command::Serve => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(serve(config))
        }
        Command::Report(args) => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(async {
                let store = bascule_store::Store::connect(&config.database_url()).await.context("opening the database")?;
                store.migrate().await.context("bringing the database schema up to date")?;
                bascule_admin::ensure_licence_capacity(&store).await.context("reading the licence capacity")?;
                let tz = jiff::tz::TimeZone::get(&config.site.timezone)
                    .with_context(|| format!("site.timezone {:?}", config.site.timezone))?;
                let result = report_cli::run(&store, &tz, args, report_cli::lang_from_env()).await;
                store.close().await;
                result
            })
        }
        Command::Site(command) => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(site(&config, command))
        }
        Command::Admin(admin_cli::AdminCommand::Host(admin_cli::HostCommand::Pending { data_dir })) => {
            let data_dir = data_dir_of(data_dir, cli.config.as_deref())?;
            let pending = bascule_gateway::certstore::CertificateStore::new(&data_dir).pending()?;
            if pending.is_empty() {
                println!("no certificate is waiting for approval / aucun certificat en attente");
            }
            for (host, item) in pending {
                println!("{host}\t{}\tfirst seen {}", item.fingerprint, item.first_seen);
            }
            Ok(())
        }
        Command::Admin(admin_cli::AdminCommand::Host(admin_cli::HostCommand::Approve { data_dir, host, fingerprint })) => {
            let data_dir = data_dir_of(data_dir, cli.config.as_deref())?;
            let store = bascule_gateway::certstore::CertificateStore::new(&data_dir);
            let outcome = store.approve(&host, &fingerprint);
            let result = if outcome.is_ok() { "success".to_string() } else { "refused".to_string() };
            bascule_gateway::audit_admin_action(&data_dir, "host.approve_certificate", &host, &result)?;
            outcome?;
            println!("approved: {host} now accepts only the certificate {fingerprint}");
            Ok(())
        }
        Command::Admin(command) => {
            let config = load_config(cli.config.as_deref())?;
            runtime()?.block_on(async {
                let admin = admin_cli::open_admin(&config.database_url(), &config.data_dir, config.allow_insecure_certificates).await?;
                let result = admin_cli::run(&admin, &admin_cli::cli_actor(), command).await;
                admin.store().close().await;
                result
            })
        }
        Command::Demo { listen, data_dir } => demo::run(listen, data_dir),
        Command::Secret(SecretCommand::Encrypt { data_dir }) => {
            let mut secret = String::new();
            std::io::stdin().read_line(&mut secret).context("reading the secret on standard input")?;
            let key = bascule_gateway::secrets::SecretKey::load_or_create(&data_dir)?;
            println!("{}", key.encrypt(secret.trim_end_matches(['\r', '\n'])));
            Ok(())
        }
    }
}

/// `bascule site …`: validated with the report's own parser, audited.
async fn site(config: &bascule_gateway::Config, command: SiteCommand) -> anyhow::Result<()> {
    let store = bascule_store::Store::connect(&config.database_url()).await.context("opening the database")?;
    store.migrate().await.context("bringing the database schema up to date")?;
    let actor = admin_cli::cli_actor();
    let audit = |action: &str, target: &str, outcome: &str| bascule_store::AuditEntry {
        at: bascule_domain::time::Timestamp::from_unix_seconds(jiff::Timestamp::now().as_second()),
        actor: actor.login.clone(),
        action: action.into(),
        target: target.into(),
        address: None,
        outcome: outcome.into(),
    };
    match command {
        SiteCommand::Set { id, name, ranges } => {
            let joined = ranges.join(",");
            let parsed = match bascule_report::parse_ranges(&joined) {
                Ok(parsed) => parsed,
                Err(error) => {
                    store.append_audit(&audit("site.set", &id, "refused: invalid ranges")).await?;
                    anyhow::bail!("{}", error.message(report_cli::lang_from_env()));
                }
            };
            let ranges: Vec<String> = parsed.iter().map(ToString::to_string).collect();
            store.upsert_site(&bascule_store::Site { id: id.clone(), name: name.clone(), ranges: ranges.clone() }).await?;
            store.append_audit(&audit("site.set", &id, "ok")).await?;
            println!("{id}\t{name}\t{}", ranges.join(", "));
        }
        SiteCommand::List => {
            for site in store.list_sites().await? {
                println!("{}\t{}\t{}", site.id, site.name, site.ranges.join(", "));
            }
        }
        SiteCommand::Remove { id } => {
            let removed = store.delete_site(&id).await?;
            store.append_audit(&audit("site.remove", &id, if removed { "ok" } else { "refused: no such site" })).await?;
            anyhow::ensure!(removed, "no site {id:?}");
            println!("removed / supprimé : {id}");
        }
    }
    store.close().await;
    Ok(())
}

/// The configuration named by `--config` (or `BASCULE_CONFIG`).
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<bascule_gateway::Config> {
    let path = path.context("this command needs the gateway's configuration: --config FILE (or BASCULE_CONFIG)")?;
    Ok(bascule_gateway::Config::load(path)?)
}

/// `--data-dir`, else the configuration's data directory.
fn data_dir_of(data_dir: Option<PathBuf>, config: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    match data_dir {
        Some(dir) => Ok(dir),
        None => Ok(load_config(config)?.data_dir),
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

async fn serve(config: bascule_gateway::Config) -> anyhow::Result<()> {
    let gateway = bascule_gateway::Gateway::bind(config).await?;
    let running = gateway.start().await?;
    tracing::info!(address = %running.address(), "gateway listening");
    wait_for_signal().await;
    running.shutdown().await?;
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
