//! `warren.conf`: RabbitMQ's `rabbitmq.conf` syntax (`key = value` lines,
//! `#` comments, dotted keys) read into a [`Config`]. Unknown keys and bad
//! values stop startup with the line, the key and the expected form, so a
//! typo never passes silently.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// Reads a configuration file over `config`.
pub fn load(path: &Path, config: &mut Config) -> Result<(), ConfError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfError {
        file: path.to_owned(),
        line: 0,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    apply(&text, config).map_err(|(line, message)| ConfError { file: path.to_owned(), line, message })
}

/// Applies configuration text; errors carry the 1-based line number.
pub fn apply(text: &str, config: &mut Config) -> Result<(), (usize, String)> {
    let mut tags_set = false;
    let mut mechanisms_set = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((n, format!("expected 'key = value', found '{line}'")));
        };
        let (key, value) = (key.trim(), strip_comment(value.trim()));
        if value.is_empty() {
            return Err((n, format!("'{key}' has no value")));
        }
        set(config, key, value, &mut tags_set, &mut mechanisms_set).map_err(|why| (n, why))?;
    }
    Ok(())
}

/// A trailing `# comment` after a value is allowed, as in rabbitmq.conf.
fn strip_comment(v: &str) -> &str {
    match v.find(" #") {
        Some(i) => v[..i].trim(),
        None => v,
    }
}

fn set(
    c: &mut Config,
    key: &str,
    value: &str,
    tags_set: &mut bool,
    mechanisms_set: &mut bool,
) -> Result<(), String> {
    match key {
        k if k.starts_with("auth_mechanisms.") => {
            // The first one replaces the default list; the rest add to it,
            // in the file's order.
            if !*mechanisms_set {
                c.auth_mechanisms.clear();
                *mechanisms_set = true;
            }
            let m = value.to_ascii_uppercase();
            if !crate::amqp::handshake::MECHANISMS.contains(&m.as_str()) {
                return Err(expected(key, value, "PLAIN, AMQPLAIN or EXTERNAL"));
            }
            if !c.auth_mechanisms.contains(&m) {
                c.auth_mechanisms.push(m);
            }
        }
        "ssl_cert_login_from" => {
            c.cert_login.from = match value {
                "distinguished_name" => crate::tls::CertLoginFrom::DistinguishedName,
                "common_name" => crate::tls::CertLoginFrom::CommonName,
                "subject_alternative_name" | "subject_alt_name" => crate::tls::CertLoginFrom::SubjectAltName,
                _ => {
                    return Err(expected(
                        key,
                        value,
                        "distinguished_name, common_name or subject_alternative_name",
                    ));
                }
            }
        }
        "ssl_cert_login_san_type" => {
            c.cert_login.san_type = match value {
                "dns" => crate::tls::SanType::Dns,
                "ip" => crate::tls::SanType::Ip,
                "email" => crate::tls::SanType::Email,
                "uri" => crate::tls::SanType::Uri,
                "other_name" => crate::tls::SanType::OtherName,
                _ => return Err(expected(key, value, "dns, ip, email, uri or other_name")),
            }
        }
        "ssl_cert_login_san_index" => c.cert_login.san_index = number(value, key)?,
        "listeners.tcp.default" => {
            let addr = listener(value, key)?;
            c.amqp_port = addr.port();
            if let Some(ip) = addr.ip {
                c.bind = vec![ip];
            }
        }
        k if k.starts_with("listeners.tcp.") => {
            let addr = listener(value, key)?;
            c.amqp_port = addr.port();
            if let Some(ip) = addr.ip.filter(|ip| !c.bind.contains(ip)) {
                c.bind.push(ip);
            }
        }
        k if k.starts_with("listeners.ssl.") => {
            let addr = listener(value, key)?;
            c.amqps_port = Some(addr.port());
            if let Some(ip) = addr.ip.filter(|ip| !c.bind.contains(ip)) {
                c.bind.push(ip);
            }
        }
        k if k.starts_with("ssl_options.") => tls_option(&mut c.tls, &k["ssl_options.".len()..], key, value)?,
        "management.ssl.port" => c.https_port = Some(number(value, key)?),
        "management.ssl.ip" => {
            c.https_bind = Some(value.parse().map_err(|_| expected(key, value, "an IP address"))?)
        }
        k if k.starts_with("management.ssl.") => {
            tls_option(&mut c.https_tls, &k["management.ssl.".len()..], key, value)?
        }
        "management.tcp.port" | "management.listener.port" => c.http_port = number(value, key)?,
        "management.tcp.ip" | "management.listener.ip" => {
            c.http_bind = Some(value.parse().map_err(|_| expected(key, value, "an IP address"))?)
        }
        "management.http.max_body_size" => c.max_body_size = bytes(value, key)? as usize,
        "management.login_session_timeout" => {
            c.login_session_timeout = std::time::Duration::from_secs(number::<u64>(value, key)? * 60)
        }
        "loopback_users" => {
            if value != "none" {
                return Err(expected(key, value, "'none' (or use loopback_users.<user> = true|false)"));
            }
            c.loopback_users.clear();
        }
        k if k.starts_with("loopback_users.") => {
            let user = &k["loopback_users.".len()..];
            c.loopback_users.retain(|u| u != user);
            if boolean(value, key)? {
                c.loopback_users.push(user.to_owned());
            }
        }
        "default_user" => c.default_user = value.to_owned(),
        "default_pass" => c.default_pass = value.to_owned(),
        "default_vhost" => c.default_vhost = value.to_owned(),
        k if k.starts_with("default_user_tags.") => {
            if !*tags_set {
                c.default_user_tags.clear();
                *tags_set = true;
            }
            if boolean(value, key)? {
                c.default_user_tags.push(k["default_user_tags.".len()..].to_owned());
            }
        }
        "default_permissions.configure" => c.default_permissions[0] = regex(value, key)?,
        "default_permissions.write" => c.default_permissions[1] = regex(value, key)?,
        "default_permissions.read" => c.default_permissions[2] = regex(value, key)?,
        "vm_memory_high_watermark.relative" => {
            c.memory_high_watermark_relative = fraction(value, key)?;
            c.memory_high_watermark_absolute = None;
        }
        "vm_memory_high_watermark.absolute" => c.memory_high_watermark_absolute = Some(bytes(value, key)?),
        "disk_free_limit.absolute" => c.disk_free_limit = bytes(value, key)?,
        "disk_free_limit.relative" => {
            let f: f64 = value.parse().map_err(|_| expected(key, value, "a number such as 1.0"))?;
            c.disk_free_limit = (crate::broker::alarms::total_memory() as f64 * f) as u64;
        }
        "heartbeat" => c.heartbeat = number(value, key)?,
        "frame_max" => {
            c.frame_max = number(value, key)?;
            if c.frame_max != 0 && c.frame_max < 4096 {
                return Err(expected(key, value, "0 or a size of at least 4096"));
            }
        }
        "channel_max" => c.channel_max = number(value, key)?,
        "max_message_size" => c.max_message_size = bytes(value, key)? as usize,
        "handshake_timeout" => c.handshake_timeout = std::time::Duration::from_millis(number(value, key)?),
        "connection_max" => {
            c.connection_max = match value {
                "infinity" => None,
                _ => Some(number(value, key).map_err(|_| expected(key, value, "a number or infinity"))?),
            }
        }
        "unauthenticated_connection_max" => c.unauthenticated_connection_max = positive(value, key)?,
        "unauthenticated_connection_max_per_address" => {
            c.unauthenticated_connection_max_per_address = positive(value, key)?
        }
        "login_throttle.free_failures" => c.login_throttle.free_failures = number(value, key)?,
        "login_throttle.initial_delay" => c.login_throttle.initial_delay = millis(value, key)?,
        "login_throttle.max_delay" => c.login_throttle.max_delay = millis(value, key)?,
        "login_throttle.quiet_period" => c.login_throttle.quiet_period = millis(value, key)?,
        "log.console.level" => c.log_level = log_level(value, key)?,
        "log.console" => {
            boolean(value, key)?;
        }
        "log.file" => c.log_file = if value == "false" { None } else { Some(PathBuf::from(value)) },
        "log.file.level" => c.log_level = log_level(value, key)?,
        "data_dir" => c.data_dir = PathBuf::from(value),
        "cluster_name" => c.cluster_name = value.to_owned(),
        "cluster.listener.port" => c.cluster_port = Some(number(value, key)?),
        "cluster_secret" => c.cluster_secret = Some(value.to_owned()),
        "cluster_secret_file" => c.cluster_secret_file = Some(PathBuf::from(value)),
        "cluster.tls" => c.cluster_tls.enabled = boolean(value, key)?,
        "cluster.tls.cacertfile" => c.cluster_tls.cacertfile = Some(PathBuf::from(value)),
        "cluster.tls.certfile" => c.cluster_tls.certfile = Some(PathBuf::from(value)),
        "cluster.tls.keyfile" => c.cluster_tls.keyfile = Some(PathBuf::from(value)),
        _ => return Err(unknown(key)),
    }
    Ok(())
}

/// One TLS option (`certfile`, `verify`, ...) under `ssl_options.` (AMQPS)
/// or `management.ssl.` (HTTPS); `name` is the key without that prefix.
fn tls_option(t: &mut crate::tls::TlsOptions, name: &str, key: &str, value: &str) -> Result<(), String> {
    match name {
        "certfile" => t.certfile = Some(PathBuf::from(value)),
        "keyfile" => t.keyfile = Some(PathBuf::from(value)),
        "cacertfile" => t.cacertfile = Some(PathBuf::from(value)),
        "verify" => {
            t.verify_peer = match value {
                "verify_peer" => true,
                "verify_none" => false,
                _ => return Err(expected(key, value, "verify_peer or verify_none")),
            }
        }
        "fail_if_no_peer_cert" => {
            t.fail_if_no_peer_cert = match value {
                "true" => true,
                "false" => false,
                _ => return Err(expected(key, value, "true or false")),
            }
        }
        n if n.starts_with("versions.") => t.versions.push(value.to_owned()),
        n if n.starts_with("ciphers.") => t.ciphers.push(value.to_owned()),
        _ => return Err(unknown(key)),
    }
    Ok(())
}

/// The keys `set` reads, for suggestions; the families take any last part.
const KEYS: &[&str] = &[
    "listeners.tcp.default",
    "listeners.ssl.default",
    "ssl_options.certfile",
    "ssl_options.keyfile",
    "ssl_options.cacertfile",
    "ssl_options.verify",
    "ssl_options.fail_if_no_peer_cert",
    "ssl_cert_login_from",
    "ssl_cert_login_san_type",
    "ssl_cert_login_san_index",
    "management.ssl.port",
    "management.ssl.ip",
    "management.ssl.certfile",
    "management.ssl.keyfile",
    "management.ssl.cacertfile",
    "management.ssl.verify",
    "management.ssl.fail_if_no_peer_cert",
    "management.tcp.port",
    "management.tcp.ip",
    "management.login_session_timeout",
    "management.http.max_body_size",
    "loopback_users",
    "default_user",
    "default_pass",
    "default_vhost",
    "default_permissions.configure",
    "default_permissions.write",
    "default_permissions.read",
    "vm_memory_high_watermark.relative",
    "vm_memory_high_watermark.absolute",
    "disk_free_limit.absolute",
    "disk_free_limit.relative",
    "heartbeat",
    "frame_max",
    "channel_max",
    "max_message_size",
    "handshake_timeout",
    "connection_max",
    "unauthenticated_connection_max",
    "unauthenticated_connection_max_per_address",
    "login_throttle.free_failures",
    "login_throttle.initial_delay",
    "login_throttle.max_delay",
    "login_throttle.quiet_period",
    "log.console",
    "log.console.level",
    "log.file",
    "log.file.level",
    "data_dir",
    "cluster_name",
    "cluster.listener.port",
    "cluster_secret",
    "cluster_secret_file",
    "cluster.tls",
    "cluster.tls.cacertfile",
    "cluster.tls.certfile",
    "cluster.tls.keyfile",
];
const FAMILIES: &[&str] = &[
    "auth_mechanisms.",
    "listeners.tcp.",
    "listeners.ssl.",
    "ssl_options.versions.",
    "management.ssl.versions.",
    "ssl_options.ciphers.",
    "management.ssl.ciphers.",
    "loopback_users.",
    "default_user_tags.",
];

/// "unknown key", with the nearest known key when one is close.
fn unknown(key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    let candidates = KEYS.iter().map(|k| k.to_string()).chain(FAMILIES.iter().map(|f| format!("{f}{last}")));
    let best = candidates.map(|c| (edit_distance(key, &c), c)).min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2.max(key.len() / 5) => format!("unknown key '{key}'; did you mean '{c}'?"),
        _ => format!("unknown key '{key}' (the README lists the warren.conf keys)"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = if ca == b[j] { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

fn expected(key: &str, value: &str, form: &str) -> String {
    format!("'{key}' = '{value}': expected {form}")
}

fn number<T: std::str::FromStr>(value: &str, key: &str) -> Result<T, String> {
    value.parse().map_err(|_| expected(key, value, "a whole number"))
}

fn positive(value: &str, key: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(expected(key, value, "a number above 0")),
    }
}

/// A duration in milliseconds, as `handshake_timeout` is given.
fn millis(value: &str, key: &str) -> Result<std::time::Duration, String> {
    let ms: u64 = value.parse().map_err(|_| expected(key, value, "a number of milliseconds"))?;
    Ok(std::time::Duration::from_millis(ms))
}

fn boolean(value: &str, key: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(expected(key, value, "true or false")),
    }
}

fn fraction(value: &str, key: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(expected(key, value, "a fraction between 0 and 1, such as 0.4")),
    }
}

fn regex(value: &str, key: &str) -> Result<String, String> {
    regex::Regex::new(value).map_err(|e| expected(key, value, &format!("a regular expression ({e})")))?;
    Ok(value.to_owned())
}

fn log_level(value: &str, key: &str) -> Result<String, String> {
    match value {
        "debug" | "info" | "warning" | "error" | "critical" | "none" => Ok(value.to_owned()),
        _ => Err(expected(key, value, "one of debug, info, warning, error, critical, none")),
    }
}

/// A size as rabbitmq.conf writes them: `50000000`, `50MB`, `2GB`, `1GiB`,
/// `512KiB`... Decimal units are powers of 1000, binary ones of 1024.
fn bytes(value: &str, key: &str) -> Result<u64, String> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().map_err(|_| expected(key, value, "a size such as 50MB or 2GiB"))?;
    let factor: u64 = match unit.trim() {
        "" => 1,
        "kB" | "KB" | "k" | "K" => 1000,
        "MB" | "M" => 1000_u64.pow(2),
        "GB" | "G" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(expected(key, value, "a size such as 50MB or 2GiB")),
    };
    n.checked_mul(factor).ok_or_else(|| expected(key, value, "a smaller size"))
}

struct Listener {
    ip: Option<IpAddr>,
    port: u16,
}

impl Listener {
    fn port(&self) -> u16 {
        self.port
    }
}

/// `5672`, `127.0.0.1:5672` or `[::1]:5672`.
fn listener(value: &str, key: &str) -> Result<Listener, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(Listener { ip: None, port });
    }
    let addr: SocketAddr = value
        .parse()
        .map_err(|_| expected(key, value, "a port such as 5672, or an address such as 127.0.0.1:5672"))?;
    Ok(Listener { ip: Some(addr.ip()), port: addr.port() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_throttle_keys_are_read() {
        let mut c = Config::default();
        assert_eq!(c.connection_max, None);
        apply(
            "connection_max = 100\n\
             unauthenticated_connection_max = 50\n\
             unauthenticated_connection_max_per_address = 5\n\
             login_throttle.free_failures = 3\n\
             login_throttle.initial_delay = 100\n\
             login_throttle.max_delay = 2000\n\
             login_throttle.quiet_period = 30000\n",
            &mut c,
        )
        .unwrap();
        assert_eq!(c.connection_max, Some(100));
        assert_eq!((c.unauthenticated_connection_max, c.unauthenticated_connection_max_per_address), (50, 5));
        let t = &c.login_throttle;
        assert_eq!(t.free_failures, 3);
        assert_eq!(t.initial_delay, std::time::Duration::from_millis(100));
        assert_eq!(t.max_delay, std::time::Duration::from_secs(2));
        assert_eq!(t.quiet_period, std::time::Duration::from_secs(30));
        apply("connection_max = infinity\n", &mut c).unwrap();
        assert_eq!(c.connection_max, None);
        let e = apply("unauthenticated_connection_max = 0\n", &mut c).unwrap_err();
        assert!(e.1.contains("above 0"), "{e:?}");
    }

    #[test]
    fn cluster_tls_keys_are_read_and_fall_back_to_ssl_options() {
        let mut c = Config::default();
        apply(
            "cluster.tls = true\n\
             cluster.tls.certfile = /etc/node.pem\n\
             cluster.tls.keyfile = /etc/node_key.pem\n\
             ssl_options.cacertfile = /etc/ca.pem\n\
             ssl_options.certfile = /etc/cert.pem\n",
            &mut c,
        )
        .unwrap();
        let o = c.cluster_tls.or_amqps(&c.tls);
        let p = |s: &str| Some(std::path::PathBuf::from(s));
        assert!(o.enabled);
        assert_eq!(
            (o.cacertfile, o.certfile, o.keyfile),
            (p("/etc/ca.pem"), p("/etc/node.pem"), p("/etc/node_key.pem"))
        );
        let e = apply("cluster.tls = yes\n", &mut c).unwrap_err();
        assert!(e.1.contains("cluster.tls"), "{e:?}");
        let e = apply("cluster.tls.certfle = x\n", &mut c).unwrap_err();
        assert!(e.1.contains("did you mean 'cluster.tls.certfile'"), "{e:?}");
        // Without a key, TLS cannot be set up, and the error names the key.
        let mut c = Config::default();
        apply("cluster.tls = true\n", &mut c).unwrap();
        let e = crate::cluster::tls::LinkTls::from_options(&c.cluster_tls.or_amqps(&c.tls)).unwrap_err();
        assert!(e.contains("cluster.tls.cacertfile"), "{e}");
    }

    #[test]
    fn tls_keys_are_read() {
        let mut c = Config::default();
        apply(
            "listeners.ssl.default = 5671\n\
             ssl_options.cacertfile = /etc/ca.pem\n\
             ssl_options.certfile = /etc/cert.pem\n\
             ssl_options.keyfile = /etc/key.pem\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = true\n\
             ssl_options.versions.1 = tlsv1.3\n",
            &mut c,
        )
        .unwrap();
        assert_eq!(c.amqps_port, Some(5671));
        assert_eq!(c.tls.certfile.as_deref(), Some(std::path::Path::new("/etc/cert.pem")));
        assert!(c.tls.verify_peer && c.tls.fail_if_no_peer_cert);
        assert_eq!(c.tls.versions, ["tlsv1.3"]);
        let e = apply("ssl_options.verify = maybe\n", &mut Config::default()).unwrap_err();
        assert!(e.1.contains("verify_peer or verify_none"), "{e:?}");
    }

    #[test]
    fn auth_mechanisms_and_cert_login_are_read() {
        let mut c = Config::default();
        assert_eq!(c.auth_mechanisms, ["PLAIN", "AMQPLAIN"]);
        apply(
            "auth_mechanisms.1 = EXTERNAL\n\
             auth_mechanisms.2 = PLAIN\n\
             ssl_cert_login_from = subject_alternative_name\n\
             ssl_cert_login_san_type = email\n\
             ssl_cert_login_san_index = 2\n",
            &mut c,
        )
        .unwrap();
        assert_eq!(c.auth_mechanisms, ["EXTERNAL", "PLAIN"]);
        assert_eq!(c.cert_login.from, crate::tls::CertLoginFrom::SubjectAltName);
        assert_eq!(c.cert_login.san_type, crate::tls::SanType::Email);
        assert_eq!(c.cert_login.san_index, 2);
        let e = apply("auth_mechanisms.1 = KERBEROS\n", &mut Config::default()).unwrap_err();
        assert!(e.1.contains("PLAIN, AMQPLAIN or EXTERNAL"), "{e:?}");
        let e = apply("ssl_cert_login_from = serial\n", &mut Config::default()).unwrap_err();
        assert!(e.1.contains("distinguished_name"), "{e:?}");
    }

    #[test]
    fn management_ssl_keys_are_read() {
        let mut c = Config::default();
        apply(
            "management.ssl.port = 15671\n\
             management.ssl.ip = 127.0.0.1\n\
             management.ssl.cacertfile = /etc/ca.pem\n\
             management.ssl.certfile = /etc/https.pem\n\
             management.ssl.keyfile = /etc/https_key.pem\n\
             management.ssl.verify = verify_peer\n\
             management.ssl.fail_if_no_peer_cert = false\n\
             management.ssl.versions.1 = tlsv1.2\n",
            &mut c,
        )
        .unwrap();
        assert_eq!(c.https_port, Some(15671));
        assert_eq!(c.https_bind, Some(std::net::IpAddr::from([127, 0, 0, 1])));
        assert_eq!(c.https_tls.certfile.as_deref(), Some(std::path::Path::new("/etc/https.pem")));
        assert_eq!(c.https_tls.keyfile.as_deref(), Some(std::path::Path::new("/etc/https_key.pem")));
        assert_eq!(c.https_tls.cacertfile.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(c.https_tls.verify_peer && !c.https_tls.fail_if_no_peer_cert);
        assert_eq!(c.https_tls.versions, ["tlsv1.2"]);
        // The AMQPS options are separate, as in rabbitmq.conf.
        assert!(c.tls.certfile.is_none() && c.amqps_port.is_none());
        let e = apply("management.ssl.verify = maybe\n", &mut Config::default()).unwrap_err();
        assert!(e.1.contains("verify_peer or verify_none"), "{e:?}");
        let e = apply("management.ssl.certfiel = /x\n", &mut Config::default()).unwrap_err();
        assert!(e.1.contains("did you mean 'management.ssl.certfile'"), "{e:?}");
    }

    #[test]
    fn rabbitmq_conf_keys_are_read() {
        let mut c = Config::default();
        apply(
            "# a comment\n\
             listeners.tcp.default = 5673\n\
             management.tcp.port = 15673\n\
             loopback_users.guest = false\n\
             default_user = admin\n\
             default_pass = secret # trailing comment\n\
             default_user_tags.administrator = true\n\
             default_user_tags.monitoring = true\n\
             vm_memory_high_watermark.absolute = 2GiB\n\
             disk_free_limit.absolute = 50MB\n\
             heartbeat = 30\n\
             log.console.level = debug\n\
             management.http.max_body_size = 1000000\n\
             cluster_name = tutorial\n",
            &mut c,
        )
        .unwrap();
        assert_eq!(c.amqp_port, 5673);
        assert_eq!(c.http_port, 15673);
        assert!(c.loopback_users.is_empty());
        assert_eq!((c.default_user.as_str(), c.default_pass.as_str()), ("admin", "secret"));
        assert_eq!(c.default_user_tags, ["administrator", "monitoring"]);
        assert_eq!(c.memory_high_watermark_absolute, Some(2 << 30));
        assert_eq!(c.disk_free_limit, 50_000_000);
        assert_eq!(c.heartbeat, 30);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.cluster_name, "tutorial");
        assert_eq!(c.max_body_size, 1_000_000);
    }

    #[test]
    fn typos_and_bad_values_name_the_line_and_the_form() {
        let mut c = Config::default();
        let e = apply("heartbeat = 60\nloopbak_users.guest = false\n", &mut c).unwrap_err();
        assert_eq!(
            e,
            (2, "unknown key 'loopbak_users.guest'; did you mean 'loopback_users.guest'?".to_owned())
        );
        let e = apply("hartbeat = 60\n", &mut c).unwrap_err();
        assert_eq!(e.1, "unknown key 'hartbeat'; did you mean 'heartbeat'?");
        let e = apply("colour = blue\n", &mut c).unwrap_err();
        assert!(e.1.starts_with("unknown key 'colour' ("), "{}", e.1);
        let e = apply("loopback_users.guest = no\n", &mut c).unwrap_err();
        assert_eq!(e.1, "'loopback_users.guest' = 'no': expected true or false");
        let e = apply("disk_free_limit.absolute = lots\n", &mut c).unwrap_err();
        assert!(e.1.contains("expected a size"), "{}", e.1);
        let e = apply("just words\n", &mut c).unwrap_err();
        assert_eq!(e.0, 1);
        let e = apply("listeners.tcp.default = 127.0.0.1:99999\n", &mut c).unwrap_err();
        assert!(e.1.contains("expected a port"), "{}", e.1);
    }

    #[test]
    fn listener_addresses_bind_interfaces() {
        let mut c = Config::default();
        apply("listeners.tcp.local = 127.0.0.1:5674\n", &mut c).unwrap();
        assert_eq!(c.amqp_port, 5674);
        assert_eq!(c.bind, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }
}
