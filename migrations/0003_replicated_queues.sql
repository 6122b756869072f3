-- 0003_replicated_queues.sql: what a cluster keeps about a replicated queue.
--
-- Its incarnation: which declaration of its name a durable queue is: the index of the metadata log entry that created it
-- (docs/cluster.md, "Replicated queues"). A queue deleted and declared again
-- under the same name gets another, and with it another replicated group,
-- so that a member that was down across both drops the old group's log
-- instead of mixing it into the new queue. 0 on a single node and for
-- queues stored before this column existed.
ALTER TABLE queues ADD COLUMN incarnation INTEGER NOT NULL DEFAULT 0 CHECK (incarnation >= 0);

-- In a cluster, the members an operator chose for a replicated queue
-- (add_member, delete_member, grow, shrink) as a JSON array of node names;
-- NULL when its arguments or policy choose them.
ALTER TABLE queues ADD COLUMN members TEXT CHECK (members IS NULL OR json_valid(members));
