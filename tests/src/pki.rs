//! Certificates made at test time (rcgen) for the TLS tests (AMQPS and
//! HTTPS), and a rustls client configuration that trusts them.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A CA, a server certificate for localhost and 127.0.0.1 (its PEM files
/// in `dir`: `ca.pem`, `server.pem`, `server_key.pem`), a client
/// certificate (CN `app`) the CA signed and a self-signed stranger.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: CertificateDer<'static>,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    pub client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    pub stranger: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

pub fn make_pki() -> Pki {
    let dir = std::env::temp_dir().join(format!("{}-{}", crate::unique("warren-tls"), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "warren test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let signed = |names: Vec<String>, cn: &str, by_ca: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert =
            if by_ca { p.signed_by(&key, &ca, &ca_key).unwrap() } else { p.self_signed(&key).unwrap() };
        (cert, key)
    };
    let (server, server_key) = signed(vec!["localhost".into(), "127.0.0.1".into()], "localhost", true);
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server_key.pem"), server_key.serialize_pem()).unwrap();
    let der = |(c, k): (rcgen::Certificate, KeyPair)| {
        (c.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der())))
    };
    let client = der(signed(vec![], "app", true));
    let stranger = der(signed(vec![], "stranger", false));
    Pki { ca: ca.der().clone(), ca_cert: ca, ca_key, client, stranger, dir }
}

impl Pki {
    /// A certificate the test CA signed, with `params` (its subject, names,
    /// validity), and its key.
    pub fn issue(&self, params: CertificateParams) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    /// A client certificate the CA signed whose subject is `CN=<cn>`.
    pub fn client_named(&self, cn: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        self.issue(p)
    }

    /// Writes a client certificate the CA signed, subject `CN=<cn>`, and its
    /// key as PEM files in `dir` (`<cn>.pem`, `<cn>_key.pem`), for the
    /// clients that read files (warrenctl, warren-perf, pika).
    pub fn write_client_pem(&self, cn: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        let (cert_path, key_path) =
            (self.dir.join(format!("{cn}.pem")), self.dir.join(format!("{cn}_key.pem")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    /// Writes a new server certificate for localhost (subject `CN=<cn>`),
    /// signed by the CA, over `server.pem` and `server_key.pem`.
    pub fn rewrite_server_cert(&self, cn: &str) {
        self.write_server_cert(cn, "server");
    }

    /// Writes a server certificate for localhost (subject `CN=<cn>`),
    /// signed by the CA, and its key, as `<file>.pem` and `<file>_key.pem`
    /// in `dir` (over any there).
    pub fn write_server_cert(&self, cn: &str, file: &str) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        std::fs::write(self.dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.dir.join(format!("{file}_key.pem")), key.serialize_pem()).unwrap();
    }
}

/// A local plain TCP port whose connections are carried over TLS (with
/// `connector`'s client certificate) to `port`: lapin, built here without
/// a TLS stack, speaks AMQP through it to the AMQPS listener, so the
/// broker sees a real TLS client with that certificate.
pub async fn tls_relay(port: u16, connector: TlsConnector) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut plain, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return };
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let Ok(mut tls) = connector.connect(name, tcp).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    local
}

/// The subject CN of the certificate a TLS server on `port` presents to a
/// client with `connector`.
pub async fn server_cert_cn(port: u16, connector: TlsConnector) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await?;
    let der =
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned().expect("a server certificate");
    common_name(&der).ok_or_else(|| std::io::Error::other("no CN in the server certificate"))
}

/// The subject's CN in a DER certificate: the string after the last OID
/// 2.5.4.3 (the issuer's name comes before the subject's; good enough for
/// the certificates made here).
fn common_name(der: &[u8]) -> Option<String> {
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = der.windows(oid.len()).rposition(|w| w == oid)? + oid.len();
    let (tag, len) = (*der.get(at)?, *der.get(at + 1)? as usize);
    if !matches!(tag, 0x0c | 0x13) {
        return None;
    }
    String::from_utf8(der.get(at + 2..at + 2 + len)?.to_vec()).ok()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A rustls client trusting the test CA, with `cert` as its certificate.
pub fn connector(
    pki: &Pki,
    cert: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((c, k)) => builder.with_client_auth_cert(vec![c.clone()], k.clone_key()).unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// A second CA, unrelated to the test CA, and a certificate for localhost
/// and 127.0.0.1 it signed, written to `dir` as `other_ca.pem`,
/// `other_server.pem` and `other_server_key.pem`: a node with these is not
/// one the test CA vouches for.
pub fn write_other_ca(dir: &std::path::Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "unrelated test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("other_ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("other_server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("other_server_key.pem"), key.serialize_pem()).unwrap();
}
