-- 0020_privacy_objections: objections and restrictions act by themselves once upheld.
-- An objection (Art. 21) names the purposes objected to; once upheld, processing for each of
-- them stops (ConsentLedger.mayProcess answers `objected`) whatever its legal basis, and a
-- consent given for it is withdrawn. A restriction (Art. 18) once upheld restricts all the
-- subject's processing (`privacy_restrictions`, data type `all`) until it is lifted (Art. 18(3)).

ALTER TABLE privacy_requests ADD COLUMN purposes text[];
ALTER TABLE privacy_requests ADD CONSTRAINT privacy_requests_purposes
    CHECK ((type = 'objection') = (purposes IS NOT NULL) AND (purposes IS NULL OR cardinality(purposes) BETWEEN 1 AND 64));

CREATE TABLE privacy_objections (
    subject_id  text        NOT NULL,
    purpose     text        NOT NULL REFERENCES privacy_purposes (purpose),
    request_id  uuid        NOT NULL REFERENCES privacy_requests (id),
    objected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, purpose)
);
