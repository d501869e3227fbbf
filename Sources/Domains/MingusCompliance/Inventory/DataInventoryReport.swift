public import Foundation
public import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// A table of the inventory as a domain declared it, with the domain's name.
public struct InventoryTable: Sendable {
    public var domain: String
    public var table: DataTable

    public init(domain: String, table: DataTable) {
        self.domain = domain
        self.table = table
    }
}

/// `GET /api/financial/customer/data/inventory`: which personal and financial data the system
/// holds, where (table, column), how it is classified and protected, why it is held, for how
/// long, and about how many rows there are.
///
/// The declarations come from the domains (``DomainDescription/dataInventory``); the row counts
/// are PostgreSQL's own estimates (`pg_class.reltuples`, kept by autovacuum and `ANALYZE`), so the
/// inventory costs one catalog query and one read of the retention policies however large the
/// tables grow. A table never analyzed has no estimate (`null`).
public struct DataInventoryReport: Codable, Sendable {
    /// One column.
    public struct Column: Codable, Sendable {
        public var name: String
        public var classification: DataClassification
        public var protection: String
        public var keyPurpose: String?
    }

    /// A retention policy as it stands now.
    public struct Policy: Codable, Sendable {
        public var dataType: String
        /// `7 years`, `90 days`; nil when the policy is not in the database.
        public var retention: String?
        public var action: String?
        public var legalBasis: String?
    }

    /// How long a table's rows are kept: `policy`, `rule` or `unbounded`.
    public struct Retention: Codable, Sendable {
        public var kind: String
        public var policies: [Policy]?
        public var rule: String?
    }

    /// One table.
    public struct Table: Codable, Sendable {
        public var name: String
        public var domain: String
        public var summary: String
        public var categories: [DataCategory]
        public var classification: DataClassification
        public var lawfulBasis: LawfulBasis?
        public var retention: Retention
        public var rowEstimate: Int64?
        public var columns: [Column]
    }

    /// Totals over the tables shown.
    public struct Summary: Codable, Sendable {
        public var tables: Int
        public var columns: Int
        public var columnsByClassification: [String: Int]
        /// Columns classified `restricted` or `highly_restricted`, and how many of them are
        /// encrypted, hashed, masked, tokenized or redacted.
        public var sensitiveColumns: Int
        public var sensitiveColumnsProtected: Int
        /// Tables whose rows nothing deletes yet.
        public var unboundedTables: [String]
    }

    public var generatedAt: Date
    public var summary: Summary
    public var tables: [Table]

    /// The inventory of `tables`, with retention policies and row estimates read from `database`.
    /// `domain` and `minimum` narrow it to one domain's tables and to the columns classified at
    /// least `minimum` (tables left without a column are left out).
    public static func build(_ tables: [InventoryTable], domain: String? = nil, minimum: DataClassification = .public,
                             on database: PostgresClient) async throws -> DataInventoryReport {
        let facts = try await InventoryFacts.read(on: database)
        var shown: [Table] = []
        for entry in tables where domain == nil || entry.domain == domain {
            let declared = entry.table
            let columns = declared.columns.filter { $0.classification >= minimum }.map {
                Column(name: $0.name, classification: $0.classification, protection: $0.protection.name, keyPurpose: $0.protection.keyPurpose?.rawValue)
            }
            guard !columns.isEmpty else { continue }
            let retention: Retention = switch declared.retention {
            case .policies(let names):
                Retention(kind: "policy", policies: names.map { name in
                    let policy = facts.policies[name]
                    return Policy(dataType: name, retention: policy?.retention, action: policy?.action, legalBasis: policy?.legalBasis)
                })
            case .rule(let rule): Retention(kind: "rule", rule: rule)
            case .unbounded(let note): Retention(kind: "unbounded", rule: note)
            }
            shown.append(Table(name: declared.name, domain: entry.domain, summary: declared.summary, categories: declared.categories,
                               classification: declared.classification, lawfulBasis: declared.lawfulBasis, retention: retention,
                               rowEstimate: facts.rowEstimates[declared.name] ?? nil, columns: columns))
        }
        let columns = shown.flatMap(\.columns)
        let sensitive = columns.filter { $0.classification >= .restricted }
        let summary = Summary(
            tables: shown.count, columns: columns.count,
            columnsByClassification: Dictionary(grouping: columns, by: \.classification.rawValue).mapValues(\.count),
            sensitiveColumns: sensitive.count, sensitiveColumnsProtected: sensitive.filter { $0.protection != "none" }.count,
            unboundedTables: shown.filter { $0.retention.kind == "unbounded" }.map(\.name))
        return DataInventoryReport(generatedAt: Date(), summary: summary, tables: shown)
    }
}

/// What the inventory reads from the database: the retention policies in force and each table's
/// estimated row count.
enum InventoryFacts {
    struct Policy {
        var retention: String
        var action: String
        var legalBasis: String
    }

    static func read(on database: PostgresClient) async throws -> (policies: [String: Policy], rowEstimates: [String: Int64?]) {
        try await database.withConnection { db in
            var policies: [String: Policy] = [:]
            for row in try await db.query("SELECT data_type, retention::text, action, legal_basis FROM retention_policies") {
                policies[try row.decode(String.self, at: 0)] = Policy(retention: try row.decode(String.self, at: 1), action: try row.decode(String.self, at: 2),
                                                                      legalBasis: try row.decode(String.self, at: 3))
            }
            // A partitioned table's rows are its partitions' rows; -1 means never analyzed.
            var estimates: [String: Int64?] = [:]
            for row in try await db.query("""
                SELECT c.relname,
                       CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(k.reltuples, 0))::bigint FROM pg_inherits i
                                                       JOIN pg_class k ON k.oid = i.inhrelid WHERE i.inhparent = c.oid)
                            WHEN c.reltuples < 0 THEN NULL
                            ELSE c.reltuples::bigint END
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                """) {
                estimates[try row.decode(String.self, at: 0)] = try row.decode(Int64?.self, at: 1)
            }
            return (policies, estimates)
        }
    }

    /// Every table of the current schema (partitions left out) with its column names: what the
    /// inventory's declarations must match.
    static func schema(on database: PostgresClient) async throws -> [String: Set<String>] {
        var schema: [String: Set<String>] = [:]
        for row in try await database.query("""
            SELECT c.relname, a.attname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            """) {
            schema[try row.decode(String.self, at: 0), default: []].insert(try row.decode(String.self, at: 1))
        }
        return schema
    }
}

extension DataInventory {
    /// What differs between the declared `tables` and the schema of `database`
    /// (``DataInventory/problems(_:schema:)``); empty when every column is classified.
    public static func problems(_ tables: [InventoryTable], on database: PostgresClient) async throws -> [String] {
        problems(tables.map(\.table), schema: try await InventoryFacts.schema(on: database))
    }
}
