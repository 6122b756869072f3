-- 0002_raft.sql: the state of the metadata Raft group (docs/cluster.md), in
-- the same database as the definitions it orders. A node that never joined a
-- cluster leaves both tables empty.
--
-- The log and the state are openraft's own types, stored as JSON text: the
-- node only writes and reads them back, never queries into them.

-- The Raft log: one row per entry, by index. Entries are appended in order,
-- removed from the end when a new leader overrides them, and from the start
-- once a snapshot covers them.
CREATE TABLE raft_log (
    idx   INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    entry TEXT NOT NULL CHECK (json_valid(entry))
) STRICT;

-- Single values, by key:
--   'vote'        the vote this node granted or holds;
--   'committed'   the last log id known to be committed;
--   'last_purged' the last log id removed from the start of the log;
--   'applied'     the last log id the state machine applied, with the
--                 membership, written in the same transaction as the
--                 definitions the entry changed;
--   'snapshot'    the last snapshot: its meta and the commands that rebuild
--                 the metadata.
CREATE TABLE raft_state (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
) STRICT;

-- In a cluster, the node that holds a durable queue's messages (its home);
-- NULL on a single node.
ALTER TABLE queues ADD COLUMN home TEXT;
