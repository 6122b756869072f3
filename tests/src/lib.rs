//! Test support: start a real `warren-server` process on free ports, talk
//! to it with real clients (lapin) or raw AMQP bytes, and stop it.
//!
//! The server is started with port 0 and tells us the ports it bound in its
//! log, so tests never race each other for a port.

pub mod checker;
pub mod confirms;
pub mod http;
pub mod netns;
pub mod pki;
pub mod raw;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use lapin;
use lapin::{Channel, Connection, ConnectionProperties};

/// Where the server binary is: `WARREN_SERVER_BIN`, or next to the test
/// binary's target directory.
pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("WARREN_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/warren-server
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("warren-server");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (cargo build -p warren --bins) or set WARREN_SERVER_BIN",
        bin.display()
    );
    bin
}

/// A fresh directory per call: `unique`'s process id and counter (two
/// tests of one process can read the same clock value: CI once gave two
/// servers one data dir that way) and the time (against directories left by
/// an earlier run whose process had the same id).
fn temp_dir(tag: &str) -> PathBuf {
    let n: u64 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let dir = std::env::temp_dir().join(format!("{}-{n}", unique(&format!("warren-test-{tag}"))));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub amqp_port: u16,
    /// The management HTTP port, parsed from the log like the AMQP one.
    pub http_port: u16,
    extra_args: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(args: &[&str]) -> Server {
        Self::start_in(temp_dir("data"), args)
    }

    /// Starts a server on a given data directory.
    pub fn start_in(data_dir: PathBuf, args: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            data_dir,
            amqp_port: 0,
            http_port: 0,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            log: Arc::default(),
        };
        s.spawn(0, 0);
        s
    }

    /// Starts the server again after `stop`, expecting it to fail; returns
    /// its exit status and log.
    pub fn start_expecting_failure(&mut self) -> (std::process::ExitStatus, String) {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--amqp-port", &self.amqp_port.to_string(), "--http-port", "0", "--bind", "127.0.0.1"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args);
        let out = cmd.output().expect("run warren-server");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status, log)
    }

    /// Starts the server after `stop` (same ports and data dir).
    pub fn start_again(&mut self) {
        self.spawn(self.amqp_port, self.http_port);
    }

    /// Starts the process. A restart on fixed ports may find one of them
    /// taken for a moment (the kernel can hand a freed listener port to
    /// another test's outgoing connection as its local port): then it
    /// tries again, for up to 10 s.
    fn spawn(&mut self, port: u16, http_port: u16) {
        let fixed = port != 0 || http_port != 0;
        for attempt in 0..40 {
            if self.spawn_once(port, http_port, fixed && attempt < 39) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// False when the process exited because a port was in use and
    /// `may_retry`; panics on any other failure.
    fn spawn_once(&mut self, port: u16, http_port: u16, may_retry: bool) -> bool {
        let logged_before = self.log.lock().unwrap().len();
        let mut cmd = Command::new(server_bin());
        cmd.args([
            "--amqp-port",
            &port.to_string(),
            "--http-port",
            &http_port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--data-dir")
        .arg(&self.data_dir)
        .args(&self.extra_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start warren-server");
        // (is_http, port) for each listener line.
        let (tx, rx) = std::sync::mpsc::channel::<(bool, u16)>();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = self.log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    for (marker, is_http) in
                        [("started AMQP 0-9-1 listener on ", false), ("started HTTP listener on ", true)]
                    {
                        if let Some(addr) = line.split(marker).nth(1)
                            && let Some(p) = addr.trim().rsplit(':').next().and_then(|p| p.parse().ok())
                        {
                            let _ = tx.send((is_http, p));
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let (mut amqp, mut http) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while amqp.is_none() || http.is_none() {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((false, p)) => amqp = Some(p),
                Ok((true, p)) => http = Some(p),
                Err(_) => {
                    // Fail at once when the server exited (its log says why).
                    let exited = matches!(child.try_wait(), Ok(Some(_)));
                    if exited || Instant::now() > deadline {
                        let _ = child.kill();
                        std::thread::sleep(Duration::from_millis(100));
                        let in_use = self.log.lock().unwrap()[logged_before..]
                            .iter()
                            .any(|l| l.contains("Address already in use"));
                        if exited && in_use && may_retry {
                            return false;
                        }
                        panic!("warren-server did not start; log:\n{}", self.log_text());
                    }
                }
            }
        }
        self.amqp_port = amqp.unwrap_or_default();
        self.http_port = http.unwrap_or_default();
        self.child = Some(child);
        true
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line containing `needle` appears.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn uri(&self) -> String {
        self.uri_as("guest", "guest", "%2f")
    }

    pub fn uri_as(&self, user: &str, pass: &str, vhost: &str) -> String {
        format!("amqp://{user}:{pass}@127.0.0.1:{}/{vhost}", self.amqp_port)
    }

    /// `http://127.0.0.1:<http port>`, the management API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.amqp_port)
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.uri(), ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\nlog:\n{}", self.log_text()))
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let c = self.connect().await;
        let ch = c.create_channel().await.expect("channel");
        (c, ch)
    }

    /// SIGTERM and wait; then start again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(self.amqp_port, self.http_port);
    }

    /// Sets the value of a command-line flag given at start, for the next
    /// starts (e.g. the port a first start picked with 0).
    pub fn set_arg(&mut self, flag: &str, value: &str) {
        match self.extra_args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.extra_args.len() => self.extra_args[i + 1] = value.to_owned(),
            _ => self.extra_args.extend([flag.to_owned(), value.to_owned()]),
        }
    }

    /// kill -9; `start_again` brings it back on the same ports and data dir.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// kill -9, then start again on the same port and data dir.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn(self.amqp_port, self.http_port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server's resident set size in KiB (`VmRSS` in /proc), Linux only.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("server running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- warren-server log ---\n{}", self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The AMQP reply code of a lapin error, if the broker sent one.
pub fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

/// The reply text of a lapin error, if the broker sent one.
pub fn reply_text(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => p.get_message().to_string(),
        other => format!("{other:?}"),
    }
}

/// A unique name for a test entity.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Polls `f` until it returns Some or the deadline passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
