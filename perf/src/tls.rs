//! TLS for `amqps://` URIs (rustls with ring, as the broker uses): the
//! broker's certificate is checked against `--cacert`'s CAs, or the
//! system's when it is not given, and its name against the URI's host;
//! `--cert` and `--key` present a client certificate, which a broker can
//! take as the login with `?auth_mechanism=external` in the URI.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::Common;

/// How to reach an `amqps://` broker: the client and the name to check.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

impl Tls {
    pub fn new(host: &str, opts: &Common) -> Result<Self> {
        let name = ServerName::try_from(host.to_owned()).with_context(|| format!("{host} as a TLS name"))?;
        let mut roots = RootCertStore::empty();
        match &opts.cacert {
            Some(path) => {
                for cert in read_certs(path)? {
                    roots.add(cert).with_context(|| format!("--cacert {}", path.display()))?;
                }
            }
            None => {
                // Certificates the store holds that rustls cannot read are
                // skipped, as curl and reqwest skip them.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    bail!(
                        "no CA certificates in the system's store: give the broker's CA with --cacert FILE"
                    );
                }
            }
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("--key {}: no PEM private key", key.display()))?;
                builder.with_client_auth_cert(read_certs(cert)?, key).context("--cert/--key")?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Tls { connector: TlsConnector::from(Arc::new(config)), name })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read PEM certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("no PEM certificate in {}", path.display());
    }
    Ok(certs)
}
