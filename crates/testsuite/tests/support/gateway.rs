//! Starts a real gateway on 127.0.0.1:0 with a generated configuration.

use super::viewer::ViewerClient;
use super::{TempDir, compare_rgba, screenshot};
use anyhow::{Context, Result, bail};
use bascule_desktop::Desktop;
use bascule_gateway::{Config, Gateway, RunningGateway, hash_password};
use std::net::SocketAddr;
use std::time::Duration;

/// A published desktop for the test configuration.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    /// Stored encrypted with the gateway's `secret.key` (VNC password, RDP service password).
    pub(crate) password: Option<String>,
    /// More `key = value` lines of the resource table, written as given (`protocol = "rdp"`...).
    pub(crate) lines: Vec<String>,
}

impl Resource {
    pub(crate) fn new(id: &str, addr: SocketAddr, password: Option<&str>) -> Resource {
        Resource { id: id.into(), addr, password: password.map(str::to_owned), lines: Vec::new() }
    }

    /// An RDP resource with a US keyboard layout (the test X servers have a US keymap) and no
    /// credentials yet: add them with [`Resource::service`] or a `credentials` line.
    pub(crate) fn rdp(id: &str, addr: SocketAddr) -> Resource {
        Resource::new(id, addr, None).line("protocol = \"rdp\"").line("keyboard_layout = 0x0409")
    }

    /// A service account: `username`, and the password stored encrypted.
    pub(crate) fn service(mut self, username: &str, password: &str) -> Resource {
        self.password = Some(password.into());
        self.line(&format!("username = {}", toml_string(username)))
    }

    /// Adds a `key = value` line to the resource table.
    pub(crate) fn line(mut self, line: &str) -> Resource {
        self.lines.push(line.into());
        self
    }
}

/// A local account for the test configuration.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) resources: Vec<String>,
    pub(crate) roles: Vec<String>,
}

impl User {
    pub(crate) fn new(name: &str, password: &str, resources: &[&str]) -> User {
        User {
            name: name.into(),
            password: password.into(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            roles: Vec::new(),
        }
    }

    /// Gives roles (`user`, `helpdesk`, `admin`).
    pub(crate) fn roles(mut self, roles: &[&str]) -> User {
        self.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self
    }
}

/// A running gateway and its data directory.
pub(crate) struct TestGateway {
    pub(crate) running: RunningGateway,
    pub(crate) addr: SocketAddr,
    data_dir: TempDir,
}

impl TestGateway {
    /// The gateway's `data_dir` (certificate store, secret key, audit log).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }
}

/// A TOML basic string.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the configuration (with `extra` TOML tables such as `[login]`), binds and starts.
pub(crate) async fn start_gateway(users: &[User], resources: &[Resource], extra: &str) -> Result<TestGateway> {
    let data_dir = TempDir::new("gateway")?;
    // `@SEAL:secret@` in `extra` becomes the secret encrypted with this gateway's key.
    let mut extra = extra.to_owned();
    while let Some(start) = extra.find("@SEAL:") {
        let end = extra[start + 6..].find('@').map(|e| start + 6 + e).context("unterminated @SEAL:")?;
        let key = bascule_gateway::secrets::SecretKey::load_or_create(data_dir.path())?;
        let sealed = key.encrypt(&extra[start + 6..end]);
        extra.replace_range(start..=end, &sealed);
    }
    let extra = extra.as_str();
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {}\n\n{extra}\n",
        toml_string(&data_dir.path().display().to_string())
    );
    // The second factor is on by default; the tests that exercise it say so in `extra`.
    if !extra.contains("[mfa]") {
        toml.push_str("[mfa]\ntotp = \"off\"\n\n");
    }
    // Health probes connect to the hosts; tests that count connections to a fake server would
    // see them, so they are on only where a test asks for them.
    if !extra.contains("[health]") {
        toml.push_str("[health]\nenabled = false\n\n");
    }
    for user in users {
        let list: Vec<String> = user.resources.iter().map(|r| toml_string(r)).collect();
        let roles: Vec<String> = user.roles.iter().map(|r| toml_string(r)).collect();
        toml.push_str(&format!(
            "[[user]]\nname = {}\npassword_hash = {}\nresources = [{}]\nroles = [{}]\n\n",
            toml_string(&user.name),
            toml_string(&hash_password(&user.password)),
            list.join(", "),
            roles.join(", ")
        ));
    }
    for resource in resources {
        toml.push_str(&format!(
            "[[resource]]\nid = {id}\nname_fr = {id}\nname_en = {id}\nhost = {host}\nport = {port}\n",
            id = toml_string(&resource.id),
            host = toml_string(&resource.addr.ip().to_string()),
            port = resource.addr.port(),
        ));
        if let Some(password) = &resource.password {
            let key = bascule_gateway::secrets::SecretKey::load_or_create(data_dir.path())?;
            toml.push_str(&format!("password = {}\n", toml_string(&key.encrypt(password))));
        }
        for line in &resource.lines {
            toml.push_str(line);
            toml.push('\n');
        }
        toml.push('\n');
    }
    let config = Config::from_toml(&toml).with_context(|| format!("test configuration refused:\n{toml}"))?;
    let running = Gateway::bind(config).await.context("Gateway::bind")?.start().await.context("Gateway::start")?;
    let addr = running.address();
    if addr.port() == 0 {
        bail!("the gateway reports port 0");
    }
    Ok(TestGateway { running, addr, data_dir })
}

/// Lets the viewer's picture settle and compares it with a screenshot of the desktop, pixel for
/// pixel. The desktop may still be drawing when the first comparison runs (a shell prompt after
/// a command, a late update): up to three settle-and-compare rounds, each an exact comparison.
pub(crate) async fn assert_viewer_shows_desktop(
    viewer: &mut ViewerClient,
    desktop: &Desktop,
    min_frames: u32,
) -> Result<()> {
    let mut last_error = String::new();
    for round in 0..3 {
        viewer.settle(if round == 0 { min_frames } else { 0 }).await?;
        let (w, h, rgba) = screenshot(desktop)?;
        match compare_rgba("viewer canvas vs. xwd screenshot", viewer.picture(), (w, h, &rgba)) {
            Ok(()) => return Ok(()),
            Err(error) => {
                eprintln!("round {round}: {error}");
                last_error = error;
            }
        }
        // Give the desktop and the gateway a moment; anything new is drawn by the next settle.
        let _ = viewer.recv(Duration::from_secs(1)).await?;
    }
    bail!("{last_error}")
}
