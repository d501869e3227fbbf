public import Foundation
public import MingusPostgres

/// Records of processing activities (GDPR Art. 30(1)), generated from the data inventory: the
/// purposes table (consent purposes and their recipients), the retention policies of the
/// financial data, and the data the cluster itself holds.
public struct ProcessingRecords: Codable, Sendable {
    /// One processing activity.
    public struct Activity: Codable, Sendable {
        public var name: String
        public var purpose: String
        public var legalBasis: String
        public var dataSubjects: [String]
        public var dataCategories: [String]
        public var recipients: [String]
        public var thirdCountryTransfers: String
        public var retention: String
        public var safeguards: [String]
    }

    public var controller: String
    public var generatedAt: Date
    public var activities: [Activity]

    static let safeguards = [
        "AES-256-GCM encryption at rest under versioned data keys wrapped by a key-encrypting key",
        "per-subject data keys, destroyed on erasure (crypto-erase, NIST SP 800-88)",
        "card numbers stored only as token, masked form, keyed fingerprint and ciphertext (PCI DSS 3.4, 3.5)",
        "tamper-evident audit trail with signed checkpoints",
        "role-based API keys; TLS 1.2+ in transit",
    ]

    /// Builds the records from the database's inventory.
    public static func build(on database: PostgresClient) async throws -> ProcessingRecords {
        var activities = try await database.query("""
            SELECT purpose, description, legal_basis, data_categories, recipients, retention FROM privacy_purposes ORDER BY purpose
            """).map { row in
            Activity(name: try row.decode(String.self, at: 0), purpose: try row.decode(String.self, at: 1),
                     legalBasis: try row.decode(String.self, at: 2), dataSubjects: ["customers"],
                     dataCategories: try row.decode([String].self, at: 3), recipients: try row.decode([String].self, at: 4),
                     thirdCountryTransfers: "none", retention: try row.decode(String.self, at: 5), safeguards: safeguards)
        }
        activities += try await database.query("""
            SELECT data_type, retention::text, compliance_standard, legal_basis FROM retention_policies ORDER BY data_type
            """).map { row in
            let type = try row.decode(String.self, at: 0)
            return Activity(name: "financial_\(type)", purpose: "Keeping \(type.replacingOccurrences(of: "_", with: " ")) records",
                            legalBasis: "legal_obligation (\(try row.decode(String.self, at: 2)): \(try row.decode(String.self, at: 3)))",
                            dataSubjects: ["customers"], dataCategories: type == "payment" ? ["card_data (masked)", "financial_records"] : ["financial_records"],
                            recipients: ["auditors", "regulators on request"], thirdCountryTransfers: "none",
                            retention: try row.decode(String.self, at: 1), safeguards: safeguards)
        }
        activities.append(Activity(name: "payments", purpose: "Processing card payments", legalBasis: "contract",
                                   dataSubjects: ["customers", "cardholders"], dataCategories: ["card_data", "contact_info"],
                                   recipients: ["payment processor", "card networks"], thirdCountryTransfers: "none",
                                   retention: "7 years (SOX)", safeguards: safeguards))
        activities.append(Activity(name: "security_monitoring", purpose: "Audit trail, logs and alerts for security and compliance",
                                   legalBasis: "legal_obligation", dataSubjects: ["customers", "employees"],
                                   dataCategories: ["identifiers", "usage_data"], recipients: ["on-call staff"], thirdCountryTransfers: "none",
                                   retention: "12 months at least (PCI DSS 10.5.1)", safeguards: safeguards))
        return ProcessingRecords(controller: "Mingus", generatedAt: Date(), activities: activities)
    }

    /// The records as a Markdown document.
    public func markdown() -> String {
        var text = "# Records of processing activities (GDPR Art. 30)\n\nController: \(controller)\n\n"
        for activity in activities {
            text += """
                ## \(activity.name)

                - Purpose: \(activity.purpose)
                - Legal basis: \(activity.legalBasis)
                - Data subjects: \(activity.dataSubjects.joined(separator: ", "))
                - Data categories: \(activity.dataCategories.joined(separator: ", "))
                - Recipients: \(activity.recipients.isEmpty ? "none" : activity.recipients.joined(separator: ", "))
                - Transfers to third countries: \(activity.thirdCountryTransfers)
                - Retention: \(activity.retention)
                - Safeguards: \(activity.safeguards.joined(separator: "; "))


                """
        }
        return text
    }
}

/// `GET /api/gdpr/dashboard`: requests by type and state, due and overdue, the median time to
/// complete, and the consent rate of each purpose (given among subjects with a recorded choice).
public struct PrivacyDashboard: Codable, Sendable {
    /// Requests of one type in one status.
    public struct Count: Codable, Sendable {
        public var type: String
        public var status: String
        public var count: Int64
    }
    /// Current choices for one purpose: given, withdrawn, and the share given (nil without any).
    public struct ConsentRate: Codable, Sendable {
        public var purpose: String
        public var given: Int64
        public var withdrawn: Int64
        public var rate: Double?
    }

    public var requests: [Count]
    public var open: Int64
    public var dueWithinWeek: Int64
    public var overdue: Int64
    public var medianCompletionHours: Double?
    public var consentRates: [ConsentRate]

    /// The figures as of now.
    public static func build(on database: PostgresClient) async throws -> PrivacyDashboard {
        let counts = try await database.query("SELECT type, status, count(*) FROM privacy_requests GROUP BY type, status ORDER BY type, status").map { row in
            Count(type: try row.decode(String.self, at: 0), status: try row.decode(String.self, at: 1), count: try row.decode(Int64.self, at: 2))
        }
        let due = try await PrivacyRequestFigures.read(on: database)
        let rates = try await database.query("""
            SELECT p.purpose, count(*) FILTER (WHERE c.granted), count(*) FILTER (WHERE NOT c.granted)
            FROM privacy_purposes p
            LEFT JOIN (SELECT DISTINCT ON (subject_id, purpose) purpose, granted FROM privacy_consent_events ORDER BY subject_id, purpose, id DESC) c
              ON c.purpose = p.purpose
            GROUP BY p.purpose ORDER BY p.purpose
            """).map { row in
            let given = try row.decode(Int64.self, at: 1), withdrawn = try row.decode(Int64.self, at: 2)
            return ConsentRate(purpose: try row.decode(String.self, at: 0), given: given, withdrawn: withdrawn,
                               rate: given + withdrawn == 0 ? nil : Double(given) / Double(given + withdrawn))
        }
        return PrivacyDashboard(requests: counts, open: due.open, dueWithinWeek: due.dueWithinWeek, overdue: due.overdue,
                                medianCompletionHours: due.medianCompletionHours, consentRates: rates)
    }
}

/// Data-subject requests not yet completed or rejected: how many, due within a week, overdue;
/// and the median hours completed ones took.
public struct PrivacyRequestFigures: Sendable {
    public var open: Int64
    public var dueWithinWeek: Int64
    public var overdue: Int64
    public var medianCompletionHours: Double?

    /// The figures as of now.
    public static func read(on database: PostgresClient) async throws -> PrivacyRequestFigures {
        let row = try await database.query("""
            SELECT count(*), count(*) FILTER (WHERE due_at >= now() AND due_at < now() + interval '7 days'), count(*) FILTER (WHERE due_at < now()),
                   (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - received_at) / 3600)
                    FROM privacy_requests WHERE status = 'completed')
            FROM privacy_requests WHERE status NOT IN ('completed', 'rejected')
            """)[0]
        return PrivacyRequestFigures(open: try row.decode(Int64.self, at: 0), dueWithinWeek: try row.decode(Int64.self, at: 1),
                                     overdue: try row.decode(Int64.self, at: 2), medianCompletionHours: try row.decode(Double?.self, at: 3))
    }
}
