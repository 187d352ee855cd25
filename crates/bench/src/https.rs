//! What a browser does before the viewer's WebSocket: log in, read the viewer page's CSRF token,
//! ask `/api/launch` for a ticket, then open `wss://…/ws?ticket=…`.
//!
//! A minimal HTTPS/1.1 client (one request per connection) that accepts the gateway's
//! self-signed certificate. The login and the launch go straight to the gateway; only the
//! WebSocket goes through the emulated link, whose address is then the one the page is served
//! from (`Host` and `Origin` agree, as in a browser).

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;

/// TLS to the gateway.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts any server certificate: the benchmark's gateway generates a self-signed one.
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS connection to `addr` (the gateway, or the link in front of it).
pub async fn tls_connect(addr: SocketAddr) -> Result<Tls> {
    let tcp = tokio::time::timeout(HTTP_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("timed out connecting to {addr}"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let connector = tokio_rustls::TlsConnector::from(tls_config()?);
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(HTTP_TIMEOUT, connector.connect(name, tcp))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake with the gateway")
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a fresh connection and reads the whole response.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response> {
    let mut stream = tls_connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: bascule-bench\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if body.is_some() || method == "POST" {
        head.push_str(&format!(
            "Content-Length: {}\r\n",
            body.map_or(0, <[u8]>::len)
        ));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        if let Some(body) = body {
            stream.write_all(body).await?;
        }
        stream.flush().await?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw).await {
            Ok(_) => Ok(raw),
            // The server may close without a TLS close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(raw),
            Err(e) => Err(e),
        }
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no complete response within 30 s"))?
        .with_context(|| format!("{method} {path}"))?;
    parse_response(&raw).with_context(|| {
        format!(
            "{method} {path}: bad response {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .context("no status code")?
        .parse()
        .context("status code")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        decode_chunked(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&data[..line_end])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
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

/// The value of `NAME="..."` in a page (an attribute such as `data-csrf`, or `value` after a
/// `name="csrf"`).
fn attribute_after<'a>(html: &'a str, marker: &str) -> Option<&'a str> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(&html[start..end])
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct Portal {
    addr: SocketAddr,
    session: String,
}

impl Portal {
    /// Logs in at the gateway `addr` as the browser's login form does (no second factor).
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Portal> {
        let page = request(addr, "GET", "/login", &[], None).await?;
        if page.status != 200 {
            bail!("GET /login answered {}", page.status);
        }
        let cookie = page
            .cookie("bascule_login_csrf")
            .context("GET /login set no bascule_login_csrf cookie")?;
        let text = page.text();
        let csrf = attribute_after(&text, "name=\"csrf\" value=\"")
            .context("the login page has no csrf field")?;
        let body = form_encode(&[("username", user), ("password", password), ("csrf", csrf)]);
        let cookie_header = format!("bascule_login_csrf={cookie}");
        let origin = format!("https://{addr}");
        let headers = [
            ("Cookie", cookie_header.as_str()),
            ("Origin", origin.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        let response = request(addr, "POST", "/login", &headers, Some(body.as_bytes())).await?;
        if response.status != 303 {
            bail!(
                "login as {user} answered {}: {}",
                response.status,
                response.text()
            );
        }
        let session = response
            .cookie("bascule_session")
            .context("the login set no bascule_session cookie")?;
        Ok(Portal { addr, session })
    }

    fn cookie_header(&self) -> String {
        format!("bascule_session={}", self.session)
    }

    /// A launch ticket for `resource`: the viewer page's CSRF token, then `POST /api/launch`.
    pub async fn launch(&self, resource: &str) -> Result<String> {
        let cookie = self.cookie_header();
        let page = request(
            self.addr,
            "GET",
            &format!("/view/{resource}"),
            &[("Cookie", &cookie)],
            None,
        )
        .await?;
        if page.status != 200 {
            bail!("GET /view/{resource} answered {}", page.status);
        }
        let text = page.text();
        let csrf =
            attribute_after(&text, "data-csrf=\"").context("the viewer page has no data-csrf")?;
        let body = serde_json::json!({ "resource": resource }).to_string();
        let origin = format!("https://{}", self.addr);
        let headers = [
            ("Cookie", cookie.as_str()),
            ("Origin", origin.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", csrf),
        ];
        let response = request(
            self.addr,
            "POST",
            "/api/launch",
            &headers,
            Some(body.as_bytes()),
        )
        .await?;
        if response.status != 200 {
            bail!(
                "launch of {resource} answered {}: {}",
                response.status,
                response.text()
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&response.body).context("the launch answer is not JSON")?;
        Ok(json["ticket"]
            .as_str()
            .context("no ticket in the launch answer")?
            .to_owned())
    }

    /// Opens `wss://{via}/ws?ticket=…`: `via` is where the browser reaches the gateway (here the
    /// emulated link in front of it).
    pub async fn open_ws(&self, via: SocketAddr, ticket: &str) -> Result<WebSocketStream<Tls>> {
        use tungstenite::client::IntoClientRequest;
        use tungstenite::http::HeaderValue;
        let mut request = format!("wss://{via}/ws?ticket={ticket}").into_client_request()?;
        request
            .headers_mut()
            .insert("Cookie", HeaderValue::from_str(&self.cookie_header())?);
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(&format!("https://{via}"))?);
        let stream = tls_connect(via).await?;
        let (ws, _) = tokio::time::timeout(
            HTTP_TIMEOUT,
            tokio_tungstenite::client_async(request, stream),
        )
        .await
        .context("WebSocket handshake timed out")?
        .context("WebSocket handshake")?;
        Ok(ws)
    }
}
