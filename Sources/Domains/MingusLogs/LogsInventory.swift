public import MingusRuntime

extension DataTable {
    /// The logs domain's tables: lines with card numbers and secrets redacted at intake, their
    /// templates, and the counts anomaly detection reads.
    static let logs: [DataTable] = {
        let counts = DataRetention.unbounded("per-minute counts are not pruned yet")
        return [
            DataTable("log_lines", "Application log lines, redacted at intake, each naming its template",
                      categories: [.operational, .security], lawfulBasis: .legitimateInterests, retention: .policies(["log_line"]))
                .columns(.internal, "at received_at service level template_id job_id seq")
                .column("variables", .confidential, .redacted)
                .column("message", .confidential, .redacted)
                .column("raw", .confidential, .redacted),
            DataTable("log_templates", "Templates mined from the lines, with one redacted example", categories: [.operational],
                      retention: .unbounded("templates are kept while any line may name them"))
                .columns(.internal, "id template line_count first_seen last_seen merged_into updated_at announce")
                .column("example", .confidential, .redacted),
            DataTable("log_anomalies", "Anomalies found: new templates, rate changes, security rules that fired",
                      categories: [.security], lawfulBasis: .legitimateInterests, retention: .unbounded("anomalies are kept"))
                .columns(.internal, "id kind service template_id minute lines summary dedup_key detected_at rule")
                .columns(.confidential, "source"),
            DataTable("log_template_minutes", "Lines per template, service and minute", categories: [.operational], retention: counts)
                .columns(.internal, "template_id service minute lines"),
            DataTable("log_service_minutes", "Error lines per service and minute", categories: [.operational], retention: counts)
                .columns(.internal, "service minute errors"),
            DataTable("log_rule_minutes", "Lines matching a security rule per source and minute", categories: [.security],
                      lawfulBasis: .legitimateInterests, retention: counts)
                .columns(.internal, "rule service minute lines")
                .columns(.confidential, "source"),
            DataTable("log_template_rates", "Each template's rate baseline (EWMA) per service", categories: [.operational],
                      retention: .rule("baselines that fall to nearly zero are deleted"))
                .columns(.internal, "template_id service mean variance minutes last_minute"),
            DataTable("log_rate_cursor", "The last minute whose rates were evaluated", categories: [.operational], retention: .rule("one row"))
                .columns(.internal, "only_row minute"),
        ]
    }()
}
