ALTER TABLE presence_connections DROP COLUMN since;
