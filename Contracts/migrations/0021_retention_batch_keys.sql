-- 0021_retention_batch_keys: a batch's keys (thousands of them, written once, read on resume
-- and by its deletion) are stored out of line without compression: pglz compressing them was
-- among the database's top functions in a profile of a sweep.
ALTER TABLE retention_archive_batches ALTER COLUMN keys SET STORAGE EXTERNAL;
