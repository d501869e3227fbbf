public import MingusRuntime

extension DataTable {
    /// The compliance domain's tables: runs and results of the automated checks, manual
    /// assessments, and the score's daily history.
    static let compliance: [DataTable] = {
        let evidence = DataRetention.unbounded("kept as evidence for assessors")
        return [
            DataTable("compliance_check_runs", "Runs of the automated checks: who asked, when, how many failed",
                      categories: [.security], retention: evidence)
                .columns(.internal, "id started_at finished_at checks failed")
                .columns(.confidential, "requested_by"),
            DataTable("compliance_check_results", "Every check's result with its evidence (counts, tables, ids; never card data)",
                      categories: [.security], retention: evidence)
                .columns(.internal, "run_id check_name passed summary evidence checked_at valid_until duration_ms"),
            DataTable("compliance_check_latest", "The newest result of each check", categories: [.security],
                      retention: .rule("one row per check"))
                .columns(.internal, "check_name run_id passed summary evidence checked_at valid_until"),
            DataTable("compliance_assessments", "Manual assessments of PCI DSS requirements by named assessors",
                      categories: [.security], retention: evidence)
                .columns(.internal, "requirement_id status assessed_at")
                .columns(.confidential, "assessor notes evidence recorded_by"),
            DataTable("compliance_score_snapshots", "The compliance score once a day, for its trend", categories: [.security],
                      retention: evidence)
                .columns(.internal, "day score assessed_weight parts taken_at"),
        ]
    }()
}
