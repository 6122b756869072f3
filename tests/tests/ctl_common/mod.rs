//! Shared by the `ctl_*` tests: run the built `warrenctl` against a real
//! server, and read its output.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use warren_tests::Server;

/// `warrenctl` sits next to the `warren-server` the harness runs.
pub fn ctl_bin() -> PathBuf {
    let bin = warren_tests::server_bin().with_file_name("warrenctl");
    assert!(bin.exists(), "{} does not exist: build it first (cargo build -p warren --bins)", bin.display());
    bin
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "warrenctl failed: {self:?}");
        &self.stdout
    }
    /// Asserts the exit code and a single `Error: ...` line on stderr.
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, code, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one error line expected: {self:?}");
        assert!(lines[0].starts_with("Error: "), "{self:?}");
        assert!(lines[0].contains(needle), "'{needle}' not in: {self:?}");
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

pub fn run_raw(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(ctl_bin());
    cmd.args(args)
        .env_remove("WARRENCTL_NODE")
        .env_remove("WARRENCTL_USERNAME")
        .env_remove("WARRENCTL_PASSWORD")
        .env_remove("WARRENCTL_CACERT")
        .env_remove("WARRENCTL_CERT")
        .env_remove("WARRENCTL_KEY")
        .env_remove("WARRENCTL_CONFIG_FILE");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run warrenctl");
    let mut input = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        input.write_all(b).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `warrenctl -n 127.0.0.1:<http port> ARGS...` as guest.
pub fn ctl(s: &Server, args: &[&str]) -> Run {
    let node = format!("127.0.0.1:{}", s.http_port);
    let mut all = vec!["-n", node.as_str()];
    all.extend_from_slice(args);
    run_raw(&all, None)
}

pub fn ctl_stdin(s: &Server, args: &[&str], stdin: &[u8]) -> Run {
    let node = format!("127.0.0.1:{}", s.http_port);
    let mut all = vec!["-n", node.as_str()];
    all.extend_from_slice(args);
    run_raw(&all, Some(stdin))
}

/// The rows of a table (header first), split on runs of two or more spaces.
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}
