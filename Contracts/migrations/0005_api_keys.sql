-- 0005_api_keys: API keys of upstream services, stored only as hashes.
--
-- A key reads `mgk_<id>_<secret>`: the id finds the row, the secret is checked against
-- secret_hash = sha256(secret) in constant time. The secret is 256 random bits, so a plain
-- SHA-256 is enough (no password stretching needed). Roles: payments:write, payments:read,
-- records:write, records:read, audit:read, admin (admin holds every role).

CREATE TABLE mingus_api_keys (
    id           text        PRIMARY KEY,
    name         text        NOT NULL,
    secret_hash  bytea       NOT NULL,
    roles        text[]      NOT NULL CHECK (roles <@ ARRAY['payments:write', 'payments:read', 'records:write',
                                                            'records:read', 'audit:read', 'admin']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
