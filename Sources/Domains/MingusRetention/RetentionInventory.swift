public import MingusRuntime

extension DataTable {
    /// The retention domain's tables: policies, holds, and the record of every sweep.
    static let retention: [DataTable] = {
        let record = DataRetention.unbounded("the record of what was archived and deleted is kept")
        return [
            DataTable("retention_policies", "How long each data type is kept, and why", categories: [.operational],
                      retention: .rule("one row per data type; earlier versions in retention_policy_history"))
                .columns(.internal, "data_type retention compliance_standard legal_basis action version updated_at")
                .columns(.confidential, "updated_by"),
            DataTable("retention_policy_history", "Every earlier version of every policy", categories: [.operational], retention: record)
                .columns(.internal, "data_type version retention compliance_standard legal_basis action changed_at")
                .columns(.confidential, "changed_by"),
            DataTable("retention_legal_holds", "Legal holds: what may not be deleted, why, and who placed and released them",
                      categories: [.personal, .operational], lawfulBasis: .legalObligation, retention: record)
                .columns(.internal, "id scope resource_id data_type created_from created_to placed_at released_at")
                .columns(.confidential, "subject_id reason placed_by released_by release_reason"),
            DataTable("retention_sweeps", "Sweeps requested and their state", categories: [.operational], retention: record)
                .columns(.internal, "id data_types dry_run status error created_at started_at finished_at")
                .columns(.confidential, "requested_by"),
            DataTable("retention_sweep_results", "What each sweep found, archived and deleted per data type", categories: [.operational],
                      retention: record)
                .columns(.internal, "sweep_id data_type action eligible held archived deleted bytes duration_ms finished"),
            DataTable("retention_archive_batches", "Batches of rows archived then deleted: their keys, file and checksum",
                      categories: [.operational], retention: record)
                .columns(.internal, "id sweep_id data_type keys status file sha256 rows bytes key_from key_to deleted created_at archived_at deleted_at cut_stream cut_seq"),
            DataTable("retention_audit_cuts", "Where the audit trail was cut, under which checkpoint", categories: [.security], retention: record)
                .columns(.internal, "stream seq checkpoint_id sweep_id status created_at"),
        ]
    }()
}
