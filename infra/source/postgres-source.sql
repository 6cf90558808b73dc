-- dms-cdc source prerequisites on a PostgreSQL source: Amazon RDS for
-- PostgreSQL, Aurora PostgreSQL or self-managed. Run with psql, connected to
-- the source database (the DMS stack's SourceDatabaseName), as the master
-- user (RDS, Aurora: it has rds_superuser) or a superuser (self-managed).
-- Replace the passwords, store each user in Secrets Manager in the RDS JSON
-- shape ({"username", "password", "host", "port", "dbname"}) and pass the
-- secrets' ARNs to infra/dms/dms.yaml (SourceEngine aurora-postgresql or
-- postgres; the DMS user) and template.yaml (SourceSecretArn; the reader).
-- The tables are those the mappings read (fixtures/mapping.toml,
-- functions/*/mapping.toml); tests/infra.rs checks that each of them gets
-- REPLICA IDENTITY FULL and both users' SELECT here, and runs this file on a
-- throwaway PostgreSQL server.

-- 1. Logical decoding: server parameters (static ones need a restart).
--   RDS (DB parameter group), Aurora (DB cluster parameter group):
--     rds.logical_replication = 1, then reboot. It sets wal_level = logical
--     and raises max_replication_slots and max_wal_senders.
--   Self-managed (postgresql.conf): wal_level = logical, and
--     max_replication_slots and max_wal_senders of at least one per DMS task
--     beside what else replicates; restart. pg_hba.conf lets the DMS user in
--     from the replication instance's subnets, to the database and for
--     replication connections:
--       hostssl <database>  dms_cdc_capture <subnet CIDR> scram-sha-256
--       hostssl replication dms_cdc_capture <subnet CIDR> scram-sha-256
--   Both: wal_sender_timeout 0 (no timeout) or at least 10000 ms (DMS fails
--     below that); the default 60000 is fine (under 5 minutes, so a Multi-AZ
--     failover of the replication instance is noticed quickly).
--   Optional (PostgreSQL 13 and later): max_slot_wal_keep_size caps the WAL
--     a slot may hold while its task is stopped. Past it PostgreSQL drops the
--     WAL and the task cannot resume: it needs a new slot and the target a
--     new seed. Without it, watch the free storage (and on RDS the
--     OldestReplicationSlotLag metric) while a task is stopped.
SELECT name, setting FROM pg_settings
 WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders',
                'wal_sender_timeout', 'max_slot_wal_keep_size');
-- expected: wal_level logical; max_replication_slots and max_wal_senders at
-- least the number of tasks; wal_sender_timeout 0 or >= 10000.

-- 2. Before images of every column. PostgreSQL logs the old row of an update
-- or a delete only as far as the table's replica identity goes: by default
-- the primary key, and only when the update changes it. DMS then sends an
-- update whose before image is empty, and a delete whose `data` has NULL in
-- every column but the key, which no one can tell from a real NULL (the
-- parent of a deleted child would not be found and rebuilt, nor the old
-- parent of a child that moved). REPLICA IDENTITY FULL logs the whole old
-- row. Set it on every mapped table before the task starts, and on any
-- table added to a mapping later (each ALTER takes a brief ACCESS EXCLUSIVE
-- lock):
ALTER TABLE recipes_src.users          REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.recipes        REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.recipe_stories REPLICA IDENTITY FULL;
ALTER TABLE recipes_src.ingredients    REPLICA IDENTITY FULL;
SELECT c.oid::regclass AS mapped_table, c.relreplident AS replica_identity
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'recipes_src' AND c.relkind IN ('r', 'p');
-- expected: f (full) for each mapped table.

-- 3. The DMS user: logical replication, and the mapped tables' metadata.
-- rds_replication lets it create and read replication slots (self-managed:
-- the REPLICATION attribute instead). The DMS user guide also asks for
-- rds_superuser (self-managed: superuser) when the DMS user is not the
-- master user, and gives the procedure of step 4 for such a user; this file
-- grants the least. Should `aws dms test-connection` or the task's start
-- fail on a permission, grant rds_superuser (or superuser) to
-- dms_cdc_capture rather than giving DMS the master user.
CREATE ROLE dms_cdc_capture LOGIN PASSWORD 'CHANGE-ME';
GRANT rds_replication TO dms_cdc_capture;   -- self-managed: ALTER ROLE dms_cdc_capture REPLICATION;
GRANT USAGE ON SCHEMA recipes_src TO dms_cdc_capture;
GRANT SELECT ON recipes_src.users, recipes_src.recipes, recipes_src.recipe_stories,
  recipes_src.ingredients TO dms_cdc_capture;
-- DMS keeps some transactions open between uses: never end them for it.
ALTER ROLE dms_cdc_capture SET idle_in_transaction_session_timeout = 0;

-- 4. DDL capture and heartbeat, in the schema awsdms (infra/dms/dms.yaml:
-- CaptureDdls true, DdlArtifactsSchema and HeartbeatSchema awsdms). DMS
-- learns of CREATE, ALTER and DROP TABLE through an event trigger that
-- writes each statement to awsdms.awsdms_ddl_audit, and sends them as
-- control records (a DDL that drops or renames a column a mapping reads
-- stops its table's records, README "Failure semantics"). Only the master
-- user can create an event trigger, so the objects are made here, as the DMS
-- guide's procedure for a user other than the master makes them: the table
-- and the trigger's function owned by the DMS user, the trigger by the
-- master user. DMS creates its heartbeat table (awsdms_heartbeat) in the
-- same schema when the task starts.
CREATE SCHEMA IF NOT EXISTS awsdms;
GRANT USAGE, CREATE ON SCHEMA awsdms TO dms_cdc_capture;
GRANT dms_cdc_capture TO CURRENT_USER;   -- to create the objects as the DMS user
SET ROLE dms_cdc_capture;
CREATE TABLE IF NOT EXISTS awsdms.awsdms_ddl_audit (
  c_key     bigserial PRIMARY KEY,
  c_time    timestamp,     -- informational
  c_user    varchar(64),   -- informational: current_user
  c_txn     varchar(16),   -- informational: current transaction
  c_tag     varchar(24),   -- CREATE TABLE, ALTER TABLE, DROP TABLE or CREATE TABLE AS
  c_oid     integer,       -- for future use: TG_OBJECTID
  c_name    varchar(64),   -- for future use: TG_OBJECTNAME
  c_schema  varchar(64),   -- current_schema (the schema of unqualified names)
  c_ddlqry  text           -- the DDL statement
);
CREATE OR REPLACE FUNCTION awsdms.awsdms_intercept_ddl()
  RETURNS event_trigger
  LANGUAGE plpgsql
  SECURITY DEFINER
AS $$
  declare _qry text;
BEGIN
  if (tg_tag = 'CREATE TABLE' or tg_tag = 'ALTER TABLE' or tg_tag = 'DROP TABLE'
      or tg_tag = 'CREATE TABLE AS') then
    SELECT pg_catalog.current_query() into _qry;
    insert into awsdms.awsdms_ddl_audit
    values (default, current_timestamp, current_user,
            cast(pg_catalog.txid_current() as varchar(16)), tg_tag, 0, '',
            current_schema, _qry);
    delete from awsdms.awsdms_ddl_audit;
  end if;
END;
$$;
RESET ROLE;
REVOKE dms_cdc_capture FROM CURRENT_USER;
CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end
  EXECUTE PROCEDURE awsdms.awsdms_intercept_ddl();
-- To remove DMS from this database later: DROP EVENT TRIGGER
-- awsdms_intercept_ddl; DROP SCHEMA awsdms CASCADE; then drop the slot (5).

-- 5. The task's replication slot. Without the stack's PostgresSlotName, DMS
-- creates a slot (plugin test_decoding) when the task first starts, and CDC
-- starts there. To start CDC at a known point instead (the stack's
-- CdcStartPosition), create the slot first, before the target is seeded,
-- with the plugin the endpoint uses, one slot per task; its LSN is the
-- CdcStartPosition, its name the PostgresSlotName:
--   SELECT slot_name, lsn FROM pg_create_logical_replication_slot('dms_cdc_recipes', 'test_decoding');
-- A slot keeps WAL until its task reads it, also while the task is stopped
-- and after it is deleted: drop the slot of a task you delete
--   SELECT pg_drop_replication_slot('dms_cdc_recipes');
SELECT slot_name, plugin, active, restart_lsn, confirmed_flush_lsn
  FROM pg_replication_slots;

-- 6. The functions: re-query rows (joins, children, LOB and TOASTed values
-- left out of images) and find parents by reverse lookups, in one
-- REPEATABLE READ, READ ONLY transaction per batch. Read-only, the mapped
-- tables only.
CREATE ROLE dms_cdc_reader LOGIN PASSWORD 'CHANGE-ME';
GRANT USAGE ON SCHEMA recipes_src TO dms_cdc_reader;
GRANT SELECT ON recipes_src.users, recipes_src.recipes, recipes_src.recipe_stories,
  recipes_src.ingredients TO dms_cdc_reader;
ALTER ROLE dms_cdc_reader SET default_transaction_read_only = on;
