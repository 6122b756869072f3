//! `purge_queue` and `delete_queue`.

use warren_api_types::objects::Queue;

use super::client::seg;
use super::{CtlError, Ctx, R};

fn path(c: &Ctx, queue: &str) -> String {
    format!("/api/queues/{}/{}", seg(&c.vhost), seg(queue))
}

fn missing(c: &Ctx, queue: &str) -> CtlError {
    CtlError::data(format!("queue '{queue}' in vhost '{}' does not exist", c.vhost))
}

pub fn purge(c: &Ctx, queue: &str) -> R<()> {
    c.out.info(&format!("Purging queue '{queue}' in vhost '{}' ...", c.vhost));
    c.client.delete(&format!("{}/contents", path(c, queue)), || missing(c, queue).message)
}

pub fn delete(c: &Ctx, queue: &str, if_unused: bool, if_empty: bool) -> R<()> {
    c.out.info(&format!("Deleting queue '{queue}' on vhost '{}' ...", c.vhost));
    let q: Queue = c.client.get_opt(&path(c, queue))?.ok_or_else(|| missing(c, queue))?;
    let messages = q.totals.messages;
    let mut url = path(c, queue);
    let conds: Vec<&str> = [(if_unused, "if-unused=true"), (if_empty, "if-empty=true")]
        .iter()
        .filter(|x| x.0)
        .map(|x| x.1)
        .collect();
    if !conds.is_empty() {
        url = format!("{url}?{}", conds.join("&"));
    }
    c.client.delete(&url, || missing(c, queue).message)?;
    c.out.done(&format!("Queue was successfully deleted with {messages} messages"));
    Ok(())
}
