//! warrenctl's own config file: where the node is and who to log in as, so
//! that scripts need not repeat `--node`, `--username` and `--password`.
//!
//! The file is `$WARRENCTL_CONFIG_FILE`, or `~/.warrenctl.conf` when that
//! exists, in warren.conf's `key = value` syntax (`#` starts a comment):
//!
//! ```text
//! node = https://rabbit-1.internal:15671
//! username = ops
//! password = s3cret
//! cacert = /etc/warren/ca_certificate.pem
//! ```
//!
//! A flag wins over the environment, which wins over the file, which wins
//! over the defaults (`localhost:15672`, `guest`/`guest`).

use std::path::PathBuf;

/// The file's keys and the environment variables the command line reads.
const KEYS: &[(&str, &str)] = &[
    ("node", "WARRENCTL_NODE"),
    ("username", "WARRENCTL_USERNAME"),
    ("password", "WARRENCTL_PASSWORD"),
    ("cacert", "WARRENCTL_CACERT"),
    ("cert", "WARRENCTL_CERT"),
    ("key", "WARRENCTL_KEY"),
];

pub const FILE_ENV: &str = "WARRENCTL_CONFIG_FILE";

/// The file to read: the one named by the environment (which must exist),
/// or `~/.warrenctl.conf` if there is one.
fn path() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os(FILE_ENV) {
        return Some((PathBuf::from(p), true));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".warrenctl.conf");
    p.exists().then_some((p, false))
}

fn known() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// Parses the file's text into (environment variable, value) pairs.
pub fn parse(name: &str, text: &str) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{name}:{}: expected 'key = value', found '{line}'", i + 1));
        };
        let (k, v) = (k.trim(), v.trim());
        let Some((_, env)) = KEYS.iter().find(|(key, _)| *key == k) else {
            return Err(format!("{name}:{}: unknown key '{k}' (known: {})", i + 1, known()));
        };
        if v.is_empty() {
            return Err(format!("{name}:{}: '{k}' has no value", i + 1));
        }
        out.push((*env, v.to_string()));
    }
    Ok(out)
}

/// Reads the file, if any, and exports its values as the environment
/// variables the command line falls back to, unless they are already set.
/// Runs before anything else in the process, while it has one thread.
pub fn apply() -> Result<(), String> {
    let Some((path, named)) = path() else { return Ok(()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    for (env, value) in parse(&path.display().to_string(), &text)? {
        if std::env::var_os(env).is_none() {
            // SAFETY: called at the start of main, before any thread exists.
            unsafe { std::env::set_var(env, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn keys_comments_and_errors() {
        let got = parse("f", "# ops\nnode = h:15672\nusername=ops  # who\n\npassword = a=b\n").unwrap();
        assert_eq!(
            got,
            vec![
                ("WARRENCTL_NODE", "h:15672".to_string()),
                ("WARRENCTL_USERNAME", "ops".to_string()),
                ("WARRENCTL_PASSWORD", "a=b".to_string())
            ]
        );
        assert_eq!(
            parse("f", "nodes = x").unwrap_err(),
            "f:1: unknown key 'nodes' (known: node, username, password, cacert, cert, key)"
        );
        assert_eq!(parse("f", "\nnode").unwrap_err(), "f:2: expected 'key = value', found 'node'");
        assert_eq!(parse("f", "username =").unwrap_err(), "f:1: 'username' has no value");
    }
}
