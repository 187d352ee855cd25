//! `bascule demo`: a real desktop behind a real gateway, on this machine.

use anyhow::Context;
use bascule_desktop::{Desktop, DesktopOptions, VncServer};
use rand::Rng;
use std::net::SocketAddr;
use std::path::PathBuf;

const DEMO_USER: &str = "demo";
const DEMO_ADMIN: &str = "admin";

fn random_password(length: usize) -> String {
    // Letters and digits without look-alikes (0/O, 1/l/I), so the printed login is easy to type.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..length).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

pub(crate) fn run(listen: SocketAddr, data_dir: PathBuf) -> anyhow::Result<()> {
    let missing = bascule_desktop::missing_programs(VncServer::X11vnc);
    if !missing.is_empty() {
        let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
        let programs: Vec<&str> = missing.iter().map(|(program, _)| *program).collect();
        anyhow::bail!(
            "the demo desktop needs {} — install with: apt-get install {}",
            programs.join(", "),
            packages.join(" ")
        );
    }
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let log_dir = data_dir.join("logs");
    std::fs::create_dir_all(&log_dir)?;

    eprintln!("[1/3] starting the demo desktop (Xvfb + openbox + xterm + x11vnc)…");
    let vnc_password = random_password(8);
    let desktop = Desktop::start(DesktopOptions {
        width: 1280,
        height: 800,
        server: VncServer::X11vnc,
        password: Some(vnc_password.clone()),
        log_dir: log_dir.clone(),
        ..DesktopOptions::default()
    })
    .context("starting the demo desktop")?;
    let vnc = desktop.vnc_addr();
    eprintln!("      desktop {} served by x11vnc on {vnc} (VNC password kept on the gateway)", desktop.display());

    let user_password = random_password(12);
    let admin_password = random_password(14);
    let key = bascule_gateway::secrets::SecretKey::load_or_create(&data_dir)?;
    let sealed_vnc_password = key.encrypt(&vnc_password);
    let config_text = format!(
        r#"# Written by `bascule demo`. The VNC password is encrypted with secret.key and never reaches a browser.
# The database is data_dir/bascule.db (SQLite). The second factor is off in the demo only:
# `bascule serve` asks every user for a TOTP code by default.
listen = "{listen}"
data_dir = "{data}"

[mfa]
totp = "off"

[[user]]
name = "{DEMO_USER}"
display_name = "Utilisatrice de démonstration"
password_hash = "{hash}"
resources = ["demo"]

[[user]]
name = "{DEMO_ADMIN}"
display_name = "Administrateur de démonstration"
password_hash = "{admin_hash}"
resources = ["demo"]
roles = ["admin"]

[[resource]]
id = "demo"
name_fr = "Bureau de démonstration"
name_en = "Demo desktop"
protocol = "vnc"
host = "{host}"
port = {port}
password = "{sealed_vnc_password}"
"#,
        data = data_dir.display(),
        hash = bascule_gateway::hash_password(&user_password),
        admin_hash = bascule_gateway::hash_password(&admin_password),
        host = vnc.ip(),
        port = vnc.port(),
    );
    let config_path = data_dir.join("demo.toml");
    write_private(&config_path, &config_text)?;
    let config = bascule_gateway::Config::from_toml(&config_text)?;

    eprintln!("[2/3] starting the gateway…");
    let runtime = crate::runtime()?;
    let result = runtime.block_on(async {
        let gateway = bascule_gateway::Gateway::bind(config).await?;
        let (cert, generated) = gateway.certificate();
        let cert = cert.display().to_string();
        let address = gateway.local_addr()?;
        let running = gateway.start().await?;
        eprintln!("[3/3] ready.");
        let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
        println!();
        println!("  Bascule demo / démonstration");
        println!("  URL:       https://{host}:{}/", address.port());
        println!("  Login:     {DEMO_USER}");
        println!("  Password:  {user_password}");
        println!("  Admin:     {DEMO_ADMIN} / {admin_password}  (REST API under /api/v1, CLI: bascule host list --config {})", config_path.display());
        println!();
        println!(
            "  Certificate: {cert} ({}self-signed: your browser will ask you to accept it)",
            if generated { "new, " } else { "" }
        );
        println!("  Configuration written to {}", config_path.display());
        println!("  Stop with Ctrl+C: the demo desktop stops with it.");
        println!();
        crate::wait_for_signal().await;
        eprintln!("stopping…");
        running.shutdown().await?;
        anyhow::Ok(())
    });
    desktop.stop();
    result
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
