//! Definitions beyond exchanges, queues and bindings: a vhost's default
//! queue type, topic permissions, policies, operator policies, parameters
//! and limits. Each is one statement, run on whatever executor the caller
//! has: the pool for a direct call, or the transaction of `persist` when it
//! comes as a `DefinitionCommand`.

use serde_json::Value;
use sqlx::{Executor, Sqlite};

use super::codec::{encode_json, encode_tags};
use super::rows::{ParameterRow, PolicyRow, TopicPermissionRow, VhostRow};
use super::{DefinitionStore, StoreError};
use crate::definitions::{OPERATOR_POLICY, POLICY, VHOST_LIMITS};

type Result<T> = std::result::Result<T, StoreError>;

pub(super) async fn put_vhost<'e>(e: impl Executor<'e, Database = Sqlite>, row: &VhostRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO vhosts (name, description, tags, default_queue_type) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description,
             tags = excluded.tags, default_queue_type = excluded.default_queue_type",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(encode_tags(&row.tags)?)
    .bind(&row.default_queue_type)
    .execute(e)
    .await?;
    Ok(())
}

pub(super) async fn set_topic_permissions<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    row: &TopicPermissionRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO topic_permissions (vhost, user, exchange, write, read)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (vhost, user, exchange) DO UPDATE SET write = excluded.write,
             read = excluded.read",
    )
    .bind(&row.vhost)
    .bind(&row.user)
    .bind(&row.exchange)
    .bind(&row.write)
    .bind(&row.read)
    .execute(e)
    .await?;
    Ok(())
}

pub(super) async fn clear_topic_permissions<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    vhost: &str,
    user: &str,
    exchange: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM topic_permissions
         WHERE vhost = ?1 AND user = ?2 AND (?3 IS NULL OR exchange = ?3)",
    )
    .bind(vhost)
    .bind(user)
    .bind(exchange)
    .execute(e)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// `table` is `policies` or `operator_policies`.
async fn put_policy<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    table: Table,
    row: &PolicyRow,
) -> Result<()> {
    let sql = match table {
        Table::Policies => {
            "INSERT INTO policies (vhost, name, pattern, apply_to, definition, priority)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (vhost, name) DO UPDATE SET pattern = excluded.pattern,
                 apply_to = excluded.apply_to, definition = excluded.definition,
                 priority = excluded.priority"
        }
        Table::OperatorPolicies => {
            "INSERT INTO operator_policies (vhost, name, pattern, apply_to, definition, priority)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (vhost, name) DO UPDATE SET pattern = excluded.pattern,
                 apply_to = excluded.apply_to, definition = excluded.definition,
                 priority = excluded.priority"
        }
    };
    sqlx::query(sql)
        .bind(&row.vhost)
        .bind(&row.name)
        .bind(&row.pattern)
        .bind(&row.apply_to)
        .bind(encode_json("policy definition", &row.definition)?)
        .bind(row.priority)
        .execute(e)
        .await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Table {
    Policies,
    OperatorPolicies,
}

async fn delete_policy<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    table: Table,
    vhost: &str,
    name: &str,
) -> Result<bool> {
    let sql = match table {
        Table::Policies => "DELETE FROM policies WHERE vhost = ? AND name = ?",
        Table::OperatorPolicies => "DELETE FROM operator_policies WHERE vhost = ? AND name = ?",
    };
    let done = sqlx::query(sql).bind(vhost).bind(name).execute(e).await?;
    Ok(done.rows_affected() > 0)
}

async fn put_parameter<'e>(e: impl Executor<'e, Database = Sqlite>, row: &ParameterRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO parameters (component, vhost, name, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (component, vhost, name) DO UPDATE SET value = excluded.value",
    )
    .bind(&row.component)
    .bind(&row.vhost)
    .bind(&row.name)
    .bind(encode_json("parameter value", &row.value)?)
    .execute(e)
    .await?;
    Ok(())
}

async fn delete_parameter<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    component: &str,
    vhost: &str,
    name: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM parameters WHERE component = ? AND vhost = ? AND name = ?")
        .bind(component)
        .bind(vhost)
        .bind(name)
        .execute(e)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn put_global_parameter<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    name: &str,
    value: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO global_parameters (name, value) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(encode_json("global parameter value", value)?)
    .execute(e)
    .await?;
    Ok(())
}

pub(super) async fn delete_global_parameter<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    name: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM global_parameters WHERE name = ?").bind(name).execute(e).await?;
    Ok(done.rows_affected() > 0)
}

async fn set_limits<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    vhost_or_user: VhostOrUser,
    name: &str,
    value: &Value,
) -> Result<()> {
    let sql = match vhost_or_user {
        VhostOrUser::Vhost => {
            "INSERT INTO vhost_limits (vhost, value) VALUES (?, ?)
             ON CONFLICT (vhost) DO UPDATE SET value = excluded.value"
        }
        VhostOrUser::User => {
            "INSERT INTO user_limits (user, value) VALUES (?, ?)
             ON CONFLICT (user) DO UPDATE SET value = excluded.value"
        }
    };
    sqlx::query(sql).bind(name).bind(encode_json("limits", value)?).execute(e).await?;
    Ok(())
}

async fn clear_limits<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    vhost_or_user: VhostOrUser,
    name: &str,
) -> Result<bool> {
    let sql = match vhost_or_user {
        VhostOrUser::Vhost => "DELETE FROM vhost_limits WHERE vhost = ?",
        VhostOrUser::User => "DELETE FROM user_limits WHERE user = ?",
    };
    let done = sqlx::query(sql).bind(name).execute(e).await?;
    Ok(done.rows_affected() > 0)
}

#[derive(Clone, Copy)]
enum VhostOrUser {
    Vhost,
    User,
}

/// A policy as RabbitMQ's runtime parameter value (`pattern`, `definition`,
/// `priority`, `apply-to`) turned into a row.
fn policy_row(vhost: &str, name: &str, value: &Value) -> PolicyRow {
    PolicyRow {
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        pattern: value.get("pattern").and_then(Value::as_str).unwrap_or_default().to_owned(),
        apply_to: value.get("apply-to").and_then(Value::as_str).unwrap_or("all").to_owned(),
        definition: value.get("definition").cloned().unwrap_or_else(|| Value::Object(Default::default())),
        priority: value.get("priority").and_then(Value::as_i64).unwrap_or(0),
    }
}

/// The row back as the runtime parameter value.
pub(super) fn policy_value(row: &PolicyRow) -> Value {
    serde_json::json!({
        "pattern": row.pattern,
        "definition": row.definition,
        "priority": row.priority,
        "apply-to": row.apply_to,
    })
}

/// Persists `SetParameter`: policies, operator policies and vhost limits
/// have tables of their own; other components go to `parameters`.
pub(super) async fn set_parameter<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    component: &str,
    vhost: &str,
    name: &str,
    value: &Value,
) -> Result<()> {
    match component {
        POLICY => put_policy(e, Table::Policies, &policy_row(vhost, name, value)).await,
        OPERATOR_POLICY => put_policy(e, Table::OperatorPolicies, &policy_row(vhost, name, value)).await,
        VHOST_LIMITS => set_limits(e, VhostOrUser::Vhost, vhost, value).await,
        _ => {
            let row = ParameterRow {
                component: component.to_owned(),
                vhost: vhost.to_owned(),
                name: name.to_owned(),
                value: value.clone(),
            };
            put_parameter(e, &row).await
        }
    }
}

pub(super) async fn clear_parameter<'e>(
    e: impl Executor<'e, Database = Sqlite>,
    component: &str,
    vhost: &str,
    name: &str,
) -> Result<bool> {
    match component {
        POLICY => delete_policy(e, Table::Policies, vhost, name).await,
        OPERATOR_POLICY => delete_policy(e, Table::OperatorPolicies, vhost, name).await,
        VHOST_LIMITS => clear_limits(e, VhostOrUser::Vhost, vhost).await,
        _ => delete_parameter(e, component, vhost, name).await,
    }
}

/// Direct calls, each its own transaction.
impl DefinitionStore {
    /// Creates or replaces a vhost, with all of its fields (unlike
    /// `DefinitionCommand::AddVhost`, which leaves an existing vhost alone).
    pub async fn put_vhost(&self, row: &VhostRow) -> Result<()> {
        put_vhost(&self.pool, row).await
    }

    pub async fn set_topic_permissions(&self, row: &TopicPermissionRow) -> Result<()> {
        set_topic_permissions(&self.pool, row).await
    }

    /// Clears a user's topic permissions in a vhost: for one exchange, or
    /// for all of them when `exchange` is None. Returns whether any existed.
    pub async fn clear_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        exchange: Option<&str>,
    ) -> Result<bool> {
        clear_topic_permissions(&self.pool, vhost, user, exchange).await
    }

    pub async fn put_policy(&self, row: &PolicyRow) -> Result<()> {
        put_policy(&self.pool, Table::Policies, row).await
    }

    pub async fn delete_policy(&self, vhost: &str, name: &str) -> Result<bool> {
        delete_policy(&self.pool, Table::Policies, vhost, name).await
    }

    pub async fn put_operator_policy(&self, row: &PolicyRow) -> Result<()> {
        put_policy(&self.pool, Table::OperatorPolicies, row).await
    }

    pub async fn delete_operator_policy(&self, vhost: &str, name: &str) -> Result<bool> {
        delete_policy(&self.pool, Table::OperatorPolicies, vhost, name).await
    }

    pub async fn put_parameter(&self, row: &ParameterRow) -> Result<()> {
        put_parameter(&self.pool, row).await
    }

    pub async fn delete_parameter(&self, component: &str, vhost: &str, name: &str) -> Result<bool> {
        delete_parameter(&self.pool, component, vhost, name).await
    }

    pub async fn put_global_parameter(&self, name: &str, value: &Value) -> Result<()> {
        put_global_parameter(&self.pool, name, value).await
    }

    pub async fn delete_global_parameter(&self, name: &str) -> Result<bool> {
        delete_global_parameter(&self.pool, name).await
    }

    /// Sets a vhost's limits (a JSON object such as `{"max-queues": 10}`).
    pub async fn set_vhost_limits(&self, vhost: &str, value: &Value) -> Result<()> {
        set_limits(&self.pool, VhostOrUser::Vhost, vhost, value).await
    }

    pub async fn clear_vhost_limits(&self, vhost: &str) -> Result<bool> {
        clear_limits(&self.pool, VhostOrUser::Vhost, vhost).await
    }

    /// Sets a user's limits (a JSON object such as `{"max-channels": 10}`).
    pub async fn set_user_limits(&self, user: &str, value: &Value) -> Result<()> {
        set_limits(&self.pool, VhostOrUser::User, user, value).await
    }

    pub async fn clear_user_limits(&self, user: &str) -> Result<bool> {
        clear_limits(&self.pool, VhostOrUser::User, user).await
    }
}
