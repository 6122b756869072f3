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
    Pki {
        ca: ca.der().clone(),
        client: der(signed(vec![], "app", true)),
        stranger: der(signed(vec![], "stranger", false)),
        dir,
    }
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
