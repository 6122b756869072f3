//! The cluster secret, which plays the role of RabbitMQ's Erlang cookie:
//! nodes that share it may talk to each other; no one else may. It is never
//! sent over the wire: each side of a link proves it knows it with an
//! HMAC-SHA256 over fresh nonces (see [`super::link`]).
//!
//! Keys that every member must share for other purposes are derived from
//! it ([`Secret::derive`]), such as the key signing management login
//! tokens, so that a token from one node is valid on every node.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The secret shared by a cluster's nodes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn new(s: impl Into<Vec<u8>>) -> Secret {
        Secret(s.into())
    }

    /// `~/.warren.cookie`, the default secret file of every node run by the
    /// same user, as `~/.erlang.cookie` is RabbitMQ's.
    pub fn default_path() -> PathBuf {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".warren.cookie")
    }

    /// Reads the secret from `path`, creating the file (mode 0600) with a
    /// random secret when it does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<Secret> {
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => return Ok(Secret::new(s.trim().as_bytes())),
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "the cluster secret file {} is empty",
                    path.display()
                )));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        use rand::Rng;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let secret: String =
            rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(secret.as_bytes())?;
        tracing::info!("created the cluster secret file {}", path.display());
        Ok(Secret::new(secret.into_bytes()))
    }

    /// The proof that `role` ("client" or "server") knows the secret, bound
    /// to both nonces so it cannot be replayed on another link.
    pub fn prove(&self, role: &str, mine: &[u8], theirs: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(role.as_bytes());
        mac.update(&[0]);
        mac.update(mine);
        mac.update(theirs);
        mac.finalize().into_bytes().to_vec()
    }

    /// A key for `purpose`, the same on every node that shares the secret
    /// and unrelated to the link's proofs: HMAC-SHA256 of the label under
    /// the secret.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"warren key: ");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks a proof in constant time.
    pub fn verify(&self, role: &str, mine: &[u8], theirs: &[u8], proof: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(role.as_bytes());
        mac.update(&[0]);
        mac.update(mine);
        mac.update(theirs);
        mac.verify_slice(proof).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_depend_on_secret_role_and_nonces() {
        let s = Secret::new("cookie");
        let p = s.prove("client", b"a", b"b");
        assert!(s.verify("client", b"a", b"b", &p));
        assert!(!s.verify("server", b"a", b"b", &p));
        assert!(!s.verify("client", b"b", b"a", &p));
        assert!(!Secret::new("other").verify("client", b"a", b"b", &p));
    }

    #[test]
    fn derived_keys_depend_on_secret_and_purpose() {
        let s = Secret::new("cookie");
        assert_eq!(s.derive("a"), Secret::new("cookie").derive("a"));
        assert_ne!(s.derive("a"), s.derive("b"));
        assert_ne!(s.derive("a"), Secret::new("other").derive("a"));
    }

    #[test]
    fn a_missing_file_is_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("warren-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cookie");
        let _ = std::fs::remove_file(&path);
        let a = Secret::load_or_create(&path).unwrap();
        let b = Secret::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(a.0.len(), 32);
        std::fs::write(&path, "  \n").unwrap();
        assert!(Secret::load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
