//! TLS on the AMQP listener (AMQPS), configured with rabbitmq.conf's keys:
//! `listeners.ssl.default = 5671` and `ssl_options.certfile`, `keyfile`,
//! `cacertfile`, `verify`, `fail_if_no_peer_cert`, `versions.N` and
//! `ciphers.N` (OpenSSL's or IANA's names of the suites rustls has). The
//! management API's HTTPS listener (`management.ssl.*`, `crate::http::https`)
//! builds its acceptor and does its handshakes here too.
//!
//! [`Reloadable`] holds a listener's acceptor and builds it again from the
//! same options when asked (SIGHUP, `warrenctl reload_certificates`): new
//! connections get the new certificate, open ones keep their session, and
//! files that do not make a valid configuration leave the old one in place.
//! The cluster link's reload (`crate::cluster::tls`) reports its outcome
//! the same way ([`report_reload`]).
//!
//! A TLS connection is decrypted by its own task, which relays the plain
//! bytes to the connection's task over an in-process socket pair. The AMQP
//! connection code (readiness-driven reads and writes on a socket) then
//! serves a TLS client exactly as it serves a plain one, and the plain path
//! pays nothing for TLS being possible.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

/// `ssl_options.*`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub cacertfile: Option<PathBuf>,
    /// `verify = verify_peer`: client certificates are checked against
    /// `cacertfile` when a client presents one.
    pub verify_peer: bool,
    /// With `verify_peer`, a client without a certificate is refused.
    pub fail_if_no_peer_cert: bool,
    /// `versions.N`: `tlsv1.2`, `tlsv1.3`; empty for both.
    pub versions: Vec<String>,
    /// `ciphers.N`: the cipher suites offered, by OpenSSL's name
    /// (`ECDHE-RSA-AES256-GCM-SHA384`, `TLS_AES_256_GCM_SHA384`) or IANA's
    /// (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`); empty for rustls' own.
    pub ciphers: Vec<String>,
}

impl TlsOptions {
    /// The acceptor these options describe, or why there is none.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let certfile = self.certfile.as_deref().ok_or("certfile is not set")?;
        let keyfile = self.keyfile.as_deref().ok_or("keyfile is not set")?;
        let certs = read_certs(certfile)?;
        let key = PrivateKeyDer::from_pem_file(keyfile)
            .map_err(|e| format!("cannot read a private key from {}: {e}", keyfile.display()))?;
        // ring, which the build already has, rather than aws-lc-rs (a large C
        // build); it lacks only the post-quantum key exchanges.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.ciphers.is_empty() {
            let wanted = self.ciphers.iter().map(|c| cipher_suite(c)).collect::<Result<Vec<_>, _>>()?;
            provider.cipher_suites.retain(|s| wanted.contains(&s.suite()));
        }
        let provider = Arc::new(provider);
        let versions = self.protocol_versions()?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS versions: {e}"))?;
        let builder = if self.verify_peer {
            let cafile = self.cacertfile.as_deref().ok_or("verify_peer needs cacertfile")?;
            let mut roots = RootCertStore::empty();
            for c in read_certs(cafile)? {
                roots.add(c).map_err(|e| format!("{}: {e}", cafile.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match self.fail_if_no_peer_cert {
                true => verifier,
                false => verifier.allow_unauthenticated(),
            };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| format!("client verification: {e}"))?)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("the certificate and key in {}: {e}", certfile.display()))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    fn protocol_versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
        if self.versions.is_empty() {
            return Ok(rustls::ALL_VERSIONS.to_vec());
        }
        self.versions
            .iter()
            .map(|v| match v.as_str() {
                "tlsv1.2" => Ok(&rustls::version::TLS12),
                "tlsv1.3" => Ok(&rustls::version::TLS13),
                other => Err(format!("TLS version '{other}' is not supported (tlsv1.2, tlsv1.3)")),
            })
            .collect()
    }
}

/// The suite a `ciphers.N` value names: OpenSSL's names (as RabbitMQ's
/// docs and `openssl ciphers` write them) or IANA's, for the suites rustls
/// implements; anything else is refused with the list of those.
fn cipher_suite(name: &str) -> Result<rustls::CipherSuite, String> {
    use rustls::CipherSuite as S;
    const SUITES: &[(&str, &str, S)] = &[
        ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384", S::TLS13_AES_256_GCM_SHA384),
        ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256", S::TLS13_AES_128_GCM_SHA256),
        ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256", S::TLS13_CHACHA20_POLY1305_SHA256),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ];
    SUITES
        .iter()
        .find(|(openssl, iana, suite)| {
            [*openssl, *iana, suite.as_str().unwrap_or_default()].iter().any(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, _, s)| *s)
        .ok_or_else(|| {
            let known: Vec<&str> = SUITES.iter().map(|(o, _, _)| *o).collect();
            format!("cipher '{name}' is not supported (supported: {})", known.join(", "))
        })
}

/// A listener's TLS settings, which can be read again from their files.
pub struct Reloadable {
    /// `AMQPS` or `HTTPS`, for messages.
    pub what: &'static str,
    options: TlsOptions,
    current: parking_lot::RwLock<TlsAcceptor>,
}

impl Reloadable {
    /// The acceptor `options` describe, or why there is none.
    pub fn new(what: &'static str, options: TlsOptions) -> Result<Reloadable, String> {
        let acceptor = options.acceptor()?;
        Ok(Reloadable { what, options, current: parking_lot::RwLock::new(acceptor) })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }

    /// Reads certfile, keyfile and cacertfile again; on success the next
    /// connections use them, on failure nothing changes and the reason is
    /// returned. Either way the outcome is logged.
    pub fn reload(&self) -> Result<(), String> {
        report_reload(self.what, self.options.acceptor().map(|acceptor| *self.current.write() = acceptor))
    }
}

/// Logs how reloading `what`'s certificates went, and gives the error as
/// `reload_certificates` reports it. The cluster link's reload
/// (`crate::cluster::tls`) uses it too.
pub(crate) fn report_reload(what: &str, outcome: Result<(), String>) -> Result<(), String> {
    match outcome {
        Ok(()) => {
            tracing::info!("{what}: reloaded the TLS certificate and key");
            Ok(())
        }
        Err(e) => {
            let e = format!("{what}: {e}; still using the previous certificate");
            tracing::error!("cannot reload TLS certificates: {e}");
            Err(e)
        }
    }
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

/// Completes the TLS handshake of `tcp` within `timeout`; a failure is
/// logged and gives `None`. Used by the AMQPS and HTTPS listeners.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::warn!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// What `/api/connections` shows of a TLS session, under RabbitMQ's
/// names: `ssl_protocol` (`tlsv1.3`), `ssl_cipher` (the suite's IANA name
/// as rustls spells it, `TLS13_AES_256_GCM_SHA384`), `ssl_key_exchange` and
/// `ssl_hash` (as Erlang names them: `any` and `aead` for TLS 1.3,
/// `ecdhe_rsa` or `ecdhe_ecdsa` and `aead` for TLS 1.2), and the client's
/// verified certificate, if it presented one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub protocol: String,
    pub cipher: String,
    pub key_exchange: String,
    pub hash: String,
    pub peer_cert: Option<Arc<crate::x509::Certificate>>,
}

impl TlsInfo {
    pub fn of(session: &rustls::ServerConnection) -> TlsInfo {
        let protocol = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "tlsv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "tlsv1.2".to_owned(),
            Some(other) => format!("{other:?}").to_lowercase(),
            None => String::new(),
        };
        let cipher =
            session.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or_default().to_owned();
        let (key_exchange, hash) = suite_parts(&cipher);
        // The end-entity certificate, first of the chain the client sent;
        // rustls only hands it over once it verified it.
        let peer_cert = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| crate::x509::Certificate::parse(der))
            .map(Arc::new);
        TlsInfo { protocol, cipher, key_exchange, hash, peer_cert }
    }
}

/// Erlang's key exchange and MAC names for a rustls suite name: TLS 1.3
/// suites do not fix the key exchange (`any`); every suite rustls offers
/// is an AEAD one.
fn suite_parts(suite: &str) -> (String, String) {
    if suite.starts_with("TLS13_") {
        return ("any".to_owned(), "aead".to_owned());
    }
    let kx = suite
        .strip_prefix("TLS_")
        .and_then(|s| s.split_once("_WITH_"))
        .map(|(kx, _)| kx.to_lowercase())
        .unwrap_or_default();
    let aead = suite.contains("_GCM_") || suite.contains("CHACHA20_POLY1305") || suite.contains("_CCM");
    let hash =
        if aead { "aead".to_owned() } else { suite.rsplit('_').next().unwrap_or_default().to_lowercase() };
    (kx, hash)
}

/// Where an EXTERNAL login finds the user name in the client's
/// certificate (`ssl_cert_login_from`; the distinguished name by default,
/// as in RabbitMQ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertLoginFrom {
    #[default]
    DistinguishedName,
    CommonName,
    SubjectAltName,
}

/// `ssl_cert_login_san_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SanType {
    #[default]
    Dns,
    Ip,
    Email,
    Uri,
    OtherName,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertLogin {
    pub from: CertLoginFrom,
    pub san_type: SanType,
    /// Which name of that type, from 0 (`ssl_cert_login_san_index`).
    pub san_index: usize,
}

impl CertLogin {
    /// The user name this certificate logs in as, or RabbitMQ's reason
    /// when it has none.
    pub fn user_name(&self, cert: &crate::x509::Certificate) -> Result<String, &'static str> {
        use crate::x509::San;
        match self.from {
            CertLoginFrom::DistinguishedName => Ok(cert.subject.to_string()),
            CertLoginFrom::CommonName => cert.common_name().map(str::to_owned).ok_or("no name found"),
            CertLoginFrom::SubjectAltName => cert
                .sans
                .iter()
                .filter_map(|san| match (self.san_type, san) {
                    (SanType::Dns, San::Dns(v))
                    | (SanType::Email, San::Email(v))
                    | (SanType::Uri, San::Uri(v))
                    | (SanType::OtherName, San::Other(v)) => Some(v.clone()),
                    (SanType::Ip, San::Ip(ip)) => Some(ip.to_string()),
                    _ => None,
                })
                .nth(self.san_index)
                .ok_or("no name found"),
        }
    }
}

/// Completes the TLS handshake of `tcp` within `timeout`, then relays its
/// plain bytes through a socket pair; returns the connection's end and
/// what was negotiated.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<(UnixStream, TlsInfo)> {
    let tls = handshake(acceptor, tcp, peer, timeout).await?;
    let info = TlsInfo::of(tls.get_ref().1);
    let (ours, theirs) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!("cannot serve the TLS connection from {peer}: {e}");
            return None;
        }
    };
    tokio::spawn(async move {
        let (mut tls, mut plain) = (tls, theirs);
        // Ends when either side closes; the other side then sees the end.
        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
    });
    Some((ours, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::{Attribute, Certificate, Name, San};

    #[test]
    fn suites_in_erlang_terms() {
        assert_eq!(suite_parts("TLS13_AES_256_GCM_SHA384"), ("any".into(), "aead".into()));
        assert_eq!(suite_parts("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), ("ecdhe_rsa".into(), "aead".into()));
        assert_eq!(
            suite_parts("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            ("ecdhe_ecdsa".into(), "aead".into())
        );
    }

    #[test]
    fn login_names_from_a_certificate() {
        let attr = |oid: &str, v: &str| vec![Attribute { oid: oid.into(), value: v.into(), hex: false }];
        let cert = Certificate {
            subject: Name(vec![attr("2.5.4.10", "Org"), attr("2.5.4.3", "app")]),
            issuer: Name::default(),
            not_before: String::new(),
            not_after: String::new(),
            sans: vec![
                San::Dns("a.example".into()),
                San::Ip([10, 0, 0, 1].into()),
                San::Dns("b.example".into()),
            ],
        };
        let login = |from, san_type, san_index| CertLogin { from, san_type, san_index }.user_name(&cert);
        assert_eq!(login(CertLoginFrom::DistinguishedName, SanType::Dns, 0).unwrap(), "CN=app,O=Org");
        assert_eq!(login(CertLoginFrom::CommonName, SanType::Dns, 0).unwrap(), "app");
        assert_eq!(login(CertLoginFrom::SubjectAltName, SanType::Dns, 1).unwrap(), "b.example");
        assert_eq!(login(CertLoginFrom::SubjectAltName, SanType::Ip, 0).unwrap(), "10.0.0.1");
        assert_eq!(login(CertLoginFrom::SubjectAltName, SanType::Email, 0), Err("no name found"));
    }
}
