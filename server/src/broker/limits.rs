//! The per-vhost and per-user limits, enforced as RabbitMQ enforces them:
//! a vhost's `max-connections` and `max-queues` (the runtime parameter
//! `vhost-limits`/`limits` of the vhost) and a user's `max-connections`
//! and `max-channels` (Warren keeps every user's in the global parameter
//! [`USER_LIMITS`]). A limit is read at each check, so a change takes
//! effect for the next connection, channel or declaration; 0 allows none,
//! and a negative value or none is no limit.
//!
//! Connections and channels are counted on this node only (its connection
//! registry); RabbitMQ counts them across the cluster. Queues are counted
//! in the vhost, which every member holds whole.

use serde_json::Value;

use super::Broker;
use super::error::{BrokerError, Result};
use crate::definitions::VHOST_LIMITS;

/// The global parameter holding every user's limits, by user name.
pub const USER_LIMITS: &str = "warren_user_limits";

/// A limit's value, if it is one: a non-negative integer.
fn limit(limits: Option<Value>, name: &str) -> Option<u64> {
    limits?.get(name)?.as_u64()
}

impl Broker {
    fn vhost_limit(&self, vhost: &str, name: &str) -> Option<u64> {
        limit(self.parameters.get(VHOST_LIMITS, vhost, "limits"), name)
    }

    fn user_limit(&self, user: &str, name: &str) -> Option<u64> {
        limit(
            self.parameters.global(USER_LIMITS).and_then(|mut all| all.get_mut(user).map(Value::take)),
            name,
        )
    }

    /// At `connection.open`: the vhost's `max-connections`, then the
    /// user's, as RabbitMQ checks them.
    pub fn check_connection_limits(&self, vhost: &str, user: &str) -> Result<()> {
        if let Some(n) = self.vhost_limit(vhost, "max-connections")
            && self.connections.count(|c| c.vhost == vhost) as u64 >= n
        {
            return Err(BrokerError::not_allowed(format!(
                "access to vhost '{vhost}' refused for user '{user}': connection limit ({n}) is reached"
            )));
        }
        if let Some(n) = self.user_limit(user, "max-connections")
            && self.connections.count(|c| c.user == user) as u64 >= n
        {
            return Err(BrokerError::not_allowed(format!(
                "connection refused for user '{user}': user connection limit ({n}) is reached"
            )));
        }
        Ok(())
    }

    /// At `channel.open`: the user's `max-channels`, counted over all the
    /// user's connections.
    pub fn check_channel_limit(&self, user: &str) -> Result<()> {
        if let Some(n) = self.user_limit(user, "max-channels") {
            let open: u64 =
                self.connections.sum(|c| if c.user == user { c.channel_count().into() } else { 0 });
            if open >= n {
                return Err(BrokerError::not_allowed(format!(
                    "number of channels opened for user '{user}' has reached the maximum allowed user limit of {n}"
                )));
            }
        }
        Ok(())
    }

    /// Before declaring a queue that does not exist: the vhost's
    /// `max-queues`.
    pub fn check_queue_limit(&self, vhost: &str, queue: &str) -> Result<()> {
        if let Some(n) = self.vhost_limit(vhost, "max-queues") {
            let queues = self.vhost(vhost).map_or(0, |v| v.queue_count());
            if queues as u64 >= n {
                return Err(BrokerError::precondition_failed(format!(
                    "cannot declare queue '{queue}': queue limit in vhost '{vhost}' ({n}) is reached"
                )));
            }
        }
        Ok(())
    }

    /// Before a definitions import: the vhost's `max-queues` against the
    /// `adding` queues the document would create there, with RabbitMQ's
    /// text (its limit of 0 reports 0 queues defined; this reports the
    /// count).
    pub fn check_queues_to_import(&self, vhost: &str, adding: usize) -> Result<()> {
        if let Some(n) = self.vhost_limit(vhost, "max-queues") {
            let queues = self.vhost(vhost).map_or(0, |v| v.queue_count());
            if adding > 0 && (queues + adding) as u64 > n {
                return Err(BrokerError::precondition_failed(format!(
                    "Adding {adding} queue(s) to virtual host \"{vhost}\" would exceed the limit of {n} \
                     queue(s).\n\nThis virtual host currently has {queues} queue(s) defined.\n\nImport aborted!"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::limit;

    #[test]
    fn only_non_negative_integers_are_limits() {
        let l = Some(json!({"max-queues": 3, "max-connections": -1, "other": "x"}));
        assert_eq!(limit(l.clone(), "max-queues"), Some(3));
        assert_eq!(limit(l.clone(), "max-connections"), None);
        assert_eq!(limit(l.clone(), "other"), None);
        assert_eq!(limit(l, "max-channels"), None);
        assert_eq!(limit(Some(json!({"max-queues": 0})), "max-queues"), Some(0));
        assert_eq!(limit(None, "max-queues"), None);
    }
}
