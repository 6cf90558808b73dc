-- dms-cdc target prerequisites (MySQL target, e.g. the mysql-target
-- function), run as an administrator of the target. Store the user in Secrets
-- Manager in the RDS JSON shape and pass the ARN as MysqlTargetSecretArn.
--
-- The function upserts and deletes the mapped target tables and keeps its
-- bookkeeping tables (dms_cdc_checkpoint, dms_cdc_quarantine) in the same
-- database; it creates them at its first batch (CREATE TABLE IF NOT EXISTS),
-- hence CREATE. SELECT ... FOR UPDATE on the checkpoint needs UPDATE.
-- TLS: MysqlTargetSslMode and MysqlTargetSslCa (README, TLS).
CREATE USER IF NOT EXISTS 'dms_cdc_writer'@'%' IDENTIFIED BY 'CHANGE-ME';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON global.* TO 'dms_cdc_writer'@'%';
