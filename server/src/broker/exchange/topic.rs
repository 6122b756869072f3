//! Topic routing with a trie of binding-key words.
//!
//! Binding keys are split on `.` into words and stored along a path of the
//! trie; `*` matches exactly one word and `#` zero or more. Routing walks the
//! trie with the message's words, so its cost depends on the key's length and
//! the number of wildcard branches, not on the number of bindings.

use rustc_hash::{FxHashMap, FxHashSet};

use super::Destination;

#[derive(Default)]
pub struct TopicTrie {
    root: Node,
}

#[derive(Default)]
struct Node {
    children: FxHashMap<Box<str>, Node>,
    dests: Vec<Destination>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.dests.is_empty()
    }
}

/// RabbitMQ splits the empty key into no words at all.
fn words(key: &str) -> impl Iterator<Item = &str> {
    let mut it = key.split('.');
    if key.is_empty() {
        it.next();
    }
    it
}

impl TopicTrie {
    pub fn add(&mut self, key: &str, dest: Destination) {
        let mut node = &mut self.root;
        for w in words(key) {
            node = node.children.entry(w.into()).or_default();
        }
        node.dests.push(dest);
    }

    pub fn remove(&mut self, key: &str, dest: &Destination) {
        let path: Vec<&str> = words(key).collect();
        Self::remove_at(&mut self.root, &path, dest);
    }

    /// Removes one destination at the end of `path`, pruning emptied nodes.
    fn remove_at(node: &mut Node, path: &[&str], dest: &Destination) {
        match path.split_first() {
            None => {
                if let Some(pos) = node.dests.iter().position(|d| d.same(dest)) {
                    node.dests.remove(pos);
                }
            }
            Some((first, rest)) => {
                if let Some(child) = node.children.get_mut(*first) {
                    Self::remove_at(child, rest, dest);
                    if child.is_empty() {
                        node.children.remove(*first);
                    }
                }
            }
        }
    }

    /// Appends every destination whose binding key matches `key`. A
    /// destination reached through several bindings appears several times;
    /// the caller deduplicates.
    pub fn route(&self, key: &str, out: &mut Vec<Destination>) {
        let ws: Vec<&str> = words(key).collect();
        Self::walk(&self.root, &ws, &mut FxHashSet::default(), out);
    }

    /// `walked` holds the `#` nodes already walked with a given number of
    /// words left. Walking one twice finds the same destinations again, and
    /// binding keys like `#.#.#.*.#` would otherwise make a long routing key
    /// take exponential time (found by the `topic` fuzz target); with it a
    /// key costs at most (words × `#` nodes) walks of the trie. The set
    /// allocates only when a `#` is met.
    fn walk(
        node: &Node,
        ws: &[&str],
        walked: &mut FxHashSet<(*const Node, usize)>,
        out: &mut Vec<Destination>,
    ) {
        if let Some(hash) = node.children.get("#") {
            // `#` consumes zero or more words: try every suffix.
            for i in 0..=ws.len() {
                if walked.insert((hash as *const Node, ws.len() - i)) {
                    Self::walk(hash, &ws[i..], walked, out);
                }
            }
        }
        match ws.split_first() {
            None => out.extend(node.dests.iter().cloned()),
            Some((w, rest)) => {
                if let Some(child) = node.children.get(*w) {
                    Self::walk(child, rest, walked, out);
                }
                if let Some(star) = node.children.get("*") {
                    Self::walk(star, rest, walked, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::exchange::Exchange;
    use crate::definitions::ExchangeType;
    use amq_protocol::types::FieldTable;
    use std::sync::Arc;

    fn dest(name: &str) -> Destination {
        Destination::Exchange(Arc::new(Exchange::new(
            name.into(),
            "/".into(),
            ExchangeType::Fanout,
            false,
            false,
            false,
            FieldTable::default(),
        )))
    }

    fn matches(trie: &TopicTrie, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        trie.route(key, &mut out);
        let mut names: Vec<String> = out.iter().map(|d| d.name().to_string()).collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn tutorial_patterns() {
        let mut t = TopicTrie::default();
        t.add("lqz.#", dest("hash"));
        t.add("lqz.*", dest("star"));
        assert_eq!(matches(&t, "lqz.handsome"), ["hash", "star"]);
        assert_eq!(matches(&t, "lqz.handsome.xx"), ["hash"]);
        assert_eq!(matches(&t, "lqz"), ["hash"]);
        assert!(matches(&t, "other.handsome").is_empty());
    }

    #[test]
    fn wildcards_in_every_position() {
        let mut t = TopicTrie::default();
        t.add("#", dest("all"));
        t.add("*.orange.*", dest("q1"));
        t.add("*.*.rabbit", dest("q2"));
        t.add("lazy.#", dest("q3"));
        t.add("a.#.z", dest("q4"));
        t.add("", dest("empty"));
        assert_eq!(matches(&t, "quick.orange.rabbit"), ["all", "q1", "q2"]);
        assert_eq!(matches(&t, "lazy.orange.elephant"), ["all", "q1", "q3"]);
        assert_eq!(matches(&t, "quick.orange.fox"), ["all", "q1"]);
        assert_eq!(matches(&t, "lazy.brown.fox"), ["all", "q3"]);
        assert_eq!(matches(&t, "lazy.pink.rabbit"), ["all", "q2", "q3"]);
        assert_eq!(matches(&t, "quick.brown.fox"), ["all"]);
        assert_eq!(matches(&t, "orange"), ["all"]);
        assert_eq!(matches(&t, "quick.orange.male.rabbit"), ["all"]);
        assert_eq!(matches(&t, "lazy"), ["all", "q3"]);
        assert_eq!(matches(&t, "a.z"), ["all", "q4"]);
        assert_eq!(matches(&t, "a.b.c.z"), ["all", "q4"]);
        assert_eq!(matches(&t, ""), ["all", "empty"]);
        assert_eq!(matches(&t, "a..z"), ["all", "q4"]);
    }

    #[test]
    fn removal_prunes_and_keeps_others() {
        let mut t = TopicTrie::default();
        let a = dest("a");
        let b = dest("b");
        t.add("x.*.y", a.clone());
        t.add("x.*.y", b.clone());
        t.remove("x.*.y", &a);
        assert_eq!(matches(&t, "x.1.y"), ["b"]);
        t.remove("x.*.y", &b);
        assert!(matches(&t, "x.1.y").is_empty());
        assert!(t.root.is_empty());
    }
}
