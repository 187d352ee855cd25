//! TLS upgrade of the RDP transport with rustls (ring provider) and a certificate verifier
//! that follows [`CertificatePolicy`].

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{chain, RdpError};
use crate::{hex, CertificatePolicy};

/// What the verifier saw, for error reporting after a failed handshake.
#[derive(Debug, Default)]
struct Seen {
    leaf_sha256: Option<[u8; 32]>,
    rejection: Option<RdpError>,
}

#[derive(Debug)]
struct PolicyVerifier {
    policy: CertificatePolicy,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Seen>>,
}

impl PolicyVerifier {
    fn record(&self, f: impl FnOnce(&mut Seen)) {
        if let Ok(mut seen) = self.seen.lock() {
            f(&mut seen);
        }
    }
}

pub(crate) fn sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha256(end_entity.as_ref());
        self.record(|s| s.leaf_sha256 = Some(got));
        match &self.policy {
            CertificatePolicy::AcceptAny => Ok(ServerCertVerified::assertion()),
            CertificatePolicy::Pinned(expected) => {
                if *expected == got {
                    Ok(ServerCertVerified::assertion())
                } else {
                    self.record(|s| {
                        s.rejection = Some(RdpError::CertificateMismatch {
                            expected: hex(expected),
                            got: hex(&got),
                        })
                    });
                    Err(rustls::Error::General("certificate fingerprint mismatch".to_owned()))
                }
            }
            CertificatePolicy::System => {
                let Some(webpki) = &self.webpki else {
                    return Err(rustls::Error::General("no root store".to_owned()));
                };
                webpki
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                    .inspect_err(|e| {
                        let msg = format!("{e} (SHA-256 {})", hex(&got));
                        self.record(|s| s.rejection = Some(RdpError::CertificateUntrusted(msg)));
                    })
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Always check the handshake signature: a pin is worthless without proof of the key.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

pub(crate) struct Upgraded {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) leaf_der: Vec<u8>,
}

/// Runs the TLS handshake on `tcp` as IronRDP asks for it after X.224 negotiation.
pub(crate) async fn upgrade(tcp: TcpStream, host: &str, policy: &CertificatePolicy) -> Result<Upgraded, RdpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let webpki = match policy {
        CertificatePolicy::System => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| RdpError::CertificateUntrusted(format!("cannot build the root verifier: {e}")))?;
            Some(verifier)
        }
        _ => None,
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Arc::new(PolicyVerifier {
        policy: policy.clone(),
        webpki,
        algorithms,
        seen: seen.clone(),
    });

    let mut config = rustls::ClientConfig::builder_with_provider(provider as Arc<CryptoProvider>)
        .with_safe_default_protocol_versions()
        .map_err(|e| RdpError::Protocol(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // CredSSP binds to the server key of this very handshake; no resumption, no SNI games.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let name = ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("rdp.invalid".to_owned()).expect("static name is valid"));

    let stream = match connector.connect(name, tcp).await {
        Ok(s) => s,
        Err(e) => {
            let rejection = seen.lock().ok().and_then(|mut s| s.rejection.take());
            if let Some(r) = rejection {
                return Err(r);
            }
            let kind = e.kind();
            let detail = chain(&e);
            return Err(if crate::error::is_eof(Some(kind)) {
                RdpError::Refused(format!("server closed the connection during the TLS handshake ({detail})"))
            } else {
                RdpError::Protocol(format!("TLS handshake failed: {detail}"))
            });
        }
    };

    let leaf_der = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| RdpError::Protocol("TLS server sent no certificate".to_owned()))?;
    Ok(Upgraded { stream, leaf_der })
}

/// The subjectPublicKey bits of the certificate, as CredSSP wants them.
pub(crate) fn public_key_of(der: &[u8]) -> Result<Vec<u8>, RdpError> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| RdpError::Protocol(format!("cannot parse the server certificate: {e}")))?;
    Ok(cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec())
}
