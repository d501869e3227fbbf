public import MingusRuntime

extension DataTable {
    /// The privacy domain's tables: GDPR consents and requests, and HIPAA health data.
    static let privacy: [DataTable] = {
        let proof = DataRetention.unbounded("kept as proof of what was consented, asked and done (GDPR Art. 5(2), 7(1))")
        return [
            DataTable("privacy_purposes", "The purposes of processing, as the privacy notice states them", categories: [.operational],
                      retention: .rule("configuration"))
                .columns(.public, "purpose description legal_basis data_categories recipients retention")
                .columns(.internal, "created_at"),
            DataTable("privacy_policies", "Privacy policy versions and their texts", categories: [.operational],
                      retention: .rule("every version is kept: consents name the version they were given under"))
                .columns(.public, "title body summary")
                .columns(.internal, "kind version status material created_at published_at retired_at")
                .columns(.confidential, "created_by"),
            DataTable("privacy_consent_events", "Each consent given or withdrawn, per subject and purpose",
                      categories: [.personal], lawfulBasis: .legalObligation, retention: proof)
                .columns(.internal, "id source policy_version occurred_at recorded_at")
                .columns(.confidential, "subject_id recorded_by")
                .columns(.restricted, "purpose granted"),
            DataTable("privacy_cookie_categories", "Cookie categories shown to visitors", categories: [.operational],
                      retention: .rule("configuration"))
                .columns(.public, "category title description required position"),
            DataTable("privacy_cookie_consents", "Visitors' cookie choices", categories: [.personal], lawfulBasis: .legalObligation,
                      retention: proof)
                .columns(.internal, "id policy_version source occurred_at recorded_at")
                .columns(.confidential, "visitor_id subject_id recorded_by")
                .columns(.restricted, "categories"),
            DataTable("privacy_requests", "Data subject requests; what the subject wrote, sealed under their own key",
                      categories: [.personal], lawfulBasis: .legalObligation, retention: proof)
                .columns(.internal, """
                    id type status received_at due_at original_due_at extended_at verified_at verification_method completed_at \
                    result created_at updated_at purposes
                    """)
                .columns(.confidential, "subject_id extension_reason verified_by requested_by")
                .column("details_sealed", .highlyRestricted, .subjectKey),
            DataTable("privacy_request_history", "Each step of a request", categories: [.personal], lawfulBasis: .legalObligation,
                      retention: proof)
                .columns(.internal, "id request_id at status kind")
                .columns(.confidential, "actor note"),
            DataTable("privacy_exports", "Access and portability exports: size, checksum, expiry", categories: [.personal],
                      lawfulBasis: .legalObligation, retention: .rule("the file's chunks are deleted when the export expires"))
                .columns(.internal, "request_id status bytes chunks sha256 counts created_at ready_at expires_at downloaded_at"),
            DataTable("privacy_export_chunks", "The encrypted pieces of an export file", categories: [.personal, .financial, .health],
                      lawfulBasis: .legalObligation, retention: .rule("deleted when the export expires"))
                .columns(.internal, "request_id seq key_version")
                .column("sealed", .highlyRestricted, .encrypted(.privacyExport)),
            DataTable("privacy_erasure_steps", "What an erasure did per data type, and why anything was kept", categories: [.personal],
                      lawfulBasis: .legalObligation, retention: proof)
                .columns(.internal, "request_id data_type action rows legal_basis done_at"),
            DataTable("privacy_objections", "Upheld objections: purposes a subject's data may no longer serve", categories: [.personal],
                      lawfulBasis: .legalObligation, retention: proof)
                .columns(.internal, "request_id objected_at")
                .columns(.confidential, "subject_id")
                .columns(.restricted, "purpose"),
            DataTable("privacy_restrictions", "Restrictions of processing in force", categories: [.personal], lawfulBasis: .legalObligation,
                      retention: .rule("deleted when lifted"))
                .columns(.internal, "data_type legal_basis request_id restricted_at")
                .columns(.confidential, "subject_id"),
            DataTable("health_records", "Health expenses and tracking, sealed under the subject's own key",
                      categories: [.health, .personal], lawfulBasis: .consent, retention: .policies(["health_record"]))
                .columns(.internal, "id kind recorded_at")
                .columns(.confidential, "subject_id recorded_by")
                .column("sealed", .highlyRestricted, .subjectKey),
            DataTable("health_relationships", "Who cares for or bills whom: the basis of access to health data",
                      categories: [.health, .personal], lawfulBasis: .contract, retention: .unbounded("relationships are not ended yet"))
                .columns(.internal, "recorded_at")
                .columns(.confidential, "subject_id actor recorded_by")
                .columns(.restricted, "relationship"),
            DataTable("health_break_glass", "Emergency access grants to health data, with reason and review",
                      categories: [.health, .security], lawfulBasis: .vitalInterests, retention: .unbounded("kept as HIPAA access evidence"))
                .columns(.internal, "id granted_at expires_at uses reviewed_at")
                .columns(.confidential, "actor subject_id reviewed_by")
                .columns(.restricted, "reason review_note"),
            DataTable("health_violations", "Access to health data that broke a rule, with risk assessment",
                      categories: [.health, .security], lawfulBasis: .legalObligation, retention: .unbounded("kept as HIPAA access evidence"))
                .columns(.internal, "id rule window_start window_end events records risk risk_level is_breach breach_id status detected_at")
                .columns(.confidential, "actor subjects summary"),
            DataTable("health_deidentify_jobs", "De-identification jobs of large sets: settings, who asked and why, progress",
                      categories: [.health], lawfulBasis: .legalObligation,
                      retention: .rule("the job is kept as evidence; its blocks and cells are deleted when the result expires (7 days)"))
                .columns(.internal, """
                    id status level columns group_by minimum_cell reference_year lines rows_in rows_rejected rows_done blocks blocks_done \
                    groups suppressed_groups error created_at started_at completed_at expires_at
                    """)
                .columns(.confidential, "purpose requested_by"),
            DataTable("health_deidentify_blocks", "The rows of a de-identification job, as uploaded and as de-identified, sealed",
                      categories: [.health, .personal], lawfulBasis: .legalObligation,
                      retention: .rule("input deleted as it is de-identified; output deleted when the result expires (7 days)"))
                .columns(.internal, "job_id stage seq rows key_version")
                .column("sealed", .highlyRestricted, .encrypted(.privacyExport)),
            DataTable("health_deidentify_cells", "Counts per group of aggregated de-identification jobs (after Safe Harbor)",
                      categories: [.health], lawfulBasis: .legalObligation, retention: .rule("deleted when the result expires (7 days)"))
                .columns(.internal, "job_id group_key count"),
            DataTable("health_scan_state", "How far the access scan has read the audit trail", categories: [.operational],
                      retention: .rule("one row"))
                .columns(.internal, "id scanned_to"),
        ]
    }()
}
