//! Writing one `DefinitionCommand`: one flat `match`, one function per
//! command. Every function runs inside the caller's transaction.
//!
//! The functions mirror what `Broker::apply` did in memory, which has already
//! checked existence and equivalence: a declaration of something that exists
//! keeps the stored row (memory keeps the first declaration too), and a
//! deletion of something absent deletes nothing.

use amq_protocol::types::FieldTable;
use sqlx::SqliteConnection;

use super::StoreError;
use super::codec::{encode_table, encode_tags};
use super::extras;
use crate::definitions::{DefinitionCommand, ExchangeType, User};

type Result<T> = std::result::Result<T, StoreError>;

/// The exchanges every vhost creates for itself; they are never stored but
/// are durable ends of bindings.
pub(super) const PREDECLARED_EXCHANGES: &[&str] =
    &["", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"];

pub(super) fn is_predeclared(exchange: &str) -> bool {
    PREDECLARED_EXCHANGES.contains(&exchange)
}

/// True when the command certainly stores nothing (a transient declaration),
/// so the caller can skip the transaction.
pub(super) fn stores_nothing(cmd: &DefinitionCommand) -> bool {
    match cmd {
        DefinitionCommand::DeclareExchange { name, durable, .. } => !durable || is_predeclared(name),
        DefinitionCommand::DeclareQueue { durable, exclusive_owner, .. } => {
            !durable || exclusive_owner.is_some()
        }
        DefinitionCommand::NodeRestarted { .. } => true,
        _ => false,
    }
}

/// Writes the durable part of `cmd`. Returns the queue id for a stored queue
/// declaration.
pub(super) async fn write_command(
    conn: &mut SqliteConnection,
    cmd: &DefinitionCommand,
) -> Result<Option<u32>> {
    use DefinitionCommand::*;
    match cmd {
        SetParameter { component, vhost, name, value } => {
            extras::set_parameter(&mut *conn, component, vhost, name, value).await?
        }
        ClearParameter { component, vhost, name } => {
            extras::clear_parameter(&mut *conn, component, vhost, name).await?;
        }
        SetGlobalParameter { name, value } => extras::put_global_parameter(&mut *conn, name, value).await?,
        ClearGlobalParameter { name } => {
            extras::delete_global_parameter(&mut *conn, name).await?;
        }
        SetTopicPermissions { vhost, user, exchange, write, read } => {
            let row = super::rows::TopicPermissionRow {
                vhost: vhost.clone(),
                user: user.clone(),
                exchange: exchange.clone(),
                write: write.clone(),
                read: read.clone(),
            };
            extras::set_topic_permissions(&mut *conn, &row).await?
        }
        ClearTopicPermissions { vhost, user, exchange } => {
            extras::clear_topic_permissions(&mut *conn, vhost, user, exchange.as_deref()).await?;
        }
        AddVhost { name, description, tags } => add_vhost(conn, name, description, tags).await?,
        DeleteVhost { name } => delete_vhost(conn, name).await?,
        PutUser(user) => put_user(conn, user).await?,
        DeleteUser { name } => delete_user(conn, name).await?,
        SetPermissions { vhost, user, configure, write, read } => {
            set_permissions(conn, vhost, user, [configure, write, read]).await?
        }
        ClearPermissions { vhost, user } => clear_permissions(conn, vhost, user).await?,
        DeclareExchange { vhost, name, kind, durable, auto_delete, internal, arguments } => {
            if *durable && !is_predeclared(name) {
                let flags = (*auto_delete, *internal);
                declare_exchange(conn, vhost, name, *kind, flags, arguments).await?;
            }
        }
        DeleteExchange { vhost, name, .. } => delete_exchange(conn, vhost, name).await?,
        DeclareQueue { vhost, name, durable, auto_delete, exclusive_owner, arguments, home, incarnation } => {
            if *durable && exclusive_owner.is_none() {
                let placed = (home.as_deref(), *incarnation);
                let id = declare_queue(conn, vhost, name, *auto_delete, arguments, placed).await?;
                return Ok(Some(id));
            }
        }
        DeleteQueue { vhost, name, .. } => delete_queue(conn, vhost, name).await?,
        Bind { vhost, source, destination_kind, destination, routing_key, arguments, .. } => {
            let dest = (destination_kind.as_str(), destination.as_str());
            bind(conn, vhost, source, dest, routing_key, arguments).await?
        }
        Unbind { vhost, source, destination_kind, destination, routing_key, arguments, .. } => {
            let dest = (destination_kind.as_str(), destination.as_str());
            unbind(conn, vhost, source, dest, routing_key, arguments).await?
        }
        // Transient by nature: what it deletes is written as its own
        // commands.
        NodeRestarted { .. } => {}
        SetQueueMembers { vhost, name, members } => {
            // A transient queue has no row: its choice lives in memory
            // (and in the cluster's snapshots) only.
            let members = serde_json::to_string(members)
                .map_err(|e| StoreError::corrupt("queue members", e.to_string()))?;
            sqlx::query("UPDATE queues SET members = ? WHERE vhost = ? AND name = ?")
                .bind(members)
                .bind(vhost)
                .bind(name)
                .execute(conn)
                .await?;
        }
    }
    Ok(None)
}

async fn add_vhost(
    conn: &mut SqliteConnection,
    name: &str,
    description: &str,
    tags: &[String],
) -> Result<()> {
    // Adding an existing vhost changes nothing in memory; nor here.
    sqlx::query(
        "INSERT INTO vhosts (name, description, tags) VALUES (?, ?, ?)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(description)
    .bind(encode_tags(tags)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn delete_vhost(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    // Every vhost-scoped table cascades from vhosts (see the migration).
    sqlx::query("DELETE FROM vhosts WHERE name = ?").bind(name).execute(conn).await?;
    Ok(())
}

async fn put_user(conn: &mut SqliteConnection, user: &User) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (name, password_hash, hashing_algorithm, tags) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
             hashing_algorithm = excluded.hashing_algorithm, tags = excluded.tags",
    )
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(&user.hashing_algorithm)
    .bind(encode_tags(&user.tags)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn delete_user(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    // Permissions, topic permissions and limits cascade.
    sqlx::query("DELETE FROM users WHERE name = ?").bind(name).execute(conn).await?;
    Ok(())
}

async fn set_permissions(
    conn: &mut SqliteConnection,
    vhost: &str,
    user: &str,
    [configure, write, read]: [&String; 3],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO permissions (vhost, user, configure, write, read) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (vhost, user) DO UPDATE SET configure = excluded.configure,
             write = excluded.write, read = excluded.read",
    )
    .bind(vhost)
    .bind(user)
    .bind(configure)
    .bind(write)
    .bind(read)
    .execute(conn)
    .await?;
    Ok(())
}

async fn clear_permissions(conn: &mut SqliteConnection, vhost: &str, user: &str) -> Result<()> {
    sqlx::query("DELETE FROM permissions WHERE vhost = ? AND user = ?")
        .bind(vhost)
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}

async fn declare_exchange(
    conn: &mut SqliteConnection,
    vhost: &str,
    name: &str,
    kind: ExchangeType,
    (auto_delete, internal): (bool, bool),
    arguments: &FieldTable,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO exchanges (vhost, name, type, auto_delete, internal, arguments)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (vhost, name) DO NOTHING",
    )
    .bind(vhost)
    .bind(name)
    .bind(kind.as_str())
    .bind(auto_delete)
    .bind(internal)
    .bind(encode_table(arguments)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn delete_exchange(conn: &mut SqliteConnection, vhost: &str, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM exchanges WHERE vhost = ? AND name = ?")
        .bind(vhost)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM bindings WHERE vhost = ?1
             AND (source = ?2 OR (destination_kind = 'exchange' AND destination = ?2))",
    )
    .bind(vhost)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a queue unless it exists, and returns its id.
pub(super) async fn declare_queue(
    conn: &mut SqliteConnection,
    vhost: &str,
    name: &str,
    auto_delete: bool,
    arguments: &FieldTable,
    (home, incarnation): (Option<&str>, u64),
) -> Result<u32> {
    // Look first: redeclaring is what every client does at start-up, and a
    // read costs no write and no fsync.
    if let Some(id) = queue_id(&mut *conn, vhost, name).await? {
        return Ok(id);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO queues (vhost, name, auto_delete, arguments, home, incarnation)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(vhost)
    .bind(name)
    .bind(auto_delete)
    .bind(encode_table(arguments)?)
    .bind(home)
    .bind(
        i64::try_from(incarnation)
            .map_err(|_| StoreError::corrupt("queue incarnation", incarnation.to_string()))?,
    )
    .fetch_one(conn)
    .await?;
    queue_id_from_i64(id)
}

pub(super) async fn queue_id(conn: &mut SqliteConnection, vhost: &str, name: &str) -> Result<Option<u32>> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM queues WHERE vhost = ? AND name = ?")
        .bind(vhost)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    id.map(queue_id_from_i64).transpose()
}

pub(super) fn queue_id_from_i64(id: i64) -> Result<u32> {
    u32::try_from(id).map_err(|_| StoreError::corrupt("queue id", id))
}

async fn delete_queue(conn: &mut SqliteConnection, vhost: &str, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM queues WHERE vhost = ? AND name = ?")
        .bind(vhost)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM bindings
         WHERE vhost = ? AND destination_kind = 'queue' AND destination = ?",
    )
    .bind(vhost)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// `queue` or `exchange`, as the broker reads a destination kind (anything
/// but `exchange` is a queue).
fn destination_kind(kind: &str) -> &'static str {
    if kind == "exchange" { "exchange" } else { "queue" }
}

async fn is_durable_exchange(conn: &mut SqliteConnection, vhost: &str, name: &str) -> Result<bool> {
    if is_predeclared(name) {
        return Ok(true);
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM exchanges WHERE vhost = ? AND name = ?")
        .bind(vhost)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

async fn is_durable_destination(
    conn: &mut SqliteConnection,
    vhost: &str,
    kind: &str,
    name: &str,
) -> Result<bool> {
    match kind {
        "exchange" => is_durable_exchange(conn, vhost, name).await,
        _ => Ok(queue_id(conn, vhost, name).await?.is_some()),
    }
}

async fn bind(
    conn: &mut SqliteConnection,
    vhost: &str,
    source: &str,
    (kind, destination): (&str, &str),
    routing_key: &str,
    arguments: &FieldTable,
) -> Result<()> {
    let kind = destination_kind(kind);
    // A binding with a transient end would be gone after a restart anyway.
    if !is_durable_exchange(&mut *conn, vhost, source).await?
        || !is_durable_destination(&mut *conn, vhost, kind, destination).await?
    {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO bindings (vhost, source, destination_kind, destination, routing_key, arguments)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(vhost)
    .bind(source)
    .bind(kind)
    .bind(destination)
    .bind(routing_key)
    .bind(encode_table(arguments)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn unbind(
    conn: &mut SqliteConnection,
    vhost: &str,
    source: &str,
    (kind, destination): (&str, &str),
    routing_key: &str,
    arguments: &FieldTable,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM bindings WHERE vhost = ? AND source = ? AND destination_kind = ?
             AND destination = ? AND routing_key = ? AND arguments = ?",
    )
    .bind(vhost)
    .bind(source)
    .bind(destination_kind(kind))
    .bind(destination)
    .bind(routing_key)
    .bind(encode_table(arguments)?)
    .execute(conn)
    .await?;
    Ok(())
}
