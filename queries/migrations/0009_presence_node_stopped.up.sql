-- A node that stopped cleanly (README "Rolling restarts and upgrades") leaves its presence
-- rows to the others' sweep, as a dead node does; stopped tells the sweep that their purge
-- is routine (m4sh_cluster_presence_purged_total and its alert count crashes only).
ALTER TABLE presence_nodes ADD COLUMN stopped boolean NOT NULL DEFAULT false;
