//! TLS on the inter-node link (`cluster.tls = true`), Warren's counterpart
//! of RabbitMQ's TLS distribution (`-proto_dist inet_tls` with an
//! `-ssl_dist_optfile`).
//!
//! Both directions are mutual TLS 1.2/1.3 with one CA: the listening side
//! requires a client certificate the CA signed, and the dialling side
//! checks that the listener's certificate chains to the CA. The dialling
//! side does not check the certificate's names against the address it
//! dialled: nodes are often reached by IP address, and a certificate per
//! node address is a burden; membership is the CA's signature (and then
//! the cluster secret, whose handshake still runs inside the session).
//! That check is [`CaOnly`], a rustls `ServerCertVerifier` that runs
//! webpki's chain verification (the same call rustls' own
//! `WebPkiServerVerifier` makes) and leaves out only the name check.
//!
//! The files are `cluster.tls.cacertfile`, `certfile` and `keyfile`, or,
//! when those are not set, `ssl_options.*`'s. [`LinkTls::reload`] reads
//! them again (SIGHUP, `warrenctl reload_certificates`, with the AMQPS and
//! HTTPS listeners' files): the links made after it, accepted or dialled,
//! use the new files; the links up keep their sessions; files that do not
//! make a valid configuration leave the old one in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The files of the link's TLS (`cluster.tls.*`).
#[derive(Debug, Clone, Default)]
pub struct ClusterTlsOptions {
    /// `cluster.tls = true`.
    pub enabled: bool,
    pub cacertfile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
}

impl ClusterTlsOptions {
    /// These options, with `ssl_options`' files where these have none.
    pub fn or_amqps(&self, amqps: &crate::tls::TlsOptions) -> ClusterTlsOptions {
        ClusterTlsOptions {
            enabled: self.enabled,
            cacertfile: self.cacertfile.clone().or_else(|| amqps.cacertfile.clone()),
            certfile: self.certfile.clone().or_else(|| amqps.certfile.clone()),
            keyfile: self.keyfile.clone().or_else(|| amqps.keyfile.clone()),
        }
    }
}

/// What `reload_certificates` calls the link.
pub const WHAT: &str = "cluster link";

/// Both ends of TLS on the link, how to accept a node and how to dial
/// one, as last read from its files.
pub struct LinkTls {
    cacertfile: PathBuf,
    certfile: PathBuf,
    keyfile: PathBuf,
    current: parking_lot::RwLock<Configs>,
}

/// What one reading of the files gives.
struct Configs {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// For the log: `mutual, CA <subject> (<file>)`.
    description: String,
}

impl std::fmt::Debug for LinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkTls({})", self.description())
    }
}

impl LinkTls {
    /// The link's TLS as `o` describes it: None when it is off, an error
    /// naming the missing or bad file when it cannot be set up.
    pub fn from_options(o: &ClusterTlsOptions) -> Result<Option<LinkTls>, String> {
        if !o.enabled {
            return Ok(None);
        }
        let missing = |k: &str| format!("cluster.tls = true needs cluster.tls.{k} (or ssl_options.{k})");
        let ca = o.cacertfile.as_deref().ok_or_else(|| missing("cacertfile"))?;
        let cert = o.certfile.as_deref().ok_or_else(|| missing("certfile"))?;
        let key = o.keyfile.as_deref().ok_or_else(|| missing("keyfile"))?;
        LinkTls::new(ca, cert, key).map(Some)
    }

    pub fn new(cacertfile: &Path, certfile: &Path, keyfile: &Path) -> Result<LinkTls, String> {
        let sessions = LinkTls::read(cacertfile, certfile, keyfile)?;
        Ok(LinkTls {
            cacertfile: cacertfile.to_owned(),
            certfile: certfile.to_owned(),
            keyfile: keyfile.to_owned(),
            current: parking_lot::RwLock::new(sessions),
        })
    }

    /// How to accept the next node.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().acceptor.clone()
    }

    /// How to dial the next node.
    pub fn connector(&self) -> TlsConnector {
        self.current.read().connector.clone()
    }

    /// For the log: `mutual, CA <subject> (<file>)`.
    pub fn description(&self) -> String {
        self.current.read().description.clone()
    }

    /// Reads the files again; on success the next links use them, on
    /// failure nothing changes and the reason is returned. Either way the
    /// outcome is logged, as the listeners' reload does.
    pub fn reload(&self) -> Result<(), String> {
        let read = LinkTls::read(&self.cacertfile, &self.certfile, &self.keyfile);
        crate::tls::report_reload(WHAT, read.map(|sessions| *self.current.write() = sessions))
    }

    fn read(cacertfile: &Path, certfile: &Path, keyfile: &Path) -> Result<Configs, String> {
        let ca_certs = crate::tls::read_certs(cacertfile)?;
        let mut roots = RootCertStore::empty();
        for c in &ca_certs {
            roots.add(c.clone()).map_err(|e| format!("{}: {e}", cacertfile.display()))?;
        }
        let roots = Arc::new(roots);
        let certs = crate::tls::read_certs(certfile)?;
        let key = PrivateKeyDer::from_pem_file(keyfile)
            .map_err(|e| format!("cannot read a private key from {}: {e}", keyfile.display()))?;
        // ring, as the AMQPS listener (see crate::tls).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];

        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("client verification: {e}"))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("the certificate and key in {}: {e}", certfile.display()))?;

        let verifier = Arc::new(CaOnly { roots, provider: provider.clone() });
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("the certificate and key in {}: {e}", certfile.display()))?;

        let ca_name = ca_certs
            .first()
            .and_then(|der| crate::x509::Certificate::parse(der))
            .map(|c| c.subject.to_string())
            .unwrap_or_else(|| "?".into());
        Ok(Configs {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            description: format!("mutual, CA {ca_name} ({})", cacertfile.display()),
        })
    }

    /// The subject of the certificate a node presented, for the log.
    pub fn subject(certs: Option<&[CertificateDer<'_>]>) -> String {
        certs
            .and_then(|c| c.first())
            .and_then(|der| crate::x509::Certificate::parse(der))
            .map(|c| c.subject.to_string())
            .unwrap_or_else(|| "?".into())
    }

    /// The name a dialled node is asked for (SNI); it is not checked
    /// against its certificate (see [`CaOnly`]).
    pub fn server_name(addr: &str) -> ServerName<'static> {
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => addr,
        };
        ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("warren-node").expect("a valid DNS name"))
    }
}

/// Verifies a node's certificate chain against the cluster CA (validity
/// dates, signatures, key usage: webpki's checks) but not its names.
#[derive(Debug)]
struct CaOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
