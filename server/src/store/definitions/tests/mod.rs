//! Tests against real SQLite files in temporary directories, by theme:
//! `schema` (opening, migrations, refusal), `round_trip` (what goes in comes
//! back), `rules` (what is stored, cascades, ids), `crash` (interrupted
//! transactions), `bench` (ignored; prints what a persist costs). The
//! helpers below build commands and rows.

mod bench;
mod crash;
mod round_trip;
mod rules;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::*;
use crate::definitions::DefinitionCommand as Cmd;
use crate::definitions::{ExchangeType, User};

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "warren-defs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn args() -> FieldTable {
    let mut array = FieldArray::default();
    array.push(AMQPValue::LongString("x".into()));
    array.push(AMQPValue::ShortShortInt(-1));
    let mut nested = FieldTable::default();
    nested.insert("deep".into(), AMQPValue::Double(0.5));
    let mut t = FieldTable::default();
    t.insert("x-max-length".into(), AMQPValue::LongInt(10));
    t.insert("x-message-ttl".into(), AMQPValue::LongLongInt(60_000));
    t.insert("x-queue-mode".into(), AMQPValue::LongString("lazy".into()));
    t.insert("flag".into(), AMQPValue::Boolean(true));
    t.insert("small".into(), AMQPValue::ShortInt(-2));
    t.insert("unsigned".into(), AMQPValue::LongUInt(7));
    t.insert("float".into(), AMQPValue::Float(2.5));
    t.insert("when".into(), AMQPValue::Timestamp(1_700_000_000));
    t.insert("list".into(), AMQPValue::FieldArray(array));
    t.insert("table".into(), AMQPValue::FieldTable(nested));
    t.insert("nothing".into(), AMQPValue::Void);
    t
}

fn vhost(name: &str) -> Cmd {
    Cmd::AddVhost {
        name: name.into(),
        description: format!("{name} vhost"),
        tags: vec!["t1".into(), "t2".into()],
    }
}

fn user(name: &str, tags: &[&str]) -> User {
    User {
        name: name.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        hashing_algorithm: "argon2id".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

fn permissions(vhost: &str, user: &str, pattern: &str) -> Cmd {
    Cmd::SetPermissions {
        vhost: vhost.into(),
        user: user.into(),
        configure: pattern.into(),
        write: format!("{pattern}w"),
        read: format!("{pattern}r"),
    }
}

fn exchange(vhost: &str, name: &str, durable: bool) -> Cmd {
    Cmd::DeclareExchange {
        vhost: vhost.into(),
        name: name.into(),
        kind: ExchangeType::Topic,
        durable,
        auto_delete: false,
        internal: false,
        arguments: args(),
    }
}

fn queue(vhost: &str, name: &str, durable: bool, exclusive: bool) -> Cmd {
    Cmd::DeclareQueue {
        vhost: vhost.into(),
        name: name.into(),
        durable,
        auto_delete: false,
        exclusive_owner: exclusive.then_some(7),
        arguments: args(),
        home: None,
        incarnation: 0,
    }
}

fn delete_queue(vhost: &str, name: &str) -> Cmd {
    Cmd::DeleteQueue {
        vhost: vhost.into(),
        name: name.into(),
        if_unused: false,
        if_empty: false,
        requester: None,
    }
}

fn delete_exchange(vhost: &str, name: &str) -> Cmd {
    Cmd::DeleteExchange { vhost: vhost.into(), name: name.into(), if_unused: false }
}

fn bind(vhost: &str, source: &str, kind: &str, dest: &str, key: &str, arguments: FieldTable) -> Cmd {
    Cmd::Bind {
        vhost: vhost.into(),
        source: source.into(),
        destination_kind: kind.into(),
        destination: dest.into(),
        routing_key: key.into(),
        arguments,
        requester: None,
    }
}

fn binding_row(
    vhost: &str,
    source: &str,
    kind: &str,
    dest: &str,
    key: &str,
    arguments: FieldTable,
) -> BindingRow {
    BindingRow {
        vhost: vhost.into(),
        source: source.into(),
        destination_kind: kind.into(),
        destination: dest.into(),
        routing_key: key.into(),
        arguments,
    }
}

async fn persist_all(store: &DefinitionStore, cmds: &[Cmd]) {
    for cmd in cmds {
        store.persist(cmd).await.unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    }
}

async fn reopen(store: DefinitionStore, dir: &Path) -> DefinitionStore {
    store.close().await;
    let store = DefinitionStore::open(dir).await.unwrap();
    assert!(!store.is_new());
    store
}

fn names<T>(rows: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    rows.iter().map(f).collect()
}

/// Every file of a directory with its length and checksum.
fn dir_contents(dir: &Path) -> BTreeMap<String, (usize, u32)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), (bytes.len(), crc32fast::hash(&bytes)))
        })
        .collect()
}

async fn raw_connection(dir: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new().filename(dir.join(FILE_NAME));
    SqliteConnection::connect_with(&options).await.unwrap()
}
