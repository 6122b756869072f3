//! Reading every stored definition back (`DefinitionStore::load`).

use sqlx::SqliteConnection;

use super::StoreError;
use super::codec::{decode_json, decode_table, decode_tags};
use super::rows::*;
use super::write::queue_id_from_i64;
use crate::definitions::{ExchangeType, User};

type Result<T> = std::result::Result<T, StoreError>;

pub(super) async fn snapshot(conn: &mut SqliteConnection) -> Result<Snapshot> {
    Ok(Snapshot {
        vhosts: vhosts(conn).await?,
        users: users(conn).await?,
        permissions: permissions(conn).await?,
        topic_permissions: topic_permissions(conn).await?,
        exchanges: exchanges(conn).await?,
        queues: queues(conn).await?,
        bindings: bindings(conn).await?,
        policies: policies(conn, false).await?,
        operator_policies: policies(conn, true).await?,
        parameters: parameters(conn).await?,
        global_parameters: global_parameters(conn).await?,
        vhost_limits: limits(conn, false).await?,
        user_limits: limits(conn, true).await?,
    })
}

async fn vhosts(conn: &mut SqliteConnection) -> Result<Vec<VhostRow>> {
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT name, description, tags, default_queue_type FROM vhosts ORDER BY name")
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(name, description, tags, default_queue_type)| {
            Ok(VhostRow { name, description, tags: decode_tags(&tags)?, default_queue_type })
        })
        .collect()
}

async fn users(conn: &mut SqliteConnection) -> Result<Vec<User>> {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT name, password_hash, hashing_algorithm, tags FROM users ORDER BY name")
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(name, password_hash, hashing_algorithm, tags)| {
            Ok(User { name, password_hash, hashing_algorithm, tags: decode_tags(&tags)? })
        })
        .collect()
}

async fn permissions(conn: &mut SqliteConnection) -> Result<Vec<PermissionRow>> {
    let rows: Vec<(String, String, String, String, String)> =
        sqlx::query_as("SELECT vhost, user, configure, write, read FROM permissions ORDER BY vhost, user")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(vhost, user, configure, write, read)| PermissionRow { vhost, user, configure, write, read })
        .collect())
}

async fn topic_permissions(conn: &mut SqliteConnection) -> Result<Vec<TopicPermissionRow>> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT vhost, user, exchange, write, read FROM topic_permissions
         ORDER BY vhost, user, exchange",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(vhost, user, exchange, write, read)| TopicPermissionRow { vhost, user, exchange, write, read })
        .collect())
}

async fn exchanges(conn: &mut SqliteConnection) -> Result<Vec<ExchangeRow>> {
    let rows: Vec<(String, String, String, bool, bool, Vec<u8>)> = sqlx::query_as(
        "SELECT vhost, name, type, auto_delete, internal, arguments FROM exchanges
         ORDER BY vhost, name",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(vhost, name, kind, auto_delete, internal, arguments)| {
            let kind = ExchangeType::parse(&kind).ok_or_else(|| {
                StoreError::corrupt("exchange type", format!("'{kind}' of exchange '{name}'"))
            })?;
            Ok(ExchangeRow { vhost, name, kind, auto_delete, internal, arguments: decode_table(&arguments)? })
        })
        .collect()
}

async fn queues(conn: &mut SqliteConnection) -> Result<Vec<QueueRow>> {
    type Row = (i64, String, String, bool, Vec<u8>, Option<String>, i64, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, vhost, name, auto_delete, arguments, home, incarnation, members FROM queues
         ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, vhost, name, auto_delete, arguments, home, incarnation, members)| {
            let members = members
                .map(|m| serde_json::from_str(&m))
                .transpose()
                .map_err(|e| StoreError::corrupt("queue members", e.to_string()))?;
            Ok(QueueRow {
                id: queue_id_from_i64(id)?,
                vhost,
                name,
                auto_delete,
                arguments: decode_table(&arguments)?,
                home,
                incarnation: u64::try_from(incarnation)
                    .map_err(|_| StoreError::corrupt("queue incarnation", incarnation.to_string()))?,
                members,
            })
        })
        .collect()
}

async fn bindings(conn: &mut SqliteConnection) -> Result<Vec<BindingRow>> {
    let rows: Vec<(String, String, String, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT vhost, source, destination_kind, destination, routing_key, arguments
         FROM bindings
         ORDER BY vhost, source, destination_kind, destination, routing_key, arguments",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(vhost, source, destination_kind, destination, routing_key, arguments)| {
            Ok(BindingRow {
                vhost,
                source,
                destination_kind,
                destination,
                routing_key,
                arguments: decode_table(&arguments)?,
            })
        })
        .collect()
}

async fn policies(conn: &mut SqliteConnection, operator: bool) -> Result<Vec<PolicyRow>> {
    let sql = if operator {
        "SELECT vhost, name, pattern, apply_to, definition, priority FROM operator_policies
         ORDER BY vhost, name"
    } else {
        "SELECT vhost, name, pattern, apply_to, definition, priority FROM policies
         ORDER BY vhost, name"
    };
    let rows: Vec<(String, String, String, String, String, i64)> =
        sqlx::query_as(sql).fetch_all(conn).await?;
    rows.into_iter()
        .map(|(vhost, name, pattern, apply_to, definition, priority)| {
            Ok(PolicyRow {
                vhost,
                name,
                pattern,
                apply_to,
                definition: decode_json("policy definition", &definition)?,
                priority,
            })
        })
        .collect()
}

async fn parameters(conn: &mut SqliteConnection) -> Result<Vec<ParameterRow>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT component, vhost, name, value FROM parameters ORDER BY component, vhost, name",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(component, vhost, name, value)| {
            Ok(ParameterRow { component, vhost, name, value: decode_json("parameter value", &value)? })
        })
        .collect()
}

async fn global_parameters(conn: &mut SqliteConnection) -> Result<Vec<GlobalParameterRow>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM global_parameters ORDER BY name").fetch_all(conn).await?;
    rows.into_iter()
        .map(|(name, value)| {
            Ok(GlobalParameterRow { name, value: decode_json("global parameter value", &value)? })
        })
        .collect()
}

async fn limits(conn: &mut SqliteConnection, users: bool) -> Result<Vec<LimitsRow>> {
    let sql = if users {
        "SELECT user, value FROM user_limits ORDER BY user"
    } else {
        "SELECT vhost, value FROM vhost_limits ORDER BY vhost"
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(conn).await?;
    rows.into_iter()
        .map(|(name, value)| Ok(LimitsRow { name, value: decode_json("limits", &value)? }))
        .collect()
}
