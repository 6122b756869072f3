//! Rebuild triggers for what the server embeds (migrations/, the
//! dashboard), and bookkeeping for the embedded dashboard; the WASM build itself is
//! `scripts/build-frontend.sh`, a separate step.
//!
//! - Rebuild when `frontend/dist/` (the bundle `http::assets` embeds)
//!   changes.
//! - `WARREN_FRONTEND_SOURCE_HASH`: the hash of the dashboard's sources,
//!   computed as `scripts/frontend-source-hash.sh` does; the server
//!   compares it with the one the bundle's manifest records and refuses a
//!   stale bundle.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Keep in step with scripts/frontend-source-hash.sh.
const FRONTEND_SOURCES: &[&str] = &[
    "frontend/Cargo.toml",
    "frontend/style.css",
    "frontend/src",
    "server/api-types/Cargo.toml",
    "server/api-types/src",
];

fn files(root: &Path, rel: &str, out: &mut Vec<String>) {
    let p = root.join(rel);
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(&p) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            files(root, &format!("{rel}/{name}"), out);
        }
    } else if p.is_file() {
        out.push(rel.to_owned());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    // `sqlx::migrate!` embeds migrations/ at build time; rebuild when it changes.
    println!("cargo:rerun-if-changed=../migrations");
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    println!("cargo:rerun-if-changed={}", root.join("frontend/dist").display());
    let mut list = Vec::new();
    for s in FRONTEND_SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(s).display());
        files(&root, s, &mut list);
    }
    list.sort();
    let mut all = Sha256::new();
    for rel in &list {
        let data = std::fs::read(root.join(rel)).unwrap_or_default();
        all.update(format!("{}  {rel}\n", hex(&Sha256::digest(&data))).as_bytes());
    }
    println!("cargo:rustc-env=WARREN_FRONTEND_SOURCE_HASH={}", hex(&all.finalize()));
}
