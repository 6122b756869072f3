//! `export_definitions FILE|-` and `import_definitions FILE|-`. An import
//! of a large file shows its upload progress on stderr when stderr is a
//! terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use super::{CtlError, Ctx, EX_SOFTWARE, R};

/// Files above this size get a progress line.
const PROGRESS_FROM: usize = 1 << 20;

pub fn export(c: &Ctx, file: &Path) -> R<()> {
    let to_stdout = file.as_os_str() == "-";
    if !to_stdout {
        c.out.info(&format!("Exporting definitions in JSON to a file at \"{}\" ...", file.display()));
    }
    // Every field as the node wrote it, whatever its version knows.
    let defs: serde_json::Value = c.client.get("/api/definitions")?;
    let text = serde_json::to_string_pretty(&defs).map_err(|e| CtlError::new(EX_SOFTWARE, e.to_string()))?;
    if to_stdout {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(file, text + "\n")
        .map_err(|e| CtlError::data(format!("cannot write {}: {e}", file.display())))
}

pub fn import(c: &Ctx, file: &Path) -> R<()> {
    let from_stdin = file.as_os_str() == "-";
    let bytes = if from_stdin {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| CtlError::data(format!("cannot read standard input: {e}")))?;
        b
    } else {
        std::fs::read(file).map_err(|e| CtlError::data(format!("cannot read {}: {e}", file.display())))?
    };
    let source =
        if from_stdin { "standard input".to_owned() } else { format!("a file at \"{}\"", file.display()) };
    c.out.info(&format!("Importing definitions in JSON from {source} ..."));
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(CtlError::data(format!("the definitions are not valid JSON: {e}")));
    }
    let len = bytes.len() as u64;
    let show = bytes.len() >= PROGRESS_FROM && std::io::stderr().is_terminal() && !c.out.silent;
    let body = reqwest::blocking::Body::sized(Progress { data: bytes, at: 0, shown: 0, show }, len);
    let result = c.client.post_body("/api/definitions", body);
    if show {
        eprintln!();
    }
    result?;
    c.out.done("Successfully imported definitions.");
    Ok(())
}

/// The file's bytes, read by the HTTP client, with a progress line.
struct Progress {
    data: Vec<u8>,
    at: usize,
    shown: usize,
    show: bool,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        let pct = self.at * 100 / self.data.len().max(1);
        if self.show && pct != self.shown {
            self.shown = pct;
            let bar = "#".repeat(pct / 4);
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r[{bar:<25}] {pct:>3}% of {:.1} MB", self.data.len() as f64 / 1e6);
            let _ = e.flush();
        }
        Ok(n)
    }
}
