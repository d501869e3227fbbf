-- 0001_foundation: the first migration, with what every later one may rely on.
--
-- Enables pgcrypto (gen_random_bytes, digest, crypt) for later migrations. Domain tables come
-- in later files. Safe to run on a database that already has the extension.
-- Applied by `Migrator` inside a transaction together with its row in mingus_schema_migrations;
-- do not add BEGIN/COMMIT here.

CREATE EXTENSION IF NOT EXISTS pgcrypto;
