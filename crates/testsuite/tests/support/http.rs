//! A minimal HTTPS/1.1 client for the gateway: TLS that accepts the gateway's self-signed
//! certificate, one request per connection, and the login / launch / WebSocket steps a browser
//! takes.

use super::viewer::{Tls, ViewerClient, Ws};
use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts any server certificate: the gateway under test generates a self-signed one.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // Already installed (by the gateway or another test) is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// A TLS connection to the gateway.
pub(crate) async fn tls_connect(addr: SocketAddr) -> Result<Tls> {
    let tcp = tokio::time::timeout(HTTP_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("timed out connecting to {addr}"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(HTTP_TIMEOUT, connector.connect(name, tcp))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake with the gateway")
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `(name, value)` of every `Set-Cookie`.
    pub(crate) fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| {
                let pair = v.split(';').next()?;
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_owned(), value.trim().to_owned()))
            })
            .collect()
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("response body is not JSON: {:?}", self.text()))
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response> {
    let mut stream = tls_connect(addr).await?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: bascule-testsuite\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if body.is_some() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.map_or(0, <[u8]>::len)));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        if let Some(body) = body {
            stream.write_all(body).await?;
        }
        stream.flush().await?;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                // The server may close without a TLS close_notify.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no complete response within 30 s"))?
        .with_context(|| format!("{method} {path}"))?;
    parse_response(&raw).with_context(|| format!("{method} {path}: bad response {:?}", String::from_utf8_lossy(&raw)))
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line.split_whitespace().nth(1).context("no status code")?.parse().context("status code")?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(length) =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.parse::<usize>())
    {
        let length = length.context("content-length")?;
        if rest.len() < length {
            bail!("body of {} bytes, content-length {length}", rest.len());
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").context("chunk size line")?;
        let size_text = std::str::from_utf8(&data[..line_end])?.split(';').next().unwrap_or("").trim().to_owned();
        let size = usize::from_str_radix(&size_text, 16).context("chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub(crate) fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The value of an HTML attribute such as `data-csrf`.
pub(crate) fn attribute(html: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

pub(crate) fn origin(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

pub(crate) fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// Runs the browser's login: `GET /login` for the CSRF cookie and field, then the form `POST`.
/// Returns the POST's response, whatever it is.
pub(crate) async fn submit_login(addr: SocketAddr, user: &str, password: &str) -> Result<Response> {
    let page = request(addr, "GET", "/login", &[], None).await?;
    if page.status != 200 {
        bail!("GET /login answered {}", page.status);
    }
    let cookie = page.cookie("bascule_login_csrf").context("GET /login set no bascule_login_csrf cookie")?;
    let csrf = hidden_input(&page.text(), "csrf").context("the login page has no hidden csrf input")?;
    let body = form_encode(&[("username", user), ("password", password), ("csrf", &csrf)]);
    let cookie_header = format!("bascule_login_csrf={cookie}");
    let origin = origin(addr);
    request(
        addr,
        "POST",
        "/login",
        &[("Cookie", &cookie_header), ("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await
}

/// A signed-in browser: its session cookie and the portal's CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    pub(crate) addr: SocketAddr,
    pub(crate) session: String,
    pub(crate) csrf: String,
}

/// Logs in and reads the CSRF token of the portal page.
pub(crate) async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Portal> {
    let response = submit_login(addr, user, password).await?;
    if response.status != 303 {
        bail!("login as {user} answered {}, expected 303: {}", response.status, response.text());
    }
    let session = response.cookie("bascule_session").context("login set no bascule_session cookie")?;
    let mut portal = Portal { addr, session, csrf: String::new() };
    portal.csrf = portal.csrf_of_portal().await?;
    Ok(portal)
}

impl Portal {
    pub(crate) fn cookie_header(&self) -> String {
        format!("bascule_session={}", self.session)
    }

    pub(crate) fn origin(&self) -> String {
        origin(self.addr)
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Response> {
        request(self.addr, "GET", path, &[("Cookie", &self.cookie_header())], None).await
    }

    /// The CSRF token in the portal's logout form.
    pub(crate) async fn csrf_of_portal(&self) -> Result<String> {
        let page = self.get("/").await?;
        if page.status != 200 {
            bail!("GET / answered {}", page.status);
        }
        hidden_input(&page.text(), "csrf").context("the portal page has no hidden csrf input")
    }

    /// The CSRF token the viewer page carries in `data-csrf`.
    pub(crate) async fn csrf_of_viewer(&self, resource: &str) -> Result<String> {
        let page = self.get(&format!("/view/{resource}")).await?;
        if page.status != 200 {
            bail!("GET /view/{resource} answered {}", page.status);
        }
        attribute(&page.text(), "data-csrf").context("the viewer page has no data-csrf")
    }

    /// `POST /api/launch`, with the given CSRF header (none when `None`).
    pub(crate) async fn launch_raw(&self, resource: &str, csrf: Option<&str>) -> Result<Response> {
        let body = serde_json::json!({ "resource": resource }).to_string();
        let cookie = self.cookie_header();
        let origin = self.origin();
        let mut headers =
            vec![("Cookie", cookie.as_str()), ("Origin", origin.as_str()), ("Content-Type", "application/json")];
        if let Some(csrf) = csrf {
            headers.push(("X-CSRF-Token", csrf));
        }
        request(self.addr, "POST", "/api/launch", &headers, Some(body.as_bytes())).await
    }

    /// A launch ticket for `resource`.
    pub(crate) async fn launch(&self, resource: &str) -> Result<String> {
        let csrf = self.csrf_of_viewer(resource).await?;
        let response = self.launch_raw(resource, Some(&csrf)).await?;
        if response.status != 200 {
            bail!("launch of {resource} answered {}: {}", response.status, response.text());
        }
        let json = response.json()?;
        let ticket = json["ticket"].as_str().context("no ticket in the launch answer")?.to_owned();
        if json["ws"].as_str() != Some(format!("/ws?ticket={ticket}").as_str()) {
            bail!("unexpected ws path in {json}");
        }
        Ok(ticket)
    }

    /// Upgrades `/ws?ticket=...`; `Err(status)` when the gateway answers with plain HTTP.
    pub(crate) async fn open_ws(&self, ticket: &str) -> Result<Result<Ws, u16>> {
        self.open_ws_via(ticket, self.addr).await
    }

    /// Like [`Portal::open_ws`], with the TCP connection made to `connect` (a relay in front of
    /// the gateway, such as the link emulator) instead of the gateway itself.
    pub(crate) async fn open_ws_via(&self, ticket: &str, connect: SocketAddr) -> Result<Result<Ws, u16>> {
        use tungstenite::client::IntoClientRequest;
        use tungstenite::http::HeaderValue;
        let mut request = format!("wss://{}/ws?ticket={ticket}", self.addr).into_client_request()?;
        request.headers_mut().insert("Cookie", HeaderValue::from_str(&self.cookie_header())?);
        request.headers_mut().insert("Origin", HeaderValue::from_str(&self.origin())?);
        let stream = tls_connect(connect).await?;
        let handshake = tokio::time::timeout(HTTP_TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .context("WebSocket handshake timed out")?;
        match handshake {
            Ok((ws, _)) => Ok(Ok(ws)),
            Err(tungstenite::Error::Http(response)) => Ok(Err(response.status().as_u16())),
            Err(error) => Err(error).context("WebSocket handshake"),
        }
    }

    /// `POST /api/shadow` then the upgrade: a helpdesk viewer of someone's live session.
    pub(crate) async fn open_shadow(&self, session: &str) -> Result<ViewerClient> {
        let body = serde_json::json!({ "session": session }).to_string();
        let cookie = self.cookie_header();
        let origin = self.origin();
        let headers = [
            ("Cookie", cookie.as_str()),
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", self.csrf.as_str()),
        ];
        let response = request(self.addr, "POST", "/api/shadow", &headers, Some(body.as_bytes())).await?;
        if response.status != 200 {
            bail!("shadow of {session} answered {}: {}", response.status, response.text());
        }
        let ticket = response.json()?["ticket"].as_str().context("no ticket")?.to_owned();
        match self.open_ws(&ticket).await? {
            Ok(ws) => ViewerClient::start(ws).await,
            Err(status) => bail!("the shadow's WebSocket upgrade was refused with HTTP {status}"),
        }
    }

    /// A form `POST` with the portal's CSRF token added.
    pub(crate) async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Result<Response> {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let body = form_encode(&all);
        let cookie = self.cookie_header();
        let origin = self.origin();
        request(
            self.addr,
            "POST",
            path,
            &[("Cookie", &cookie), ("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
        .await
    }

    /// Launch, then upgrade through `connect` (a relay in front of the gateway) and send the
    /// ClientHello: a running viewer of `resource` on an emulated link.
    pub(crate) async fn open_viewer_via(&self, resource: &str, connect: SocketAddr) -> Result<ViewerClient> {
        let ticket = self.launch(resource).await?;
        match self.open_ws_via(&ticket, connect).await? {
            Ok(ws) => ViewerClient::start(ws).await,
            Err(status) => bail!("the WebSocket upgrade for {resource} was refused with HTTP {status}"),
        }
    }

    /// Launch, upgrade and send the ClientHello: a running viewer of `resource`.
    pub(crate) async fn open_viewer(&self, resource: &str) -> Result<ViewerClient> {
        self.open_viewer_with(resource, crate::support::viewer::BROWSER_CODECS).await
    }

    /// Opens a viewer that announces `codecs` in its hello.
    pub(crate) async fn open_viewer_with(&self, resource: &str, codecs: u32) -> Result<ViewerClient> {
        let ticket = self.launch(resource).await?;
        match self.open_ws(&ticket).await? {
            Ok(ws) => ViewerClient::start_with(ws, codecs).await,
            Err(status) => bail!("the WebSocket upgrade for {resource} was refused with HTTP {status}"),
        }
    }
}

/// `GET /healthz`.
pub(crate) async fn healthz(addr: SocketAddr) -> Result<Response> {
    request(addr, "GET", "/healthz", &[], None).await
}
