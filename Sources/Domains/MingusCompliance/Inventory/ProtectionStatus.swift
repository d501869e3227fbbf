public import Foundation
public import MingusPostgres
import MingusPrivacy
import MingusRuntime

/// `GET /api/financial/customer/protection/status`: how well customers' data is protected now.
///
/// - `data`: the inventory's sensitive (`restricted`, `highly_restricted`) columns and how many
///   are stored encrypted, hashed, masked, tokenized or redacted;
/// - `keys`: each data key purpose's current version and its age; `subject_keys`: data subjects'
///   own keys alive and crypto-erased;
/// - `requests`: data-subject requests open, due within a week, and overdue;
/// - `findings`, each `high` or `medium`: overdue requests (high), tables of personal data that
///   nothing deletes (medium, GDPR Art. 5(1)(e) storage limitation). `status` is `at_risk` with a
///   high finding, `attention` with only medium ones, else `protected`.
public struct ProtectionStatus: Codable, Sendable {
    /// Something that needs an operator's attention.
    public struct Finding: Codable, Sendable {
        public var severity: String
        public var code: String
        public var message: String
        public var tables: [String]?
    }

    /// Sensitive columns and their protection.
    public struct DataFigures: Codable, Sendable {
        public var tables: Int
        public var columns: Int
        public var sensitiveColumns: Int
        public var sensitiveColumnsProtected: Int
        public var highlyRestrictedColumns: Int
        public var highlyRestrictedColumnsProtected: Int
    }

    /// The current version of one purpose's data key.
    public struct DataKey: Codable, Sendable {
        public var purpose: String
        public var version: Int
        public var createdAt: Date
        public var ageDays: Int
    }

    /// Data subjects' own keys.
    public struct SubjectKeyFigures: Codable, Sendable {
        public var active: Int64
        public var erased: Int64
    }

    /// Data-subject requests not yet completed or rejected.
    public struct RequestFigures: Codable, Sendable {
        public var open: Int64
        public var dueWithinWeek: Int64
        public var overdue: Int64
    }

    public var status: String
    public var checkedAt: Date
    public var findings: [Finding]
    public var data: DataFigures
    public var keys: [DataKey]
    public var subjectKeys: SubjectKeyFigures
    public var requests: RequestFigures

    /// The status of the data that `tables` declare, read from `database` now.
    public static func build(_ tables: [InventoryTable], on database: PostgresClient) async throws -> ProtectionStatus {
        let now = Date()
        let columns = tables.flatMap(\.table.columns)
        let sensitive = columns.filter { $0.classification >= .restricted }
        let highly = columns.filter { $0.classification == .highlyRestricted }
        let data = DataFigures(tables: tables.count, columns: columns.count, sensitiveColumns: sensitive.count,
                               sensitiveColumnsProtected: sensitive.filter(\.protection.isProtected).count,
                               highlyRestrictedColumns: highly.count, highlyRestrictedColumnsProtected: highly.filter(\.protection.isProtected).count)
        let (keys, subjectKeys) = try await database.withConnection { db in
            let keys = try await db.query("""
                SELECT DISTINCT ON (purpose) purpose, version, created_at FROM mingus_data_keys
                WHERE retired_at IS NULL ORDER BY purpose, version DESC
                """).map { row in
                let created = try row.decode(Date.self, at: 2)
                return DataKey(purpose: try row.decode(String.self, at: 0), version: try row.decode(Int.self, at: 1), createdAt: created,
                               ageDays: Int(now.timeIntervalSince(created) / 86_400))
            }
            let subjects = try await db.query("SELECT count(*) FILTER (WHERE erased_at IS NULL), count(*) FILTER (WHERE erased_at IS NOT NULL) FROM mingus_subject_keys")[0]
            return (keys, SubjectKeyFigures(active: try subjects.decode(Int64.self, at: 0), erased: try subjects.decode(Int64.self, at: 1)))
        }
        let privacy = try await PrivacyRequestFigures.read(on: database)
        let requests = RequestFigures(open: privacy.open, dueWithinWeek: privacy.dueWithinWeek, overdue: privacy.overdue)

        var findings: [Finding] = []
        if requests.overdue > 0 {
            findings.append(Finding(severity: "high", code: "requests_overdue",
                                    message: "\(requests.overdue) data-subject requests are past their due date (GDPR Art. 12(3))"))
        }
        let kept = tables.filter { $0.table.categories.contains(.personal) && $0.table.retention.isUnbounded }.map(\.table.name)
        if !kept.isEmpty {
            findings.append(Finding(severity: "medium", code: "personal_data_without_deletion",
                                    message: "\(kept.count) tables of personal data have no deletion rule (GDPR Art. 5(1)(e))", tables: kept))
        }
        let status = findings.contains { $0.severity == "high" } ? "at_risk" : findings.isEmpty ? "protected" : "attention"
        return ProtectionStatus(status: status, checkedAt: now, findings: findings, data: data, keys: keys, subjectKeys: subjectKeys,
                                requests: requests)
    }
}

extension DataRetention {
    /// Whether nothing deletes the rows yet.
    var isUnbounded: Bool {
        if case .unbounded = self { true } else { false }
    }
}
