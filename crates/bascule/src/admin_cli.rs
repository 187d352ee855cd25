//! `bascule host|pool|resource|entitle|user|group|policy|licence …`: the administration commands.
//!
//! Every command goes through [`bascule_admin::Admin`], like the REST API, so both refuse bad
//! input with the same reasons (in the language of `LANG`) and both leave the same audit trail
//! (the actor is `cli:<unix user>`, with the admin role: whoever can read the database and the
//! secret key administers the site anyway).
//!
//! Output: aligned tables for people by default, the API's JSON with `--json`.
//! Passwords are never command-line arguments (they would show in `ps`): `--password-stdin`
//! reads the first line of standard input, and `user password` always does.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use bascule_admin::{
    Actor, Admin, AdminError, EntitlementSpec, GroupSpec, HostSpec, HostView, Icon, Lang,
    LicenceSpec, PasswordSpec, PolicySpec, PolicyView, PoolSpec, PoolView, ResourceSpec,
    ResourceView, UserSpec, UserView,
};
use bascule_domain::access::Role;
use clap::{Args, Subcommand};
use serde::Serialize;

/// The administration commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Session hosts (RDP or VNC servers).
    #[command(subcommand)]
    Host(HostCommand),
    /// Pools of interchangeable hosts.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Published desktops and applications.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Who may open which resource.
    #[command(subcommand)]
    Entitle(EntitleCommand),
    /// User accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Groups of users.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Clipboard, file transfer, bandwidth, timeouts and hours, per group or resource.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The licence pool.
    #[command(subcommand)]
    Licence(LicenceCommand),
}

/// `--json`: print the API's JSON instead of a table.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct Output {
    /// Print JSON (the REST API's format) instead of a table.
    #[arg(long)]
    json: bool,
}

/// The settings of a host, all optional (for `host set`, absent means unchanged).
#[derive(Debug, Default, Args)]
pub(crate) struct HostOptions {
    /// Name shown in the console.
    #[arg(long)]
    name: Option<String>,
    /// `rdp` or `vnc`.
    #[arg(long)]
    protocol: Option<String>,
    /// DNS name or IP address.
    #[arg(long)]
    address: Option<String>,
    /// TCP port (default 3389 for RDP, 5900 for VNC).
    #[arg(long)]
    port: Option<i64>,
    /// The most live sessions (default 1).
    #[arg(long)]
    max_sessions: Option<i64>,
    /// Relative capacity in weighted pools (default 1, 0 = last resort).
    #[arg(long)]
    weight: Option<i64>,
    /// `tofu` (default), `system`, `pin:<sha-256 hex>` or `accept-any` (RDP).
    #[arg(long)]
    certificate: Option<String>,
    /// `service` (default) or `passthrough` (RDP).
    #[arg(long)]
    credentials: Option<String>,
    /// Service account user name (RDP).
    #[arg(long)]
    username: Option<String>,
    /// Service account domain (RDP).
    #[arg(long)]
    domain: Option<String>,
    /// Read the host's password (RDP service account, or VNC) from the first line of standard
    /// input.
    #[arg(long)]
    password_stdin: bool,
    /// Remove the stored password (`host set` only).
    #[arg(long, conflicts_with = "password_stdin")]
    clear_password: bool,
    /// `negotiate` (default), `tls` or `nla` (RDP).
    #[arg(long)]
    security: Option<String>,
    /// `keysym` (default) or `scancode` (VNC).
    #[arg(long)]
    keyboard: Option<String>,
    /// Windows keyboard layout id, decimal or hex (`0x040C`, the default, is French).
    #[arg(long, value_parser = parse_layout)]
    keyboard_layout: Option<i64>,
    /// `true`: let the RDP host send H.264 (AVC420), passed through to browsers (lossy);
    /// `false` (the default): the host uses lossless codecs.
    #[arg(long)]
    h264: Option<bool>,
}

fn parse_layout(text: &str) -> Result<i64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a number (decimal, or hex like 0x040C)"))
}

/// Host commands.
#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Add a host (refused if the id exists).
    Add {
        /// Stable id (letters, digits, `_`, `-`).
        id: String,
        #[command(flatten)]
        options: HostOptions,
        /// Take no new session until `host undrain`.
        #[arg(long)]
        draining: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Change some settings of a host; the others stay.
    Set {
        /// The host.
        id: String,
        #[command(flatten)]
        options: HostOptions,
        #[command(flatten)]
        output: Output,
    },
    /// List the hosts.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show one host.
    Show {
        /// The host.
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a host (refused while it has sessions or is in a pool).
    Remove {
        /// The host.
        id: String,
    },
    /// Keep the host's sessions but send it no new one.
    Drain {
        /// The host.
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Send new sessions to the host again.
    Undrain {
        /// The host.
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the RDP host certificates waiting for approval (trust on first use).
    Pending {
        /// The gateway's data directory (default: the configuration's).
        #[arg(long, env = "BASCULE_DATA_DIR")]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Approve the certificate a host presented (check the fingerprint with the host's owner first).
    Approve {
        /// The gateway's data directory (default: the configuration's).
        #[arg(long, env = "BASCULE_DATA_DIR")]
        data_dir: Option<std::path::PathBuf>,
        /// The host id.
        host: String,
        /// The SHA-256 fingerprint shown by `bascule host pending`.
        fingerprint: String,
    },
}

/// Pool commands.
#[derive(Debug, Subcommand)]
pub(crate) enum PoolCommand {
    /// Add a pool (refused if the id exists).
    Add {
        /// Stable id.
        id: String,
        /// Name shown in the console.
        #[arg(long)]
        name: Option<String>,
        /// A member host (repeat for several, in order).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// `fewest_sessions` (default) or `weighted`.
        #[arg(long)]
        balancing: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Change a pool: its name, balancing or hosts.
    Set {
        /// The pool.
        id: String,
        /// Name shown in the console.
        #[arg(long)]
        name: Option<String>,
        /// Replace the member hosts with these (repeat the option).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Add a member host at the end.
        #[arg(long)]
        add_host: Vec<String>,
        /// Take a member host out.
        #[arg(long)]
        remove_host: Vec<String>,
        /// `fewest_sessions` or `weighted`.
        #[arg(long)]
        balancing: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the pools.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Remove a pool (refused while resources use it).
    Remove {
        /// The pool.
        id: String,
    },
}

/// Resource commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ResourceCommand {
    /// Publish a desktop or an application (refused if the id exists).
    Add {
        /// Stable id, the one the portal's links name.
        id: String,
        /// The pool whose hosts serve it.
        #[arg(long)]
        pool: String,
        /// Name in French.
        #[arg(long)]
        name_fr: String,
        /// Name in English.
        #[arg(long)]
        name_en: String,
        /// `desktop` (default) or `application`.
        #[arg(long)]
        kind: Option<String>,
        /// The program an application runs (RDP).
        #[arg(long)]
        program: Option<String>,
        /// A PNG or SVG file, at most 64 KiB.
        #[arg(long)]
        icon: Option<PathBuf>,
        /// Working directory of an application (RDP).
        #[arg(long)]
        working_dir: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the resources.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show one resource.
    Show {
        /// The resource.
        id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a resource, its entitlements and its policy (refused while sessions use it).
    Remove {
        /// The resource.
        id: String,
    },
}

/// Who an entitlement is for.
#[derive(Debug, Args)]
pub(crate) struct EntitlementArgs {
    /// A user's login.
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    user: Option<String>,
    /// A group.
    #[arg(long)]
    group: Option<String>,
    /// The resource.
    #[arg(long)]
    resource: String,
}

impl EntitlementArgs {
    fn spec(self) -> EntitlementSpec {
        EntitlementSpec {
            user: self.user,
            group: self.group,
            resource: self.resource,
        }
    }
}

/// Entitlement commands.
#[derive(Debug, Subcommand)]
pub(crate) enum EntitleCommand {
    /// Let a user or a group open a resource.
    Grant(EntitlementArgs),
    /// Take an entitlement back.
    Revoke(EntitlementArgs),
    /// List the entitlements.
    List {
        #[command(flatten)]
        output: Output,
    },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a local user (refused if the login exists).
    Add {
        /// What the person types to log in.
        login: String,
        /// Name shown in the portal.
        #[arg(long)]
        display_name: Option<String>,
        /// `user` (default), `helpdesk` or `admin` (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A group (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Create the account disabled.
        #[arg(long)]
        disabled: bool,
        /// Read the password (at least 12 characters) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Change a user's name, roles or groups.
    Set {
        /// The login.
        login: String,
        /// Name shown in the portal.
        #[arg(long)]
        display_name: Option<String>,
        /// Replace the roles with these (repeat the option).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Replace the groups with these (repeat the option).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Remove every group.
        #[arg(long, conflicts_with = "groups")]
        no_groups: bool,
        #[command(flatten)]
        output: Output,
    },
    /// List the users.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show one user.
    Show {
        /// The login.
        login: String,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a user and its own entitlements.
    Remove {
        /// The login.
        login: String,
    },
    /// Set a local user's password, read from the first line of standard input.
    Password {
        /// The login.
        login: String,
    },
    /// Forget the user's second factor (TOTP): the next login enrols a new one.
    TotpReset {
        /// The login.
        login: String,
    },
    /// Let the user log in again.
    Enable {
        /// The login.
        login: String,
    },
    /// Stop the user from logging in (its data stays).
    Disable {
        /// The login.
        login: String,
    },
}

/// Group commands.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Add a group (refused if the id exists).
    Add {
        /// Stable id.
        id: String,
        /// Name shown in the console.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the groups and their members.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Remove a group (refused while entitlements or a policy name it).
    Remove {
        /// The group.
        id: String,
    },
    /// Put a user in a group.
    AddMember {
        /// The group.
        id: String,
        /// The user's login.
        login: String,
    },
    /// Take a user out of a group.
    RemoveMember {
        /// The group.
        id: String,
        /// The user's login.
        login: String,
    },
}

/// What a policy applies to.
#[derive(Debug, Args)]
pub(crate) struct ScopeArgs {
    /// A group's policy.
    #[arg(
        long,
        conflicts_with = "resource",
        required_unless_present = "resource"
    )]
    group: Option<String>,
    /// A resource's policy (it wins over the groups').
    #[arg(long)]
    resource: Option<String>,
}

impl ScopeArgs {
    fn parts(&self) -> (&'static str, &str) {
        match (&self.group, &self.resource) {
            (Some(group), _) => ("group", group.as_str()),
            (None, Some(resource)) => ("resource", resource.as_str()),
            (None, None) => ("group", ""),
        }
    }
}

/// Policy commands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Set some fields of a group's or a resource's policy; the others stay.
    Set {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Clipboard from the browser to the host.
        #[arg(long)]
        clipboard_in: Option<bool>,
        /// Clipboard from the host to the browser.
        #[arg(long)]
        clipboard_out: Option<bool>,
        /// File transfer.
        #[arg(long)]
        file_transfer: Option<bool>,
        /// Bandwidth cap in kbit/s (0 = unlimited).
        #[arg(long)]
        max_bandwidth_kbps: Option<i64>,
        /// Idle seconds before disconnection (0 = never).
        #[arg(long)]
        idle_timeout_secs: Option<i64>,
        /// Seconds a disconnected session is kept.
        #[arg(long)]
        disconnected_keep_secs: Option<i64>,
        /// Allowed hours, e.g. `mon-fri 07:00-19:00` (repeat for several windows; replaces
        /// the previous ones).
        #[arg(long = "hours")]
        hours: Vec<String>,
        /// Stop setting these fields at this level (e.g. `--unset clipboard_in`), so that the
        /// groups or the defaults decide.
        #[arg(long)]
        unset: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Show a group's or a resource's policy.
    Show {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        output: Output,
    },
    /// List every policy.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Remove a group's or a resource's policy.
    Remove {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// The policy in force for a user on a resource, and where each value comes from.
    Effective {
        /// The user's login.
        #[arg(long)]
        user: String,
        /// The resource.
        #[arg(long)]
        resource: String,
        #[command(flatten)]
        output: Output,
    },
}

/// Licence commands.
#[derive(Debug, Subcommand)]
pub(crate) enum LicenceCommand {
    /// The capacity and the licences in use.
    Show {
        #[command(flatten)]
        output: Output,
    },
    /// Set the capacity (live sessions allowed at once).
    Set {
        /// The capacity.
        capacity: i64,
        #[command(flatten)]
        output: Output,
    },
}

/// Opens the control plane's database (migrating it) and the data directory's `secret.key`,
/// and builds the administration service.
pub(crate) async fn open_admin(
    database_url: &str,
    data_dir: &Path,
    allow_insecure_certificates: bool,
) -> anyhow::Result<Admin> {
    let key = bascule_secrets::SecretKey::load_or_create(data_dir)
        .with_context(|| format!("opening the secret key in {}", data_dir.display()))?;
    let store = bascule_store::Store::connect(database_url)
        .await
        .context("opening the database")?;
    store
        .migrate()
        .await
        .context("bringing the database schema up to date")?;
    bascule_admin::ensure_licence_capacity(&store).await.context("reading the licence capacity")?;
    Ok(Admin::new(store, Arc::new(key)).allow_insecure_certificates(allow_insecure_certificates))
}

/// The actor of a command run on the server: `cli:<unix user>`, admin, messages in the
/// language of `LANG` (French unless it starts with `en`).
pub(crate) fn cli_actor() -> Actor {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let lang = std::env::var("LC_ALL")
        .or_else(|_| std::env::var("LANG"))
        .map_or(Lang::Fr, |locale| Lang::from_locale(&locale));
    Actor {
        login: format!("cli:{user}"),
        roles: vec![Role::Admin],
        address: None,
        lang,
    }
}

/// Runs one command, reading passwords from standard input and printing to standard output.
pub(crate) async fn run(admin: &Admin, actor: &Actor, command: AdminCommand) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    run_with(admin, actor, command, &mut input, &mut out).await
}

/// [`run`] with its input and output given (for tests).
pub(crate) async fn run_with(
    admin: &Admin,
    actor: &Actor,
    command: AdminCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let lang = actor.lang;
    let explain = |error: AdminError| anyhow!(error.message(lang));
    let mut cli = Cli {
        admin,
        actor,
        input,
        out,
        lang,
    };
    match command {
        AdminCommand::Host(command) => cli.host(command).await,
        AdminCommand::Pool(command) => cli.pool(command).await,
        AdminCommand::Resource(command) => cli.resource(command).await,
        AdminCommand::Entitle(command) => cli.entitle(command).await,
        AdminCommand::User(command) => cli.user(command).await,
        AdminCommand::Group(command) => cli.group(command).await,
        AdminCommand::Policy(command) => cli.policy(command).await,
        AdminCommand::Licence(command) => cli.licence(command).await,
    }
    .map_err(|error| match error {
        Failure::Admin(error) => explain(error),
        Failure::Other(error) => error,
    })
}

/// A command's failure: the service's refusal (translated) or anything else.
enum Failure {
    Admin(AdminError),
    Other(anyhow::Error),
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Failure {
        Failure::Admin(error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Other(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        Failure::Other(error.into())
    }
}

type Done = Result<(), Failure>;

struct Cli<'a> {
    admin: &'a Admin,
    actor: &'a Actor,
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    lang: Lang,
}

/// Aligned columns, the header first.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut text = line(headers.to_vec());
    text.push('\n');
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
        text.push('\n');
    }
    text
}

/// `key: value` lines, the keys aligned.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

fn or_dash(value: Option<&str>) -> String {
    value
        .filter(|value| !value.is_empty())
        .unwrap_or("-")
        .to_string()
}

fn yes_no(value: bool, lang: Lang) -> String {
    match (value, lang) {
        (true, Lang::Fr) => "oui".into(),
        (false, Lang::Fr) => "non".into(),
        (true, Lang::En) => "yes".into(),
        (false, Lang::En) => "no".into(),
    }
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "-".into()
    } else {
        values.join(",")
    }
}

impl Cli<'_> {
    fn say(&mut self, fr: &str, en: &str) -> Done {
        let text = match self.lang {
            Lang::Fr => fr,
            Lang::En => en,
        };
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    fn json<T: Serialize>(&mut self, value: &T) -> Done {
        let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    fn print(&mut self, text: &str) -> Done {
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// The first line of standard input, without its line break; refused if empty.
    fn read_password(&mut self) -> Result<String, Failure> {
        let mut line = String::new();
        self.input
            .read_line(&mut line)
            .context("reading the password on standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            return Err(Failure::Other(anyhow!(match self.lang {
                Lang::Fr => "aucun mot de passe sur l'entrée standard",
                Lang::En => "no password on standard input",
            })));
        }
        Ok(password)
    }

    // ----- hosts -----

    fn host_table(&mut self, hosts: &[HostView]) -> Done {
        let rows: Vec<Vec<String>> = hosts
            .iter()
            .map(|host| {
                vec![
                    host.id.clone(),
                    host.protocol.clone(),
                    format!("{}:{}", host.address, host.port),
                    format!("{}/{}", host.live_sessions, host.max_sessions),
                    host.weight.to_string(),
                    yes_no(host.draining, self.lang),
                    host.health.state.clone(),
                    list(&host.pools),
                    host.name.clone(),
                ]
            })
            .collect();
        let headers: &[&str] = match self.lang {
            Lang::Fr => &[
                "ID",
                "PROTOCOLE",
                "ADRESSE",
                "SESSIONS",
                "POIDS",
                "DRAINAGE",
                "SANTÉ",
                "POOLS",
                "NOM",
            ],
            Lang::En => &[
                "ID", "PROTOCOL", "ADDRESS", "SESSIONS", "WEIGHT", "DRAINING", "HEALTH", "POOLS",
                "NAME",
            ],
        };
        self.print(&table(headers, &rows))
    }

    fn host_details(&mut self, host: &HostView) -> Done {
        let lang = self.lang;
        let health = match (&host.health.reason, host.health.since) {
            (Some(reason), Some(since)) => format!("{} ({reason}, {since})", host.health.state),
            _ => host.health.state.clone(),
        };
        let text = fields(&[
            ("id", host.id.clone()),
            ("name", host.name.clone()),
            ("protocol", host.protocol.clone()),
            ("address", format!("{}:{}", host.address, host.port)),
            ("max_sessions", host.max_sessions.to_string()),
            ("live_sessions", host.live_sessions.to_string()),
            ("weight", host.weight.to_string()),
            ("draining", yes_no(host.draining, lang)),
            ("health", health),
            ("pools", list(&host.pools)),
            ("certificate", host.certificate.clone()),
            ("credentials", host.credentials.as_str().into()),
            ("username", or_dash(host.username.as_deref())),
            ("domain", or_dash(host.domain.as_deref())),
            ("password_set", yes_no(host.password_set, lang)),
            ("security", host.security.as_str().into()),
            ("keyboard", host.keyboard.as_str().into()),
            ("keyboard_layout", format!("{:#06x}", host.keyboard_layout)),
            ("h264", yes_no(host.h264, lang)),
        ]);
        self.print(&text)
    }

    fn show_host(&mut self, host: &HostView, output: Output) -> Done {
        if output.json {
            self.json(host)
        } else {
            self.host_details(host)
        }
    }

    /// Applies the given options to `spec`.
    fn apply_host_options(&mut self, spec: &mut HostSpec, options: HostOptions) -> Done {
        let HostOptions {
            name,
            protocol,
            address,
            port,
            max_sessions,
            weight,
            certificate,
            credentials,
            username,
            domain,
            password_stdin,
            clear_password,
            security,
            keyboard,
            keyboard_layout,
            h264,
        } = options;
        if let Some(name) = name {
            spec.name = name;
        }
        if let Some(protocol) = protocol {
            spec.protocol = protocol;
        }
        if let Some(address) = address {
            spec.address = address;
        }
        spec.port = port.or(spec.port);
        spec.max_sessions = max_sessions.or(spec.max_sessions);
        spec.weight = weight.or(spec.weight);
        spec.certificate = certificate.or(spec.certificate.take());
        spec.credentials = credentials.or(spec.credentials.take());
        // An empty value removes the username or the domain (`--username ""`).
        if let Some(username) = username {
            spec.username = Some(username).filter(|text| !text.is_empty());
        }
        if let Some(domain) = domain {
            spec.domain = Some(domain).filter(|text| !text.is_empty());
        }
        spec.security = security.or(spec.security.take());
        spec.keyboard = keyboard.or(spec.keyboard.take());
        spec.keyboard_layout = keyboard_layout.or(spec.keyboard_layout);
        spec.h264 = h264.or(spec.h264);
        if password_stdin {
            spec.password = Some(self.read_password()?);
        } else if clear_password {
            spec.password = Some(String::new());
        }
        Ok(())
    }

    async fn host(&mut self, command: HostCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            HostCommand::Add {
                id,
                options,
                draining,
                output,
            } => {
                let mut spec = HostSpec {
                    id,
                    draining,
                    ..HostSpec::default()
                };
                self.apply_host_options(&mut spec, options)?;
                let view = admin.create_host(actor, &spec).await?;
                self.show_host(&view, output)
            }
            HostCommand::Set {
                id,
                options,
                output,
            } => {
                let current = admin.get_host(actor, &id).await?;
                let mut spec = spec_of_host(&current);
                self.apply_host_options(&mut spec, options)?;
                let view = admin.put_host(actor, &id, &spec).await?;
                self.show_host(&view, output)
            }
            HostCommand::List { output } => {
                let hosts = admin.list_hosts(actor).await?;
                if output.json {
                    self.json(&hosts)
                } else {
                    self.host_table(&hosts)
                }
            }
            HostCommand::Show { id, output } => {
                let view = admin.get_host(actor, &id).await?;
                self.show_host(&view, output)
            }
            HostCommand::Remove { id } => {
                admin.delete_host(actor, &id).await?;
                self.say(
                    &format!("hôte {id} supprimé"),
                    &format!("host {id} removed"),
                )
            }
            HostCommand::Drain { id, output } => {
                let view = admin.set_draining(actor, &id, true).await?;
                if output.json {
                    return self.json(&view);
                }
                self.say(
                    &format!(
                        "hôte {id} en mode drainage : ses {} session(s) restent, aucune nouvelle ne lui est envoyée",
                        view.live_sessions
                    ),
                    &format!(
                        "host {id} draining: its {} session(s) stay, no new one goes there",
                        view.live_sessions
                    ),
                )
            }
            HostCommand::Undrain { id, output } => {
                let view = admin.set_draining(actor, &id, false).await?;
                if output.json {
                    return self.json(&view);
                }
                self.say(
                    &format!("hôte {id} : reçoit de nouveau des sessions"),
                    &format!("host {id} takes new sessions again"),
                )
            }
            HostCommand::Pending { .. } | HostCommand::Approve { .. } => {
                Err(anyhow::anyhow!("certificate commands are run by main.rs, which knows the data directory").into())
            }
        }
    }

    // ----- pools -----

    fn show_pools(&mut self, pools: &[PoolView], output: Output) -> Done {
        if output.json {
            return self.json(&pools);
        }
        let rows: Vec<Vec<String>> = pools
            .iter()
            .map(|pool| {
                vec![
                    pool.id.clone(),
                    or_dash(pool.protocol.as_deref()),
                    pool.balancing.clone(),
                    list(&pool.hosts),
                    list(&pool.resources),
                    pool.name.clone(),
                ]
            })
            .collect();
        let headers: &[&str] = match self.lang {
            Lang::Fr => &[
                "ID",
                "PROTOCOLE",
                "RÉPARTITION",
                "HÔTES",
                "RESSOURCES",
                "NOM",
            ],
            Lang::En => &["ID", "PROTOCOL", "BALANCING", "HOSTS", "RESOURCES", "NAME"],
        };
        self.print(&table(headers, &rows))
    }

    async fn pool(&mut self, command: PoolCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            PoolCommand::Add {
                id,
                name,
                hosts,
                balancing,
                output,
            } => {
                let spec = PoolSpec {
                    id,
                    name: name.unwrap_or_default(),
                    hosts,
                    balancing,
                };
                let view = admin.create_pool(actor, &spec).await?;
                self.show_pools(&[view], output)
            }
            PoolCommand::Set {
                id,
                name,
                hosts,
                add_host,
                remove_host,
                balancing,
                output,
            } => {
                let current = admin.get_pool(actor, &id).await?;
                let mut members = if hosts.is_empty() {
                    current.hosts
                } else {
                    hosts
                };
                members.retain(|host| !remove_host.contains(host));
                members.extend(add_host);
                let spec = PoolSpec {
                    id: id.clone(),
                    name: name.unwrap_or(current.name),
                    hosts: members,
                    balancing: balancing.or(Some(current.balancing)),
                };
                let view = admin.put_pool(actor, &id, &spec).await?;
                self.show_pools(&[view], output)
            }
            PoolCommand::List { output } => {
                let pools = admin.list_pools(actor).await?;
                self.show_pools(&pools, output)
            }
            PoolCommand::Remove { id } => {
                admin.delete_pool(actor, &id).await?;
                self.say(
                    &format!("pool {id} supprimé"),
                    &format!("pool {id} removed"),
                )
            }
        }
    }

    // ----- resources -----

    fn resource_table(&mut self, resources: &[ResourceView]) -> Done {
        let rows: Vec<Vec<String>> = resources
            .iter()
            .map(|resource| {
                vec![
                    resource.id.clone(),
                    resource.kind.clone(),
                    resource.pool.clone(),
                    match self.lang {
                        Lang::Fr => resource.name_fr.clone(),
                        Lang::En => resource.name_en.clone(),
                    },
                    or_dash(resource.program.as_deref()),
                ]
            })
            .collect();
        let headers: &[&str] = match self.lang {
            Lang::Fr => &["ID", "TYPE", "POOL", "NOM", "PROGRAMME"],
            Lang::En => &["ID", "KIND", "POOL", "NAME", "PROGRAM"],
        };
        self.print(&table(headers, &rows))
    }

    fn show_resource(&mut self, resource: &ResourceView, output: Output) -> Done {
        if output.json {
            return self.json(resource);
        }
        let icon = resource.icon.as_ref().map_or_else(
            || "-".to_string(),
            |icon| format!("{} ({} base64 characters)", icon.mime, icon.data.len()),
        );
        let text = fields(&[
            ("id", resource.id.clone()),
            ("kind", resource.kind.clone()),
            ("name_fr", resource.name_fr.clone()),
            ("name_en", resource.name_en.clone()),
            ("pool", resource.pool.clone()),
            ("program", or_dash(resource.program.as_deref())),
            ("working_dir", or_dash(resource.working_dir.as_deref())),
            ("icon", icon),
        ]);
        self.print(&text)
    }

    async fn resource(&mut self, command: ResourceCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            ResourceCommand::Add {
                id,
                pool,
                name_fr,
                name_en,
                kind,
                program,
                icon,
                working_dir,
                output,
            } => {
                let icon = match icon {
                    Some(path) => Some(read_icon(&path)?),
                    None => None,
                };
                let spec = ResourceSpec {
                    id,
                    kind,
                    program,
                    name_fr,
                    name_en,
                    pool,
                    icon,
                    working_dir,
                };
                let view = admin.create_resource(actor, &spec).await?;
                self.show_resource(&view, output)
            }
            ResourceCommand::List { output } => {
                let resources = admin.list_resources(actor).await?;
                if output.json {
                    self.json(&resources)
                } else {
                    self.resource_table(&resources)
                }
            }
            ResourceCommand::Show { id, output } => {
                let view = admin.get_resource(actor, &id).await?;
                self.show_resource(&view, output)
            }
            ResourceCommand::Remove { id } => {
                admin.delete_resource(actor, &id).await?;
                self.say(
                    &format!("ressource {id} supprimée"),
                    &format!("resource {id} removed"),
                )
            }
        }
    }

    // ----- entitlements -----

    async fn entitle(&mut self, command: EntitleCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            EntitleCommand::Grant(args) => {
                let spec = args.spec();
                let view = admin.grant(actor, &spec).await?;
                let (fr, en) = subject_text(view.user.as_deref(), view.group.as_deref());
                self.say(
                    &format!("{fr} peut ouvrir {}", view.resource),
                    &format!("{en} may open {}", view.resource),
                )
            }
            EntitleCommand::Revoke(args) => {
                let spec = args.spec();
                admin.revoke(actor, &spec).await?;
                let (fr, en) = subject_text(spec.user.as_deref(), spec.group.as_deref());
                self.say(
                    &format!("{fr} ne peut plus ouvrir {}", spec.resource),
                    &format!("{en} may no longer open {}", spec.resource),
                )
            }
            EntitleCommand::List { output } => {
                let entitlements = admin.list_entitlements(actor).await?;
                if output.json {
                    return self.json(&entitlements);
                }
                let rows: Vec<Vec<String>> = entitlements
                    .iter()
                    .map(|entitlement| {
                        vec![
                            subject_text(entitlement.user.as_deref(), entitlement.group.as_deref()).1,
                            entitlement.resource.clone(),
                        ]
                    })
                    .collect();
                let headers: &[&str] = match self.lang {
                    Lang::Fr => &["QUI", "RESSOURCE"],
                    Lang::En => &["WHO", "RESOURCE"],
                };
                self.print(&table(headers, &rows))
            }
        }
    }

    // ----- users -----

    fn user_table(&mut self, users: &[UserView]) -> Done {
        let lang = self.lang;
        let rows: Vec<Vec<String>> = users
            .iter()
            .map(|user| {
                vec![
                    user.login.clone(),
                    list(&user.roles),
                    list(&user.groups),
                    yes_no(user.enabled, lang),
                    user.source.clone(),
                    yes_no(user.totp_enrolled, lang),
                    user.display_name.clone(),
                ]
            })
            .collect();
        let headers: &[&str] = match lang {
            Lang::Fr => &[
                "IDENTIFIANT",
                "RÔLES",
                "GROUPES",
                "ACTIF",
                "SOURCE",
                "TOTP",
                "NOM",
            ],
            Lang::En => &[
                "LOGIN", "ROLES", "GROUPS", "ENABLED", "SOURCE", "TOTP", "NAME",
            ],
        };
        self.print(&table(headers, &rows))
    }

    fn show_user(&mut self, user: &UserView, output: Output) -> Done {
        if output.json {
            return self.json(user);
        }
        let lang = self.lang;
        let text = fields(&[
            ("login", user.login.clone()),
            ("id", user.id.clone()),
            ("display_name", user.display_name.clone()),
            ("roles", list(&user.roles)),
            ("groups", list(&user.groups)),
            ("enabled", yes_no(user.enabled, lang)),
            ("source", user.source.clone()),
            ("password_set", yes_no(user.password_set, lang)),
            ("totp_enrolled", yes_no(user.totp_enrolled, lang)),
        ]);
        self.print(&text)
    }

    async fn user(&mut self, command: UserCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            UserCommand::Add {
                login,
                display_name,
                roles,
                groups,
                disabled,
                password_stdin,
                output,
            } => {
                let password = if password_stdin {
                    Some(self.read_password()?)
                } else {
                    None
                };
                let spec = UserSpec {
                    login,
                    display_name: display_name.unwrap_or_default(),
                    password,
                    roles: if roles.is_empty() {
                        vec!["user".into()]
                    } else {
                        roles
                    },
                    groups,
                    enabled: !disabled,
                };
                let view = admin.create_user(actor, &spec).await?;
                self.show_user(&view, output)
            }
            UserCommand::Set {
                login,
                display_name,
                roles,
                groups,
                no_groups,
                output,
            } => {
                let current = admin.get_user(actor, &login).await?;
                let spec = UserSpec {
                    login: login.clone(),
                    display_name: display_name.unwrap_or(current.display_name),
                    password: None,
                    roles: if roles.is_empty() {
                        current.roles
                    } else {
                        roles
                    },
                    groups: if no_groups {
                        Vec::new()
                    } else if groups.is_empty() {
                        current.groups
                    } else {
                        groups
                    },
                    enabled: current.enabled,
                };
                let view = admin.put_user(actor, &login, &spec).await?;
                self.show_user(&view, output)
            }
            UserCommand::List { output } => {
                let users = admin.list_users(actor).await?;
                if output.json {
                    self.json(&users)
                } else {
                    self.user_table(&users)
                }
            }
            UserCommand::Show { login, output } => {
                let view = admin.get_user(actor, &login).await?;
                self.show_user(&view, output)
            }
            UserCommand::Remove { login } => {
                admin.delete_user(actor, &login).await?;
                self.say(
                    &format!("utilisateur {login} supprimé"),
                    &format!("user {login} removed"),
                )
            }
            UserCommand::Password { login } => {
                let password = self.read_password()?;
                admin
                    .set_user_password(actor, &login, &PasswordSpec { password })
                    .await?;
                self.say(
                    &format!("mot de passe de {login} changé"),
                    &format!("password of {login} changed"),
                )
            }
            UserCommand::TotpReset { login } => {
                admin.reset_totp(actor, &login).await?;
                self.say(
                    &format!("second facteur de {login} oublié : la prochaine connexion en enrôlera un nouveau"),
                    &format!("second factor of {login} forgotten: the next login enrols a new one"),
                )
            }
            UserCommand::Enable { login } => {
                admin.set_user_enabled(actor, &login, true).await?;
                self.say(
                    &format!("utilisateur {login} activé"),
                    &format!("user {login} enabled"),
                )
            }
            UserCommand::Disable { login } => {
                admin.set_user_enabled(actor, &login, false).await?;
                self.say(
                    &format!("utilisateur {login} désactivé"),
                    &format!("user {login} disabled"),
                )
            }
        }
    }

    // ----- groups -----

    async fn group(&mut self, command: GroupCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            GroupCommand::Add { id, name, output } => {
                let spec = GroupSpec {
                    id,
                    name: name.unwrap_or_default(),
                };
                let view = admin.create_group(actor, &spec).await?;
                if output.json {
                    return self.json(&view);
                }
                self.say(
                    &format!("groupe {} créé", view.id),
                    &format!("group {} added", view.id),
                )
            }
            GroupCommand::List { output } => {
                let groups = admin.list_groups(actor).await?;
                if output.json {
                    return self.json(&groups);
                }
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|group| vec![group.id.clone(), list(&group.members), group.name.clone()])
                    .collect();
                let headers: &[&str] = match self.lang {
                    Lang::Fr => &["ID", "MEMBRES", "NOM"],
                    Lang::En => &["ID", "MEMBERS", "NAME"],
                };
                self.print(&table(headers, &rows))
            }
            GroupCommand::Remove { id } => {
                admin.delete_group(actor, &id).await?;
                self.say(
                    &format!("groupe {id} supprimé"),
                    &format!("group {id} removed"),
                )
            }
            GroupCommand::AddMember { id, login } => {
                admin.add_member(actor, &id, &login).await?;
                self.say(
                    &format!("{login} fait partie du groupe {id}"),
                    &format!("{login} is in group {id}"),
                )
            }
            GroupCommand::RemoveMember { id, login } => {
                admin.remove_member(actor, &id, &login).await?;
                self.say(
                    &format!("{login} ne fait plus partie du groupe {id}"),
                    &format!("{login} is no longer in group {id}"),
                )
            }
        }
    }

    // ----- policies -----

    fn show_policy(&mut self, policy: &PolicyView) -> Done {
        let lang = self.lang;
        let unset = || match lang {
            Lang::Fr => "(non défini)".to_string(),
            Lang::En => "(not set)".to_string(),
        };
        let flag = |value: Option<bool>| value.map_or_else(unset, |value| yes_no(value, lang));
        let number = |value: Option<u32>, zero: (&str, &str)| {
            value.map_or_else(unset, |value| match (value, lang) {
                (0, Lang::Fr) => zero.0.to_string(),
                (0, Lang::En) => zero.1.to_string(),
                (value, _) => value.to_string(),
            })
        };
        let text = fields(&[
            ("scope", format!("{} {}", policy.scope, policy.id)),
            ("clipboard_in", flag(policy.clipboard_in)),
            ("clipboard_out", flag(policy.clipboard_out)),
            ("file_transfer", flag(policy.file_transfer)),
            (
                "max_bandwidth_kbps",
                number(policy.max_bandwidth_kbps, ("illimité", "unlimited")),
            ),
            (
                "idle_timeout_secs",
                number(policy.idle_timeout_secs, ("jamais", "never")),
            ),
            (
                "disconnected_keep_secs",
                number(policy.disconnected_keep_secs, ("0", "0")),
            ),
            (
                "allowed_hours",
                policy.allowed_hours.as_ref().map_or_else(unset, |hours| {
                    if hours.is_empty() {
                        match lang {
                            Lang::Fr => "jamais".into(),
                            Lang::En => "never".into(),
                        }
                    } else {
                        hours.join("; ")
                    }
                }),
            ),
        ]);
        self.print(&text)
    }

    async fn policy(&mut self, command: PolicyCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        match command {
            PolicyCommand::Set {
                scope,
                clipboard_in,
                clipboard_out,
                file_transfer,
                max_bandwidth_kbps,
                idle_timeout_secs,
                disconnected_keep_secs,
                hours,
                unset,
                output,
            } => {
                let (kind, id) = scope.parts();
                let mut spec = match admin.get_policy(actor, kind, id).await {
                    Ok(current) => spec_of_policy(&current),
                    Err(AdminError::NotFound { .. }) => PolicySpec::default(),
                    Err(error) => return Err(error.into()),
                };
                spec.clipboard_in = clipboard_in.or(spec.clipboard_in);
                spec.clipboard_out = clipboard_out.or(spec.clipboard_out);
                spec.file_transfer = file_transfer.or(spec.file_transfer);
                spec.max_bandwidth_kbps = max_bandwidth_kbps.or(spec.max_bandwidth_kbps);
                spec.idle_timeout_secs = idle_timeout_secs.or(spec.idle_timeout_secs);
                spec.disconnected_keep_secs =
                    disconnected_keep_secs.or(spec.disconnected_keep_secs);
                if !hours.is_empty() {
                    spec.allowed_hours = Some(hours);
                }
                for field in &unset {
                    match field.as_str() {
                        "clipboard_in" => spec.clipboard_in = None,
                        "clipboard_out" => spec.clipboard_out = None,
                        "file_transfer" => spec.file_transfer = None,
                        "max_bandwidth_kbps" => spec.max_bandwidth_kbps = None,
                        "idle_timeout_secs" => spec.idle_timeout_secs = None,
                        "disconnected_keep_secs" => spec.disconnected_keep_secs = None,
                        "allowed_hours" | "hours" => spec.allowed_hours = None,
                        other => {
                            return Err(Failure::Other(anyhow!(match self.lang {
                                Lang::Fr => format!(
                                    "--unset {other} : champ inconnu (clipboard_in, clipboard_out, file_transfer, max_bandwidth_kbps, idle_timeout_secs, disconnected_keep_secs, allowed_hours)"
                                ),
                                Lang::En => format!(
                                    "--unset {other}: unknown field (clipboard_in, clipboard_out, file_transfer, max_bandwidth_kbps, idle_timeout_secs, disconnected_keep_secs, allowed_hours)"
                                ),
                            })));
                        }
                    }
                }
                let view = admin.put_policy(actor, kind, id, &spec).await?;
                if output.json {
                    self.json(&view)
                } else {
                    self.show_policy(&view)
                }
            }
            PolicyCommand::Show { scope, output } => {
                let (kind, id) = scope.parts();
                let view = admin.get_policy(actor, kind, id).await?;
                if output.json {
                    self.json(&view)
                } else {
                    self.show_policy(&view)
                }
            }
            PolicyCommand::List { output } => {
                let policies = admin.list_policies(actor).await?;
                if output.json {
                    return self.json(&policies);
                }
                for (index, policy) in policies.iter().enumerate() {
                    if index > 0 {
                        writeln!(self.out)?;
                    }
                    self.show_policy(policy)?;
                }
                Ok(())
            }
            PolicyCommand::Remove { scope } => {
                let (kind, id) = scope.parts();
                admin.delete_policy(actor, kind, id).await?;
                self.say(
                    &format!("politique {kind} {id} supprimée"),
                    &format!("policy of {kind} {id} removed"),
                )
            }
            PolicyCommand::Effective {
                user,
                resource,
                output,
            } => {
                let view = admin.effective_policy(actor, &user, &resource).await?;
                if output.json {
                    return self.json(&view);
                }
                let lang = self.lang;
                let zero = |value: u32, fr: &str, en: &str| match (value, lang) {
                    (0, Lang::Fr) => fr.to_string(),
                    (0, Lang::En) => en.to_string(),
                    (value, _) => value.to_string(),
                };
                let rows = vec![
                    vec!["entitled".into(), yes_no(view.entitled, lang), "-".into()],
                    vec![
                        "clipboard_in".into(),
                        yes_no(view.clipboard_in.value, lang),
                        view.clipboard_in.source.clone(),
                    ],
                    vec![
                        "clipboard_out".into(),
                        yes_no(view.clipboard_out.value, lang),
                        view.clipboard_out.source.clone(),
                    ],
                    vec![
                        "file_transfer".into(),
                        yes_no(view.file_transfer.value, lang),
                        view.file_transfer.source.clone(),
                    ],
                    vec![
                        "max_bandwidth_kbps".into(),
                        zero(view.max_bandwidth_kbps.value, "illimité", "unlimited"),
                        view.max_bandwidth_kbps.source.clone(),
                    ],
                    vec![
                        "idle_timeout_secs".into(),
                        zero(view.idle_timeout_secs.value, "jamais", "never"),
                        view.idle_timeout_secs.source.clone(),
                    ],
                    vec![
                        "disconnected_keep_secs".into(),
                        view.disconnected_keep_secs.value.to_string(),
                        view.disconnected_keep_secs.source.clone(),
                    ],
                    vec![
                        "allowed_hours".into(),
                        if view.allowed_hours.value.is_empty() {
                            zero(0, "jamais", "never")
                        } else {
                            view.allowed_hours.value.join("; ")
                        },
                        view.allowed_hours.source.clone(),
                    ],
                ];
                let headers: &[&str] = match lang {
                    Lang::Fr => &["CHAMP", "VALEUR", "SOURCE"],
                    Lang::En => &["FIELD", "VALUE", "SOURCE"],
                };
                self.print(&table(headers, &rows))
            }
        }
    }

    // ----- licences -----

    async fn licence(&mut self, command: LicenceCommand) -> Done {
        let (admin, actor) = (self.admin, self.actor);
        let view = match command {
            LicenceCommand::Show { output } => {
                let view = admin.licences(actor).await?;
                if output.json {
                    return self.json(&view);
                }
                view
            }
            LicenceCommand::Set { capacity, output } => {
                let view = admin
                    .set_licence_capacity(
                        actor,
                        &LicenceSpec {
                            capacity: Some(capacity),
                        },
                    )
                    .await?;
                if output.json {
                    return self.json(&view);
                }
                view
            }
        };
        let text = fields(&[
            ("capacity", view.capacity.to_string()),
            ("in_use", view.in_use.to_string()),
            ("available", view.available.to_string()),
        ]);
        self.print(&text)
    }
}

/// `user alice` / `group compta`, in French and in English.
fn subject_text(user: Option<&str>, group: Option<&str>) -> (String, String) {
    match (user, group) {
        (Some(user), _) => (format!("l'utilisateur {user}"), format!("user {user}")),
        (None, Some(group)) => (format!("le groupe {group}"), format!("group {group}")),
        (None, None) => ("-".into(), "-".into()),
    }
}

/// The spec that would store `host` as it is (its password kept).
fn spec_of_host(host: &HostView) -> HostSpec {
    HostSpec {
        id: host.id.clone(),
        name: host.name.clone(),
        protocol: host.protocol.clone(),
        address: host.address.clone(),
        port: Some(i64::from(host.port)),
        max_sessions: Some(i64::from(host.max_sessions)),
        weight: Some(i64::from(host.weight)),
        draining: host.draining,
        certificate: Some(host.certificate.clone()),
        credentials: Some(host.credentials.as_str().into()),
        username: host.username.clone(),
        domain: host.domain.clone(),
        password: None,
        security: Some(host.security.as_str().into()),
        keyboard: Some(host.keyboard.as_str().into()),
        keyboard_layout: Some(i64::from(host.keyboard_layout)),
        h264: Some(host.h264),
    }
}

/// The spec that would store `policy` as it is.
fn spec_of_policy(policy: &PolicyView) -> PolicySpec {
    PolicySpec {
        clipboard_in: policy.clipboard_in,
        clipboard_out: policy.clipboard_out,
        file_transfer: policy.file_transfer,
        max_bandwidth_kbps: policy.max_bandwidth_kbps.map(i64::from),
        idle_timeout_secs: policy.idle_timeout_secs.map(i64::from),
        disconnected_keep_secs: policy.disconnected_keep_secs.map(i64::from),
        allowed_hours: policy.allowed_hours.clone(),
    }
}

/// Reads an icon file; its type comes from its name (`.png`, `.svg`), and the service checks
/// its bytes.
fn read_icon(path: &Path) -> anyhow::Result<Icon> {
    use base64::Engine;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let mime = match extension.as_deref() {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => bail!("{}: the icon must be a .png or .svg file", path.display()),
    };
    Ok(Icon {
        mime: mime.into(),
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_characters() {
        let text = table(
            &["ID", "NOM"],
            &[
                vec!["h1".into(), "Hôte é".into()],
                vec!["long-id".into(), "x".into()],
            ],
        );
        assert_eq!(text, "ID       NOM\nh1       Hôte é\nlong-id  x\n");
    }

    #[test]
    fn layouts_in_hex_or_decimal() {
        assert_eq!(parse_layout("0x040C"), Ok(1036));
        assert_eq!(parse_layout("1033"), Ok(1033));
        assert!(parse_layout("azerty").is_err());
    }
}
