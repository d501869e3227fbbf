public import MingusRuntime

extension DataTable {
    /// The alerts domain's tables.
    static let alerts: [DataTable] = [
        DataTable("alerts", "Alerts received: what fired, its labels, state and deduplication",
                  categories: [.security, .operational], lawfulBasis: .legitimateInterests, retention: .policies(["alert"]))
            .columns(.internal, "id fingerprint status severity source dedup_key starts_at ends_at received_count last_received_at suppressed_by created_at updated_at")
            .columns(.confidential, "title description labels"),
        DataTable("alert_events", "Each alert's state changes", categories: [.operational], retention: .policies(["alert"]))
            .columns(.internal, "id alert_id status outcome received_at"),
        DataTable("alert_groups", "Groups of alerts waiting to be notified together", categories: [.operational],
                  retention: .rule("deleted once every alert of the group has resolved and been notified"))
            .columns(.internal, "id route group_key receiver group_labels next_flush_at last_notified_at created_at"),
        DataTable("alert_group_members", "Which alerts a group holds", categories: [.operational],
                  retention: .rule("deleted with the group, or when the alert has resolved and been notified"))
            .columns(.internal, "group_id alert_id notified_status"),
        DataTable("alert_deliveries", "One notification to one receiver on one channel, and its outcome",
                  categories: [.operational, .personal], lawfulBasis: .legitimateInterests, retention: .policies(["alert_delivery"]))
            .columns(.internal, "id group_id alert_ids kind receiver channel status attempts provider_id fallback_of created_at finished_at")
            .columns(.confidential, "target last_error"),
        DataTable("alert_delivery_attempts", "Each attempt of a delivery: timing, HTTP status, error", categories: [.operational],
                  retention: .policies(["alert_delivery"]))
            .columns(.internal, "delivery_id attempt started_at duration_ms outcome http_status")
            .columns(.confidential, "error"),
        DataTable("alert_rate_limits", "Per-target rate limit state (GCRA)", categories: [.operational],
                  retention: .rule("one row per target; overwritten"))
            .columns(.internal, "tat")
            .columns(.confidential, "target"),
        DataTable("alert_silences", "Silences: matchers, period, who made them and why", categories: [.operational],
                  lawfulBasis: .legitimateInterests, retention: .unbounded("expired silences are kept"))
            .columns(.internal, "id matchers starts_at ends_at created_at expired_at")
            .columns(.confidential, "comment created_by"),
    ]
}
