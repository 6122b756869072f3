-- 0001_definitions.sql: the durable definitions of one Warren node.
--
-- Applied by sqlx (`sqlx::migrate!` in server/src/store/definitions), which
-- records it in `_sqlx_migrations` with a checksum of this text. Never edit
-- this file once released: a changed checksum makes every existing database
-- refuse to open. Schema changes go in 0002_..., 0003_... .
--
-- Choices that apply to every table:
--
-- * Only durable entities are stored. Transient exchanges, transient and
--   exclusive queues, and bindings that touch them live in memory only, as in
--   RabbitMQ: they do not survive a restart.
-- * The predeclared exchanges ('' and amq.direct, amq.fanout, amq.topic,
--   amq.headers, amq.match, amq.rabbitmq.trace) are not stored: every vhost
--   recreates them. They still count as durable ends of a binding.
-- * Tables are STRICT, so a value of the wrong type is an error instead of
--   being stored silently as whatever SQLite's type affinity makes of it.
-- * Every row that belongs to a vhost references vhosts(name) with ON DELETE
--   CASCADE, and every row that belongs to a user references users(name) the
--   same way: deleting a vhost or a user is one DELETE and cannot leave
--   orphans. This needs `PRAGMA foreign_keys = ON`, which the store sets on
--   every connection. Where the foreign key column is not the first column of
--   an index, an index is added so that the cascade does not scan the table.
-- * Booleans are INTEGER 0/1, enforced with CHECK.
-- * AMQP argument tables (`arguments`) are BLOBs holding the AMQP 0-9-1 wire
--   encoding of the field table, length prefix included. JSON would lose the
--   exact AMQP types (a signed 32-bit int would come back as a 64-bit one,
--   a byte array as a string), and clients see those types. The encoder
--   writes keys in sorted order, so equal tables have equal bytes, which the
--   uniqueness rule of `bindings` relies on.
-- * Management values that the broker reads whole and never queries into
--   (tags, policy definitions, parameter values, limits) are JSON text,
--   checked with json_valid.

-- Virtual hosts. `tags` is a JSON array of strings. `default_queue_type` is
-- NULL when the vhost uses the node's default (classic).
CREATE TABLE vhosts (
    name               TEXT NOT NULL PRIMARY KEY,
    description        TEXT NOT NULL DEFAULT '',
    tags               TEXT NOT NULL DEFAULT '[]'
                       CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    default_queue_type TEXT
) STRICT;

-- Users. `password_hash` is an argon2id PHC string, or a base64 RabbitMQ
-- SHA-256 hash imported from RabbitMQ (`hashing_algorithm` says which), or ''
-- for a user that cannot log in with a password. `tags` is a JSON array.
CREATE TABLE users (
    name              TEXT NOT NULL PRIMARY KEY,
    password_hash     TEXT NOT NULL,
    hashing_algorithm TEXT NOT NULL,
    tags              TEXT NOT NULL DEFAULT '[]'
                      CHECK (json_valid(tags) AND json_type(tags) = 'array')
) STRICT;

-- A user's configure/write/read regular expressions in one vhost.
CREATE TABLE permissions (
    vhost     TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    user      TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    configure TEXT NOT NULL,
    write     TEXT NOT NULL,
    read      TEXT NOT NULL,
    PRIMARY KEY (vhost, user)
) STRICT;
CREATE INDEX permissions_by_user ON permissions (user);

-- Topic permissions: write/read patterns on routing keys, per topic exchange.
CREATE TABLE topic_permissions (
    vhost    TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    user     TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    exchange TEXT NOT NULL,
    write    TEXT NOT NULL,
    read     TEXT NOT NULL,
    PRIMARY KEY (vhost, user, exchange)
) STRICT;
CREATE INDEX topic_permissions_by_user ON topic_permissions (user);

-- Durable exchanges (all stored exchanges are durable, so there is no
-- `durable` column). `type` has no CHECK: plugin exchange types can then be
-- added without rebuilding the table; the broker validates it when loading.
CREATE TABLE exchanges (
    vhost       TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    auto_delete INTEGER NOT NULL CHECK (auto_delete IN (0, 1)),
    internal    INTEGER NOT NULL CHECK (internal IN (0, 1)),
    arguments   BLOB NOT NULL,
    PRIMARY KEY (vhost, name)
) STRICT;

-- Durable, non-exclusive queues.
--
-- `id` names the queue in the message store, which keys stored messages by
-- it. AUTOINCREMENT makes SQLite keep the highest id ever handed out (in
-- sqlite_sequence, updated in the same transaction), so an id is never
-- reused, not even after the queue with the highest id is deleted: a new
-- queue can then never pick up messages of a deleted queue with the same
-- name that the message store has not collected yet. The CHECK keeps ids in
-- u32, the width the message store uses.
CREATE TABLE queues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT
                CHECK (id BETWEEN 1 AND 4294967295),
    vhost       TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    auto_delete INTEGER NOT NULL CHECK (auto_delete IN (0, 1)),
    arguments   BLOB NOT NULL,
    UNIQUE (vhost, name)
) STRICT;

-- Bindings whose source and destination are both durable.
--
-- There is no foreign key to exchanges or queues: the source may be a
-- predeclared exchange (not stored) and the destination is either a queue or
-- an exchange. The store deletes an exchange's or a queue's bindings in the
-- same transaction as the exchange or queue.
--
-- A binding is identified by all of its fields, arguments included (two
-- bindings that differ only in their arguments are distinct in AMQP), hence
-- the UNIQUE over every column: the same binding is never stored twice.
CREATE TABLE bindings (
    vhost            TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    source           TEXT NOT NULL,
    destination_kind TEXT NOT NULL CHECK (destination_kind IN ('queue', 'exchange')),
    destination      TEXT NOT NULL,
    routing_key      TEXT NOT NULL,
    arguments        BLOB NOT NULL,
    UNIQUE (vhost, source, destination_kind, destination, routing_key, arguments)
) STRICT;
-- Deleting a queue or an exchange deletes the bindings leading to it.
CREATE INDEX bindings_by_destination ON bindings (vhost, destination_kind, destination);

-- Policies. `apply_to` is RabbitMQ's (queues, exchanges, all, ...);
-- `definition` is the JSON object of keys such as max-length or ha-mode.
CREATE TABLE policies (
    vhost      TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    apply_to   TEXT NOT NULL,
    definition TEXT NOT NULL
               CHECK (json_valid(definition) AND json_type(definition) = 'object'),
    priority   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vhost, name)
) STRICT;

-- Operator policies: the same shape, set by operators to cap what user
-- policies may ask for. A separate table because the two namespaces are
-- separate in RabbitMQ (a policy and an operator policy may share a name).
CREATE TABLE operator_policies (
    vhost      TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    apply_to   TEXT NOT NULL,
    definition TEXT NOT NULL
               CHECK (json_valid(definition) AND json_type(definition) = 'object'),
    priority   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vhost, name)
) STRICT;

-- Per-vhost runtime parameters (federation-upstream, shovel, ...): any JSON.
CREATE TABLE parameters (
    component TEXT NOT NULL,
    vhost     TEXT NOT NULL REFERENCES vhosts (name) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL CHECK (json_valid(value)),
    PRIMARY KEY (component, vhost, name)
) STRICT;
CREATE INDEX parameters_by_vhost ON parameters (vhost);

-- Node-wide parameters (cluster_name, ...): any JSON.
CREATE TABLE global_parameters (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
) STRICT;

-- Limits, as the JSON object RabbitMQ uses ({"max-connections": 10, ...}).
CREATE TABLE vhost_limits (
    vhost TEXT NOT NULL PRIMARY KEY REFERENCES vhosts (name) ON DELETE CASCADE,
    value TEXT NOT NULL CHECK (json_valid(value) AND json_type(value) = 'object')
) STRICT;

CREATE TABLE user_limits (
    user  TEXT NOT NULL PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
    value TEXT NOT NULL CHECK (json_valid(value) AND json_type(value) = 'object')
) STRICT;
