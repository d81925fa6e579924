DROP TABLE IF EXISTS presence_connections;
DROP TABLE IF EXISTS presence_nodes;
