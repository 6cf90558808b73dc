-- dms-cdc source prerequisites on Aurora MySQL, run as the master user.
-- Replace the passwords, store each user in Secrets Manager in the RDS JSON
-- shape ({"username", "password", "host", "port", "dbname"}) and pass the
-- secrets' ARNs to infra/dms/dms.yaml (DMS user) and template.yaml
-- (SourceSecretArn, reader user). The tables are those the mappings read
-- (fixtures/mapping.toml, functions/*/mapping.toml); tests/infra.rs checks
-- that infra/dms/table-mappings.json selects every one of them.

-- Keep binary logs long enough for DMS to catch up after an outage of the
-- task (Aurora purges them otherwise as soon as possible). 24 hours is the
-- minimum DMS asks for; raise it to the longest task outage you must survive.
CALL mysql.rds_set_configuration('binlog retention hours', 24);
CALL mysql.rds_show_configuration;

-- The cluster parameter group must give (infra/source/aurora-mysql-parameters.yaml):
SHOW GLOBAL VARIABLES WHERE Variable_name IN
  ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_value_options', 'binlog_checksum');
-- expected: log_bin ON, binlog_format ROW, binlog_row_image FULL, binlog_row_value_options '' .

-- DMS: reads the binary log, and the tables for their metadata.
CREATE USER IF NOT EXISTS 'dms_cdc_capture'@'%' IDENTIFIED BY 'CHANGE-ME' REQUIRE SSL;
GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'dms_cdc_capture'@'%';
GRANT SELECT ON recipes_src.users          TO 'dms_cdc_capture'@'%';
GRANT SELECT ON recipes_src.recipes        TO 'dms_cdc_capture'@'%';
GRANT SELECT ON recipes_src.recipe_stories TO 'dms_cdc_capture'@'%';
GRANT SELECT ON recipes_src.ingredients    TO 'dms_cdc_capture'@'%';

-- The functions: re-query rows (joins, children, LOBs, lossy values) and
-- find parents by reverse lookups. Read-only, the mapped tables only.
-- (The functions connect without TLS for now: keep them inside the VPC.)
CREATE USER IF NOT EXISTS 'dms_cdc_reader'@'%' IDENTIFIED BY 'CHANGE-ME';
GRANT SELECT ON recipes_src.users          TO 'dms_cdc_reader'@'%';
GRANT SELECT ON recipes_src.recipes        TO 'dms_cdc_reader'@'%';
GRANT SELECT ON recipes_src.recipe_stories TO 'dms_cdc_reader'@'%';
GRANT SELECT ON recipes_src.ingredients    TO 'dms_cdc_reader'@'%';
