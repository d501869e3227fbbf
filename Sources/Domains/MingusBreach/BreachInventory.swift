public import MingusRuntime

extension DataTable {
    /// The breach domain's tables: the breach register, kept as GDPR Art. 33(5) documentation.
    static let breach: [DataTable] = {
        let register = DataRetention.rule("the breach register: kept with its breach (GDPR Art. 33(5) documentation)")
        return [
            DataTable("breaches", "Data breaches: what happened, to whose data, severity and lifecycle",
                      categories: [.security, .personal], lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, """
                    id severity status discovered_at aware_at data_categories data_encrypted key_compromised records_affected \
                    persons_affected jurisdictions persons_by_jurisdiction entity_roles reported_at assessed_at rules_version \
                    status_changed_at created_at updated_at
                    """)
                .columns(.confidential, "reported_by")
                .columns(.restricted, "title description"),
            DataTable("breach_facts", "Facts learned about a breach after its report", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "breach_id occurred_at recorded_at")
                .columns(.confidential, "recorded_by")
                .columns(.restricted, "fact"),
            DataTable("breach_obligations", "What each regime requires of a breach, and by when", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, """
                    id breach_id regime regime_name notify rules_version reason clock clock_started_at deadline target period \
                    status communicated superseded_by met_at created_at updated_at
                    """),
            DataTable("breach_evidence", "Evidence that an obligation was met: what was sent to whom", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "id obligation_id breach_id sent_at recorded_at")
                .columns(.confidential, "sent_to reference recorded_by")
                .columns(.restricted, "what"),
            DataTable("breach_timeline", "Everything that happened to a breach, in order", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "id breach_id at kind")
                .columns(.confidential, "actor")
                .columns(.restricted, "message details"),
            DataTable("breach_recipients", "People to notify of a breach; names and addresses encrypted",
                      categories: [.personal], lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "id breach_id jurisdiction key_version fingerprint_version upload_line uploaded_at state run_id attempts uncertain_resends sent_at updated_at")
                .columns(.confidential, "external_id smtp_reply")
                .column("name_sealed", .restricted, .encrypted(.breachRecipients))
                .column("email_sealed", .restricted, .encrypted(.breachRecipients))
                .column("email_fingerprint", .restricted, .keyedHash(.breachFingerprint)),
            DataTable("breach_notification_runs", "Runs mailing a breach's recipients", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "id breach_id status started_at finished_at chunks")
                .columns(.confidential, "letter requested_by"),
            DataTable("breach_letters", "Letters as rendered for each regime and audience", categories: [.security],
                      lawfulBasis: .legalObligation, retention: register)
                .columns(.internal, "id breach_id run_id obligation_id regime audience rendered_at")
                .columns(.confidential, "subject body"),
        ]
    }()
}
