-- dms-cdc source prerequisites on a PostgreSQL source (RDS / Aurora
-- PostgreSQL or self-managed), run as the master user in the source
-- database. As infra/source/grants.sql does for MySQL: store each user in
-- Secrets Manager in the RDS JSON shape and pass the secrets to the DMS
-- endpoint and to the functions.
--
-- The parameter group (or postgresql.conf) must give logical decoding:
--   RDS / Aurora: rds.logical_replication = 1 (a reboot), which sets
--                 wal_level = logical;
--   self-managed: wal_level = logical, max_replication_slots >= 1 per task,
--                 max_wal_senders >= 1 per task.
-- DMS creates its replication slot (plugin test_decoding or pglogical) when
-- the task starts; a stopped task keeps its slot, which holds WAL back:
-- drop the slot of a task you delete (SELECT pg_drop_replication_slot(...)).
SHOW wal_level;          -- expected: logical

-- Before images of every column: without REPLICA IDENTITY FULL an update's
-- before image holds the primary key only (enough to find the row, not to
-- skip an update that changes nothing the mapping reads, nor to rebuild the
-- parents of a child that moved to another parent). The tables the mappings read:
ALTER TABLE recipes_src.users          REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.recipes        REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.recipe_stories REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.ingredients    REPLICA IDENTITY FULL;

-- DMS: logical replication and the tables' metadata.
CREATE ROLE dms_cdc_capture LOGIN PASSWORD 'CHANGE-ME';
GRANT rds_replication TO dms_cdc_capture;   -- self-managed: ALTER ROLE dms_cdc_capture REPLICATION;
GRANT USAGE ON SCHEMA recipes_src TO dms_cdc_capture;
GRANT SELECT ON recipes_src.users, recipes_src.recipes, recipes_src.recipe_stories,
  recipes_src.ingredients TO dms_cdc_capture;

-- The functions: re-query rows (joins, children, TOASTed values left out of
-- images) and find parents by reverse lookups, in one REPEATABLE READ,
-- READ ONLY transaction per batch. Read-only, the mapped tables only.
CREATE ROLE dms_cdc_reader LOGIN PASSWORD 'CHANGE-ME';
GRANT USAGE ON SCHEMA recipes_src TO dms_cdc_reader;
GRANT SELECT ON recipes_src.users, recipes_src.recipes, recipes_src.recipe_stories,
  recipes_src.ingredients TO dms_cdc_reader;
ALTER ROLE dms_cdc_reader SET default_transaction_read_only = on;
