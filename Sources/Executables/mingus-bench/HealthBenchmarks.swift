import Foundation
import Logging
import MingusCore
import MingusHTTP
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import TestSupport

/// Health record reads through the one read path (`HealthAccess`: relationship and break-glass
/// lookup, subject key, minimum-necessary filtering, one audit event per read group-committed
/// as the gateway does), and Safe Harbor de-identification of generated rows.
enum HealthBenchmarks {
    struct Figures {
        var reads: Int
        var readsPerSecond: Double
        var auditEvents: Int64
        var rows: Int
        var rowsPerSecond: Double
    }

    static func run(subjects: Int, reads: Int, rows: Int, concurrency: Int) async throws -> Figures {
        let (_, url) = try await TestEnvironment.createDatabase()
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: min(concurrency, 16)))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let keyPath = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("keys")).appendingPathComponent("financial.key")
        let kek = try KeyEncryptingKey.create(at: keyPath)
        let subjectKeys = SubjectKeys(kek: kek, database: database)
        // Three expense records per subject, sealed under each subject's key.
        let keys = try await subjectKeys.keys((0..<subjects).map { "bench-\($0)" })
        try await database.withTransaction { db in
            for (subject, key) in keys {
                for n in 0..<3 {
                    _ = try await HealthStore.insert(id: UUID(), subject: subject, kind: "expense",
                                                     fields: HealthFields(serviceDate: "2026-11-0\(n + 1)", amountMinor: Int64(1000 + n), currency: "USD",
                                                                          codes: ["Z00.00", "99213"], provider: "Dr. Example", notes: "visit \(n)"),
                                                     actor: "bench", key: key, on: db)
                }
            }
        }
        let access = HealthAccess(database: database, subjectKeys: subjectKeys, policy: try FieldAccessPolicy.parse(FieldAccessPolicy.defaultText))
        let audit = AuditBatcher(database: database, component: "gateway", logger: Logger(label: "bench"))
        let caller = try await APIKeyStore(database: database).create(name: "bench-billing", roles: [.hipaaRead, .hipaaBilling]).identity

        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    var n = lane
                    while n < reads {
                        let read = try await access.read(subject: "bench-\(n % subjects)", id: nil, caller: caller, why: "payment", origin: "127.0.0.1")
                        precondition(read.records.count == 3 && read.records[0].notes == nil)
                        for event in read.events { try await audit.append(event) }
                        n += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        let readSeconds = (ContinuousClock.now - started).inSeconds
        let events = try await database.query("SELECT count(*) FROM audit_events WHERE action = 'hipaa.record.read'")[0].decode(Int64.self, at: 0)

        // Safe Harbor over rows of every identifier kind.
        let columns: [String: IdentifierKind] = ["name": .name, "street": .geographic, "zip": .zip, "admitted": .date, "born": .birthDate, "age": .age,
                                                 "phone": .phone, "email": .email, "ssn": .ssn, "mrn": .medicalRecord, "account": .account,
                                                 "device": .device, "ip": .ip, "amount": .keep, "code": .keep]
        let input: [[String: JSONValue]] = (0..<1000).map { n in
            ["name": .string("Person \(n)"), "street": .string("\(n) Elm Street"), "zip": .string(String(format: "%05d", (n * 97) % 100_000)),
             "admitted": .string("2025-03-\(10 + n % 18)"), "born": .string("19\(20 + n % 80)-01-01"), "age": .integer(Int64(n % 100)),
             "phone": .string("212-555-\(1000 + n)"), "email": .string("p\(n)@example.com"), "ssn": .string("123-45-\(1000 + n)"),
             "mrn": .string("MRN-\(n)"), "account": .string("ACC-\(n)"), "device": .string("SN-\(n)"), "ip": .string("192.0.2.\(n % 255)"),
             "amount": .integer(Int64(n)), "code": .string("Z00.00")]
        }
        let deidentifier = Deidentifier(columns: columns, referenceYear: 2026)
        var kept = 0
        let safeHarborStarted = ContinuousClock.now
        for n in 0..<rows {
            kept &+= deidentifier.anonymize(input[n % input.count]).count
        }
        let safeHarborSeconds = (ContinuousClock.now - safeHarborStarted).inSeconds
        precondition(kept == rows * 6)
        await database.shutdown()
        return Figures(reads: reads, readsPerSecond: Double(reads) / readSeconds, auditEvents: events, rows: rows,
                       rowsPerSecond: Double(rows) / safeHarborSeconds)
    }
}
