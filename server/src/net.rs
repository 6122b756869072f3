//! Peer addresses as RabbitMQ shows and checks them.
//!
//! A listener on `[::]` also takes IPv4 clients, whose addresses the socket
//! reports IPv4-mapped (`::ffff:10.1.2.3`). RabbitMQ shows them as plain
//! IPv4 (`10.1.2.3`), so every address taken from a socket goes through
//! [`canonical`] once, where it is accepted; what is shown (`peer_host`,
//! connection names, logs) and what is checked (the loopback rule) then
//! agree.

use std::net::{IpAddr, SocketAddr};

/// The address with an IPv4-mapped IPv6 address turned into IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Whether a client comes from this host (`127.0.0.0/8`, `::1`, or either
/// of them IPv4-mapped): the rule for `loopback_users`.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_become_ipv4() {
        let c = |a: &str| canonical(a.parse().unwrap()).to_string();
        assert_eq!(c("[::ffff:10.1.2.3]:5672"), "10.1.2.3:5672");
        assert_eq!(c("[::ffff:127.0.0.1]:1"), "127.0.0.1:1");
        assert_eq!(c("10.1.2.3:5672"), "10.1.2.3:5672");
        assert_eq!(c("[2001:db8::1]:5672"), "[2001:db8::1]:5672");
        assert_eq!(c("[::1]:5672"), "[::1]:5672");
        // IPv4-compatible (deprecated, `::a.b.c.d`) addresses are not mapped ones.
        assert_eq!(c("[::10.1.2.3]:1"), "[::a01:203]:1");
    }

    #[test]
    fn loopback_covers_v4_v6_and_mapped() {
        for a in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:127.9.9.9"] {
            assert!(is_loopback(a.parse().unwrap()), "{a}");
        }
        for a in ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "0.0.0.0", "::"] {
            assert!(!is_loopback(a.parse().unwrap()), "{a}");
        }
    }
}
