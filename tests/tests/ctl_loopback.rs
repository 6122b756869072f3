//! The guest loopback rule, for real: a client in a network namespace,
//! joined to this one by a veth pair on a private /30, connects from a
//! non-loopback address. By default guest is refused (AMQP and HTTP);
//! `loopback_users.guest = false` in warren.conf lets it in.
//!
//! Needs root (ip netns, iproute2). The namespace and the veth pair are
//! removed afterwards. If they cannot be made while running as root, the
//! test fails; when not root it says why and does not run.

mod ctl_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use warren_tests::Server;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A namespace with one end of a veth pair: the host side has `.1`, the
/// namespace `.2` of 10.213.N.M/30.
struct Netns {
    name: String,
    veth: String,
    host_ip: String,
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id() % 60000;
        let name = format!("warren-lb-{id}");
        let (veth, peer) = (format!("wlb{id}a"), format!("wlb{id}b"));
        let base = 4 * (id % 64);
        let subnet = format!("10.213.{}", id / 64 % 256);
        let (host_ip, ns_ip) = (format!("{subnet}.{}", base + 1), format!("{subnet}.{}", base + 2));
        let ns = Netns { name: name.clone(), veth: veth.clone(), host_ip: host_ip.clone() };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), name.clone()],
            vec![
                "link".into(),
                "add".into(),
                veth.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
            ],
            vec!["link".into(), "set".into(), peer.clone(), "netns".into(), name.clone()],
            vec!["addr".into(), "add".into(), format!("{host_ip}/30"), "dev".into(), veth.clone()],
            vec!["link".into(), "set".into(), veth.clone(), "up".into()],
            vec![
                "-n".into(),
                name.clone(),
                "addr".into(),
                "add".into(),
                format!("{ns_ip}/30"),
                "dev".into(),
                peer.clone(),
            ],
            vec!["-n".into(), name.clone(), "link".into(), "set".into(), peer.clone(), "up".into()],
            vec!["-n".into(), name.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            if let Err(e) = ip(&args) {
                panic!(
                    "cannot set up the network namespace for the loopback test (root, iproute2 needed): {e}"
                );
            }
        }
        ns
    }

    /// Runs `f` on a thread inside the namespace: sockets it opens have the
    /// namespace's address.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: setns on this thread only, with a namespace fd we hold open.
                let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]); // takes the peer end, and so the pair
        let _ = ip(&["link", "del", &self.veth]);
    }
}

fn frame(f: &AMQPFrame) -> Vec<u8> {
    cookie_factory::gen_simple(gen_frame(f), Vec::new()).unwrap()
}

fn read_method(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<AMQPClass> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok((rest, f)) = parse_frame(&buf[..]) {
            let used = buf.len() - rest.len();
            buf.drain(..used);
            if let AMQPFrame::Method(_, m) = f {
                return Some(m);
            }
            continue;
        }
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// An AMQP login as guest/guest: Ok(()) when the server tunes the
/// connection, Err(close text) when it refuses.
fn amqp_login(addr: &str, from_loopback: bool) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = s.local_addr().unwrap();
    assert_eq!(local.ip().is_loopback(), from_loopback, "the client's address: {local}");
    let mut buf = Vec::new();
    s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
    let start = read_method(&mut s, &mut buf).expect("connection.start");
    assert!(matches!(start, AMQPClass::Connection(connection::AMQPMethod::Start(_))), "{start:?}");
    let mut caps = FieldTable::default();
    caps.insert("authentication_failure_close".into(), AMQPValue::Boolean(true));
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    let start_ok = AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties: props,
        mechanism: "PLAIN".into(),
        response: "\0guest\0guest".into(),
        locale: "en_US".into(),
    }));
    s.write_all(&frame(&AMQPFrame::Method(0, start_ok))).unwrap();
    match read_method(&mut s, &mut buf) {
        Some(AMQPClass::Connection(connection::AMQPMethod::Tune(_))) => Ok(()),
        Some(AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            Err(format!("{} {}", c.reply_code, c.reply_text))
        }
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// GET /api/whoami as guest over plain HTTP: the status code.
fn http_whoami(addr: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET /api/whoami HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {resp}"))
}

/// The port a listener of `kind` logged for `ip`.
fn port_on(s: &Server, kind: &str, ip: &str) -> u16 {
    let marker = format!("started {kind} listener on {ip}:");
    assert!(
        s.wait_for_log(&marker, Duration::from_secs(10)),
        "no {kind} listener on {ip}:\n{}",
        s.log_text()
    );
    let log = s.log_text();
    let line = log.lines().find(|l| l.contains(&marker)).unwrap();
    line.split(&marker).nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn guest_is_refused_from_a_remote_address_unless_loopback_users_allows_it() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: the loopback test needs root to create a network namespace (ip netns)");
        return;
    }
    let ns = Netns::create();

    // Default: guest may only connect from loopback.
    let s = Server::start_with(&["--bind", &ns.host_ip]);
    let (amqp, http) = (port_on(&s, "AMQP 0-9-1", &ns.host_ip), port_on(&s, "HTTP", &ns.host_ip));
    let (amqp_addr, http_addr) = (format!("{}:{amqp}", ns.host_ip), format!("{}:{http}", ns.host_ip));
    let refused = ns.run(|| amqp_login(&amqp_addr, false));
    let why = refused.expect_err("guest logged in from a remote address");
    assert!(why.starts_with("403 ACCESS_REFUSED"), "{why}");
    assert!(
        s.wait_for_log("user 'guest' can only connect via localhost", Duration::from_secs(5)),
        "{}",
        s.log_text()
    );
    assert_eq!(ns.run(|| http_whoami(&http_addr)), 401);
    // From loopback guest still gets in. (With two --bind addresses and
    // port 0 each listener has its own port, so read it from the log.)
    amqp_login(&format!("127.0.0.1:{}", port_on(&s, "AMQP 0-9-1", "127.0.0.1")), true).unwrap();
    drop(s);

    // loopback_users.guest = false in warren.conf lets it in from anywhere.
    let dir = std::env::temp_dir().join(warren_tests::unique("warren-lb-conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("warren.conf");
    std::fs::write(&conf, "loopback_users.guest = false\n").unwrap();
    let s = Server::start_with(&["--bind", &ns.host_ip, "--config", conf.to_str().unwrap()]);
    let (amqp, http) = (port_on(&s, "AMQP 0-9-1", &ns.host_ip), port_on(&s, "HTTP", &ns.host_ip));
    let (amqp_addr, http_addr) = (format!("{}:{amqp}", ns.host_ip), format!("{}:{http}", ns.host_ip));
    ns.run(|| amqp_login(&amqp_addr, false)).expect("guest refused although loopback_users.guest = false");
    assert_eq!(ns.run(|| http_whoami(&http_addr)), 200);
    let _ = std::fs::remove_dir_all(&dir);
}
