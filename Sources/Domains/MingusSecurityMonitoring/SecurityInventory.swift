public import MingusRuntime

extension DataTable {
    /// The security monitoring domain's tables.
    static let securityMonitoring: [DataTable] = [
        DataTable("security_incidents", "Security incidents: what, how severe, who handles them",
                  categories: [.security], lawfulBasis: .legitimateInterests, retention: .unbounded("incidents are kept"))
            .columns(.internal, """
                id kind dedup_key severity status playbook detections opened_at last_detected_at acknowledged_at \
                contained_at closed_at escalated updated_at service
                """)
            .columns(.confidential, "title summary assignee source_address api_key opened_by"),
        DataTable("security_incident_events", "Everything that happened to an incident", categories: [.security],
                  lawfulBasis: .legitimateInterests, retention: .unbounded("kept with the incident"))
            .columns(.internal, "id incident_id at kind")
            .columns(.confidential, "actor detail"),
        DataTable("security_incident_steps", "The playbook steps of an incident, approvals and results", categories: [.security],
                  lawfulBasis: .legitimateInterests, retention: .unbounded("kept with the incident"))
            .columns(.internal, "incident_id position name action requires_approval status approved_at done_at result")
            .columns(.confidential, "approved_by parameters"),
        DataTable("security_detections", "Detections that opened or joined incidents", categories: [.security],
                  lawfulBasis: .legitimateInterests, retention: .unbounded("detections are not pruned yet"))
            .columns(.internal, "id kind severity incident_id detected_at received_at")
            .columns(.confidential, "dedup_key"),
        DataTable("gateway_blocked_addresses", "Client addresses the gateway refuses, why and until when",
                  categories: [.security, .personal], lawfulBasis: .legitimateInterests, retention: .unbounded("expired blocks are kept"))
            .columns(.internal, "incident_id blocked_at expires_at")
            .columns(.confidential, "address reason blocked_by"),
        DataTable("do_droplets", "Monitored DigitalOcean droplets", categories: [.operational], retention: .rule("one row per droplet"))
            .columns(.internal, "id name status region tags listed_at last_sample_at"),
        DataTable("do_samples", "Droplet metric samples", categories: [.operational], retention: .policies(["droplet_sample"]))
            .columns(.internal, "droplet_id metric at value"),
        DataTable("do_rule_states", "Which droplet rules are firing", categories: [.operational], retention: .rule("deleted when a rule clears"))
            .columns(.internal, "rule droplet_id since alert_id summary"),
        DataTable("do_poll_health", "The DigitalOcean poller's last runs and errors", categories: [.operational], retention: .rule("one row"))
            .columns(.internal, "name last_run_at last_success_at last_error last_error_at droplets samples duration_ms"),
    ]
}
