-- 0014_subject_keys: one data key per data subject (a user id), for data that must be erasable
-- by destroying its key (Cryptographic Erase, NIST SP 800-88 Rev. 1): GDPR erasure and
-- retention's crypto_erase. Keys are stored wrapped (AES-256-GCM) by the key-encrypting key, bound
-- to their subject. Erasing a subject overwrites its wrapped key with NULL and keeps the row as a
-- tombstone, so that no new key is ever made for that subject and the erasure stays on record.

CREATE TABLE mingus_subject_keys (
    subject_id   text        PRIMARY KEY CHECK (length(subject_id) BETWEEN 1 AND 256),
    wrapped      bytea,
    kek_id       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    erased_by    text,
    erase_reason text,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (kek_id IS NULL))
);

-- A destroyed key never comes back.
CREATE FUNCTION mingus_subject_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.erased_at IS NOT NULL OR NEW.wrapped IS DISTINCT FROM OLD.wrapped AND NEW.wrapped IS NOT NULL THEN
        RAISE EXCEPTION 'subject keys are only ever erased: % of the key of % is refused', TG_OP, OLD.subject_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER mingus_subject_keys_erase_only BEFORE UPDATE OR DELETE ON mingus_subject_keys
    FOR EACH ROW EXECUTE FUNCTION mingus_subject_keys_guard();
