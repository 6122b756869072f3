//! Definitions that `DefinitionCommand` does not carry yet: a vhost's
//! default queue type, topic permissions, policies, operator policies,
//! parameters and limits. Each call is one statement, hence one transaction.

use super::codec::{encode_json, encode_tags};
use super::rows::{ParameterRow, PolicyRow, TopicPermissionRow, VhostRow};
use super::{DefinitionStore, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

impl DefinitionStore {
    /// Creates or replaces a vhost, with all of its fields (unlike
    /// `DefinitionCommand::AddVhost`, which leaves an existing vhost alone).
    pub async fn put_vhost(&self, row: &VhostRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO vhosts (name, description, tags, default_queue_type) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description,
                 tags = excluded.tags, default_queue_type = excluded.default_queue_type",
        )
        .bind(&row.name)
        .bind(&row.description)
        .bind(encode_tags(&row.tags)?)
        .bind(&row.default_queue_type)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_topic_permissions(&self, row: &TopicPermissionRow) -> Result<()> {
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Clears a user's topic permissions in a vhost: for one exchange, or
    /// for all of them when `exchange` is None. Returns whether any existed.
    pub async fn clear_topic_permissions(
        &self,
        vhost: &str,
        user: &str,
        exchange: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM topic_permissions
             WHERE vhost = ? AND user = ? AND (?3 IS NULL OR exchange = ?3)",
        )
        .bind(vhost)
        .bind(user)
        .bind(exchange)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates or replaces a policy.
    pub async fn put_policy(&self, row: &PolicyRow) -> Result<()> {
        self.put_policy_in(
            "INSERT INTO policies (vhost, name, pattern, apply_to, definition, priority)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (vhost, name) DO UPDATE SET pattern = excluded.pattern,
                 apply_to = excluded.apply_to, definition = excluded.definition,
                 priority = excluded.priority",
            row,
        )
        .await
    }

    /// Returns whether the policy existed.
    pub async fn delete_policy(&self, vhost: &str, name: &str) -> Result<bool> {
        self.delete_by_vhost_and_name(
            "DELETE FROM policies WHERE vhost = ? AND name = ?",
            vhost,
            name,
        )
        .await
    }

    /// Creates or replaces an operator policy.
    pub async fn put_operator_policy(&self, row: &PolicyRow) -> Result<()> {
        self.put_policy_in(
            "INSERT INTO operator_policies (vhost, name, pattern, apply_to, definition, priority)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (vhost, name) DO UPDATE SET pattern = excluded.pattern,
                 apply_to = excluded.apply_to, definition = excluded.definition,
                 priority = excluded.priority",
            row,
        )
        .await
    }

    /// Returns whether the operator policy existed.
    pub async fn delete_operator_policy(&self, vhost: &str, name: &str) -> Result<bool> {
        self.delete_by_vhost_and_name(
            "DELETE FROM operator_policies WHERE vhost = ? AND name = ?",
            vhost,
            name,
        )
        .await
    }

    async fn put_policy_in(&self, sql: &'static str, row: &PolicyRow) -> Result<()> {
        sqlx::query(sql)
            .bind(&row.vhost)
            .bind(&row.name)
            .bind(&row.pattern)
            .bind(&row.apply_to)
            .bind(encode_json("policy definition", &row.definition)?)
            .bind(row.priority)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_by_vhost_and_name(
        &self,
        sql: &'static str,
        vhost: &str,
        name: &str,
    ) -> Result<bool> {
        let done = sqlx::query(sql)
            .bind(vhost)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates or replaces a per-vhost runtime parameter.
    pub async fn put_parameter(&self, row: &ParameterRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO parameters (component, vhost, name, value) VALUES (?, ?, ?, ?)
             ON CONFLICT (component, vhost, name) DO UPDATE SET value = excluded.value",
        )
        .bind(&row.component)
        .bind(&row.vhost)
        .bind(&row.name)
        .bind(encode_json("parameter value", &row.value)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether the parameter existed.
    pub async fn delete_parameter(&self, component: &str, vhost: &str, name: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM parameters WHERE component = ? AND vhost = ? AND name = ?")
                .bind(component)
                .bind(vhost)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates or replaces a global parameter.
    pub async fn put_global_parameter(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "INSERT INTO global_parameters (name, value) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(encode_json("global parameter value", value)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether the global parameter existed.
    pub async fn delete_global_parameter(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM global_parameters WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a vhost's limits (a JSON object such as `{"max-queues": 10}`).
    pub async fn set_vhost_limits(&self, vhost: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "INSERT INTO vhost_limits (vhost, value) VALUES (?, ?)
             ON CONFLICT (vhost) DO UPDATE SET value = excluded.value",
        )
        .bind(vhost)
        .bind(encode_json("limits", value)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether the vhost had limits.
    pub async fn clear_vhost_limits(&self, vhost: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM vhost_limits WHERE vhost = ?")
            .bind(vhost)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a user's limits (a JSON object such as `{"max-channels": 10}`).
    pub async fn set_user_limits(&self, user: &str, value: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_limits (user, value) VALUES (?, ?)
             ON CONFLICT (user) DO UPDATE SET value = excluded.value",
        )
        .bind(user)
        .bind(encode_json("limits", value)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether the user had limits.
    pub async fn clear_user_limits(&self, user: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM user_limits WHERE user = ?")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
