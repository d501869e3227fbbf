import Foundation
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import Testing
import TestSupport

private func json(_ bytes: [UInt8]?) -> [String: Any] {
    bytes.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] } ?? [:]
}

private func rows(_ export: [String: Any], _ table: String) -> [[String: Any]] {
    ((export["tables"] as? [String: Any])?[table] as? [String: Any])?["rows"] as? [[String: Any]] ?? []
}

/// Seeds one subject's data in every domain through the gateway (payments and records, processed
/// by the payments worker) and, for alerts, straight into the table.
private func seed(_ privacy: PrivacyCluster, subject: String, marker: String) async throws -> (payments: Int, records: [String]) {
    let year = Calendar(identifier: .gregorian).component(.year, from: Date()) + 2
    for amount in [1200, 3400] {
        let paid = try await privacy.request("POST", "/api/financial/payment/process", [
            "card_number": "4242424242424242", "expiry_month": 12, "expiry_year": year, "cvv": "123", "cardholder_name": "Alex Doe",
            "amount": amount, "currency": "EUR", "merchant_id": "shop-1", "metadata": ["user_id": subject, "order": "\(marker)-\(amount)"],
        ])
        try #require(paid.status == 202, "\(paid.raw)")
    }
    var records: [String] = []
    for (type, note) in [("statement", "\(marker) invoice"), ("account_profile", "\(marker) profile")] {
        let stored = try await privacy.request("POST", "/api/financial/records/store", [
            "user_id": subject, "record_type": type, "classification": "confidential", "content": ["note": note],
        ])
        try #require(stored.status == 202, "\(stored.raw)")
        records.append(note)
    }
    for (purpose, granted) in [("marketing_email", true), ("analytics", false)] {
        let consent = try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": subject, "purpose": purpose, "granted": granted, "source": "app"])
        try #require(consent.status == 201, "\(consent.raw)")
    }
    try #require(try await privacy.request("POST", "/api/gdpr/cookies/consents", [
        "visitor_id": "visitor-\(marker)", "subject_id": subject, "categories": ["functional"], "source": "banner",
    ]).status == 201)
    try await privacy.cluster.database.execute("""
        INSERT INTO alerts (id, fingerprint, status, severity, title, labels, source, starts_at, last_received_at)
        VALUES (\(UUID()), \("fp-\(marker)"), 'firing', 'low', \("Unusual login \(marker)"), jsonb_build_object('subject_id', \(subject)::text),
                'test', now(), now())
        """)
    // Wait until the payments worker has decided both payments and stored both records.
    try #require(try await eventually {
        let counts = try await privacy.cluster.database.query("""
            SELECT (SELECT count(*) FROM payment_data WHERE metadata->>'user_id' = \(subject) AND status <> 'pending'),
                   (SELECT count(*) FROM financial_records WHERE user_id = \(subject))
            """)[0]
        return try counts.decode(Int64.self, at: 0) == 2 && counts.decode(Int64.self, at: 1) == 2
    }, "\(privacy.cluster.output)")
    return (2, records)
}

@Suite("GDPR data: exports from every domain, erasure, crypto-erase, resuming", .serialized)
struct PrivacyDataTests {
    @Test("an export holds all of the subject's data and nothing of a similar subject; erasure then export shows only retained data; destroyed keys make sealed rows unreadable")
    func exportEraseExport() async throws {
        try await PrivacyCluster.with(payments: true) { privacy in
            _ = try await privacy.publishPolicy()
            _ = try await privacy.publishPolicy(kind: "cookie")
            let a = try await seed(privacy, subject: "user-alice", marker: "ALPHA")
            _ = try await seed(privacy, subject: "user-alicia", marker: "BRAVO")

            let access = try await privacy.fileAndVerify("user-alice", type: "access", details: "Everything, please: ALPHA-DETAILS")
            let done = try await privacy.completed(access)
            #expect((done["result"] as? [String: String])?["payments"] == "2 rows", "\(done)")
            let files = try await privacy.archive(access)
            #expect(Set(files.keys).isSuperset(of: ["README.txt", "schema.json", "export.json", "csv/payments.csv", "csv/financial_records.csv",
                                                    "csv/consents.csv", "csv/alerts.csv", "csv/audit_events.csv"]), "\(files.keys.sorted())")
            let export = json(files["export.json"])
            #expect(export["subject_id"] as? String == "user-alice")
            let payments = rows(export, "payments")
            #expect(payments.count == a.payments)
            #expect(payments.allSatisfy { $0["masked_pan"] as? String == "************4242" })
            #expect(Set(rows(export, "financial_records").compactMap { ($0["content"] as? [String: Any])?["note"] as? String }) == Set(a.records))
            #expect(rows(export, "consents").map { $0["state"] as? String } == ["given", "withdrawn"])
            #expect(rows(export, "cookie_consents").count == 1)
            #expect(rows(export, "alerts").map { $0["title"] as? String } == ["Unusual login ALPHA"])
            #expect(rows(export, "audit_events").contains { $0["action"] as? String == "record.stored" })
            #expect(rows(export, "privacy_requests").count == 1)
            let csv = String(decoding: files["csv/payments.csv"] ?? [], as: UTF8.self)
            #expect(csv.split(separator: "\r\n").count == 1 + a.payments)
            // Nothing of the other subject, and never a card number, in any file.
            let everything = files.values.reduce(into: [UInt8]()) { $0 += $1 }
            let text = String(decoding: everything, as: UTF8.self)
            #expect(!text.contains("user-alicia") && !text.contains("BRAVO"))
            #expect(!text.contains("4242424242424242"))
            let found = everything.withUnsafeBytes { DigitScanner(["4242424242424242"]).scan($0) }
            #expect(found.isEmpty)
            // At rest the archive was sealed chunks; after the download they are gone.
            let chunks = try await privacy.cluster.database.query("SELECT count(*) FROM privacy_export_chunks")[0].decode(Int64.self, at: 0)
            #expect(chunks == 0)

            // Erasure.
            let erasure = try await privacy.fileAndVerify("user-alice", type: "erasure")
            let erased = try await privacy.completed(erasure)
            let result = try #require(erased["result"] as? [String: String])
            #expect(result["financial_records/account_profile"]?.hasPrefix("deleted 1") == true, "\(result)")
            #expect(result["financial_records/statement"]?.hasPrefix("restricted 1 (SOX") == true, "\(result)")
            #expect(result["payments"]?.hasPrefix("restricted 2 (SOX") == true, "\(result)")
            #expect(result["consents"] == "anonymised 2")
            #expect(result["cookie_consents"] == "anonymised 1")
            #expect(result["subject_key"] == "crypto_erased 1")
            // The key is destroyed: the access request's sealed details no longer open.
            let sealed = try #require(try await privacy.cluster.database.query("""
                SELECT details_sealed FROM privacy_requests WHERE id = \(UUID(uuidString: access)!)
                """)[0].decode([UInt8]?.self, at: 0))
            await #expect(throws: SubjectKeyErased.self) {
                _ = try await SubjectKeys(kek: privacy.cluster.kek, database: privacy.cluster.database)
                    .open(sealed, subject: "user-alice", context: "privacy_requests/\(access)/details")
            }
            let accessView = try await privacy.request("GET", "/api/gdpr/requests/\(access)").body
            #expect(accessView["details_erased"] as? Bool == true && accessView["details"] == nil)
            // Processing of what is kept is restricted.
            #expect(try await ConsentLedger.mayProcess("user-alice", for: "marketing_email", on: privacy.cluster.database).reason == "restricted")
            // The audit trail says an erasure happened and what it did, without the erased data.
            let audit = try await privacy.cluster.database.query("""
                SELECT details::text FROM audit_events WHERE action = 'privacy.erasure.complete' AND resource = \("privacy/requests/\(erasure)")
                """)
            #expect(audit.count == 1)
            let details = try audit.first?.decode(String.self, at: 0) ?? ""
            #expect(!details.contains("user-alice") && !details.contains("ALPHA"), "\(details)")

            // A later access request shows only what must be retained.
            let later = try await privacy.fileAndVerify("user-alice", type: "portability")
            _ = try await privacy.completed(later)
            let after = json(try await privacy.archive(later)["export.json"])
            #expect(rows(after, "payments").count == 2)
            #expect(rows(after, "financial_records").compactMap { $0["record_type"] as? String } == ["statement"])
            #expect(rows(after, "consents").isEmpty && rows(after, "cookie_consents").isEmpty)
            #expect(Set(rows(after, "restrictions").compactMap { $0["data_type"] as? String })
                    .isSuperset(of: ["payments", "financial_records/statement", "alerts", "audit_events"]))
            // The other subject is untouched.
            #expect(try await ConsentLedger.mayProcess("user-alicia", for: "marketing_email", on: privacy.cluster.database).allowed)
            #expect(try await privacy.cluster.database.query("SELECT count(*) FROM financial_records WHERE user_id = 'user-alicia'")[0]
                .decode(Int64.self, at: 0) == 2)

            // The worker counts what it completed: two exports (access, portability) and one erasure.
            let worker = try #require(privacy.cluster.workers.first { $0.executable == "mingus-privacy-worker" })
            let port = try #require(try await loggedPort(worker, message: "health and metrics server listening"))
            let metrics = try await httpRequest("http://127.0.0.1:\(port)/metrics").body
            func value(_ prefix: String) -> Double? {
                metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
            }
            #expect(value(#"mingus_privacy_requests_completed_total{type="export"}"#) == 2, "\(metrics)")
            #expect(value(#"mingus_privacy_requests_completed_total{type="erasure"}"#) == 1, "\(metrics)")
            #expect(value("mingus_privacy_export_duration_seconds_count") == 2, "\(metrics)")
        }
    }

    @Test("an erasure job killed midway resumes where it stopped: finished steps are not done again")
    func erasureResumes() async throws {
        try await PrivacyCluster.with { privacy in
            let db = privacy.cluster.database
            let subject = "user-kill"
            _ = try await privacy.publishPolicy()
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": subject, "purpose": "analytics", "granted": true, "source": "app"])
            let record = UUID()
            try await db.execute("""
                INSERT INTO financial_records (record_id, user_id, record_type, classification, compliance_standard, content_ciphertext,
                                               content_key_version, requested_by, retention_until)
                VALUES (\(record), \(subject), 'account_profile', 'internal', 'GLBA', '\\x00'::bytea, 1, 'test', now() + interval '1 year')
                """)
            // Hold the record's row: the erasure stops at its financial records step.
            let blocker = try await PostgresConnection.connect(configuration: PostgresConfiguration(url: privacy.cluster.databaseURL, poolSize: 1))
            try await blocker.execute("BEGIN")
            _ = try await blocker.query("SELECT 1 FROM financial_records WHERE record_id = \(record) FOR UPDATE")
            let id = try await privacy.fileAndVerify(subject, type: "erasure")
            func steps() async throws -> [String: Date] {
                Dictionary(uniqueKeysWithValues: try await db.query("""
                    SELECT data_type, done_at FROM privacy_erasure_steps WHERE request_id = \(UUID(uuidString: id)!)
                    """).map { (try $0.decode(String.self, at: 0), try $0.decode(Date.self, at: 1)) })
            }
            try #require(try await eventually { try await Set(steps().keys) == ["consents", "cookie_consents"] }, "\(privacy.cluster.output)")
            let before = try await steps()
            let worker = try #require(privacy.cluster.workers.first)
            try await worker.kill9()
            try await blocker.execute("COMMIT")
            await blocker.close()
            try privacy.cluster.startWorker("mingus-privacy-worker")
            let done = try await privacy.completed(id)
            let after = try await steps()
            #expect(after["consents"] == before["consents"] && after["cookie_consents"] == before["cookie_consents"])
            #expect(Set(after.keys).isSuperset(of: ["consents", "cookie_consents", "financial_records/account_profile", "payments", "subject_key"]))
            #expect((done["result"] as? [String: String])?["financial_records/account_profile"] == "deleted 1")
            #expect(try await db.query("SELECT count(*) FROM financial_records WHERE user_id = \(subject)")[0].decode(Int64.self, at: 0) == 0)
        }
    }
}
