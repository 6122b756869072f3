//! The dashboard's browser tests: a real warren-server, chromedriver and
//! headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs), driven by fantoccini over plain HTTP.
//!
//! A missing chromedriver or Chromium fails the tests loudly: a browser
//! test that cannot run must not pass. Every test saves screenshots (PNG)
//! to `$WARREN_SCREENSHOTS_DIR`, by default `<target dir>/screenshots`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use warren_tests::Server;
use warren_tests::http::{Api, enc};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn screenshots_dir() -> PathBuf {
    if let Ok(d) = std::env::var("WARREN_SCREENSHOTS_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test> -> target/screenshots
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target dir").join("screenshots")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find_program(env: &str, names: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    for n in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = PathBuf::from(dir).join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{} not found (looked for {names:?} on PATH; set {env}): the dashboard's browser tests need \
         Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does it)",
        names[0]
    );
}

pub struct Browser {
    pub c: Client,
    driver: Child,
    profile: PathBuf,
    pub base: String,
    name: String,
}

impl Browser {
    /// A fresh Chromium (own profile) pointed at `server`'s HTTP port.
    pub async fn start(server: &Server, name: &str) -> Browser {
        let driver_bin = find_program("WARREN_CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_program("WARREN_CHROMIUM", &["chromium", "chromium-browser"]);
        let port = free_port();
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver_bin.display()));
        let profile = std::env::temp_dir().join(format!(
            "warren-chromium-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            let mut b = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            b.capabilities(caps.clone());
            match b.connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    let _ = driver.kill();
                    panic!("no WebDriver session from {} on {url}: {e}", driver_bin.display());
                }
            }
        };
        Browser { c, driver, profile, base: server.http_url(), name: name.to_owned() }
    }

    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.expect("goto");
    }

    /// Waits for an element.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                self.shot("failure").await;
                panic!("no element {css}: {e}\npage: {}", self.body_text().await)
            }
        }
    }

    pub async fn body_text(&self) -> String {
        match self.c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                last = e.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shot("failure").await;
        panic!("{css} never contained {needle:?}; last text {last:?}\npage: {}", self.body_text().await)
    }

    /// Waits until the JavaScript expression is true.
    pub async fn wait_js(&self, what: &str, expr: &str) {
        let deadline = Instant::now() + WAIT * 2;
        while Instant::now() < deadline {
            if let Ok(Value::Bool(true)) = self.c.execute(&format!("return !!({expr});"), vec![]).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.shot("failure").await;
        panic!("never true: {what} ({expr})\npage: {}", self.body_text().await)
    }

    pub async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.expect("execute script")
    }

    pub async fn absent(&self, css: &str) {
        self.wait_js(&format!("no {css}"), &format!("document.querySelector({css:?}) === null")).await
    }

    /// Types into a field, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks an element; tables are redrawn on every refresh, so an element
    /// that went stale between finding and clicking is found again.
    pub async fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) if tries < 20 => {
                    let _ = e;
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    pub async fn login(&self, user: &str, pass: &str) {
        self.fill("#login-username", user).await;
        self.fill("#login-password", pass).await;
        self.click("#login-submit").await;
    }

    /// Opens `path`, logs in as guest and waits for the navigation bar.
    pub async fn open_as_guest(&self, path: &str) {
        self.goto(path).await;
        self.login("guest", "guest").await;
        self.find("#whoami").await;
    }

    /// Saves a PNG of the page as `<test>-<what>.png`.
    pub async fn shot(&self, what: &str) {
        let Ok(png) = self.c.screenshot().await else { return };
        let dir = screenshots_dir();
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{}-{what}.png", self.name)), png);
    }

    pub async fn close(mut self) {
        let c = self.c.clone();
        let _ = c.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A server for dashboard tests: stats sampled every 500 ms.
pub fn server() -> Server {
    Server::start_with(&["--stats-interval-ms", "500"])
}

pub async fn declare_queue(api: &Api, name: &str) {
    let r = api.put(&format!("/api/queues/%2F/{}", enc(name)), json!({"durable": true})).await;
    assert!(r.code() < 300, "declare {name}: {} {}", r.code(), r.body);
}

pub async fn publish(api: &Api, exchange: &str, key: &str, payload: &str) -> Value {
    let r = api
        .post(
            &format!("/api/exchanges/%2F/{}/publish", enc(exchange)),
            json!({"routing_key": key, "payload": payload, "payload_encoding": "string", "properties": {}}),
        )
        .await;
    assert_eq!(r.code(), 200, "publish: {}", r.body);
    r.body
}

pub async fn depth(api: &Api, queue: &str) -> u64 {
    api.ok(&format!("/api/queues/%2F/{}", enc(queue))).await["messages"].as_u64().unwrap_or(0)
}
