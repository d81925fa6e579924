ALTER TABLE presence_nodes DROP COLUMN stopped;
