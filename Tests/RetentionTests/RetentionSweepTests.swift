import MingusHTTP
import Crypto
import Foundation
@testable import MingusRetention
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

/// A gateway and a retention worker on a database, broker virtual host and archive folder of their own.
struct RetentionCluster {
    let cluster: Cluster
    let key: String
    let archive: URL
    let signingKey: URL

    static func with(batchSize: Int = 500, maxRowsPerSecond: Int = 0, _ body: (RetentionCluster) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("retention"))
        let archive = folder.appendingPathComponent("archive")
        let signingKey = folder.appendingPathComponent("audit-signing.key")
        try AuditSigner.createKey(at: signingKey)
        let cluster = try await Cluster.start(environment: [
            "MINGUS_ARCHIVE_DIR": archive.path, "MINGUS_AUDIT_SIGNING_KEY_PATH": signingKey.path,
            "MINGUS_RETENTION_SCHEDULE": "off", "MINGUS_RETENTION_BATCH_SIZE": "\(batchSize)",
            "MINGUS_RETENTION_MAX_ROWS_PER_SECOND": "\(maxRowsPerSecond)",
        ], privateBroker: true)
        let retention = RetentionCluster(cluster: cluster, key: try await cluster.key([.retentionWrite, .retentionRead]).key,
                                         archive: archive, signingKey: signingKey)
        do {
            let worker = try cluster.startWorker("mingus-retention-worker")
            // Running before it stops: a SIGTERM that comes while a process is still starting
            // ends it by the signal's default action, before it can drain and exit 0.
            try #require(try await eventually { worker.output.contains("consuming") }, "\(worker.output.suffix(2000))")
            try await body(retention)
        } catch {
            _ = try? await cluster.stop()
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        try await cluster.stopCleanly()
    }

    var database: PostgresClient { cluster.database }

    func request(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(
            cluster.base + "/api/financial/retention" + path, method: method,
            headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
            body: try body.map { try JSONSerialization.data(withJSONObject: $0) })
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    /// Starts a sweep and waits until it completed; returns its results by data type.
    func sweep(_ body: [String: Any] = [:]) async throws -> [String: [String: Any]] {
        let started = try await request("POST", "/cleanup", body)
        try #require(started.status == 202, "\(started.body)")
        let id = try #require(started.body["id"] as? String)
        var last: [String: Any] = [:]
        let done = try await eventually(timeout: .seconds(120)) {
            last = try await request("GET", "/sweeps/\(id)").body
            return last["status"] as? String == "completed" || last["status"] as? String == "failed"
        }
        try #require(done && last["status"] as? String == "completed", "\(last)\n\(cluster.output)")
        let results = last["results"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: results.map { ($0["data_type"] as! String, $0) })
    }

    func count(_ sql: String) async throws -> Int64 {
        try await database.query(PostgresQuery(unsafeSQL: sql))[0].decode(Int64.self, at: 0)
    }

    /// `count` decided payments created `age` ago, due `dueIn` from now (negative: past due).
    func insertPayments(_ count: Int, dueIn: TimeInterval, prefix: Int = 0) async throws -> [UUID] {
        let ids = (0..<count).map { _ in UUID() }
        try await database.execute("""
            INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at, retention_until)
            SELECT id, 'merchant-1', 'authorized', 1000, 'USD', 'test', now() - interval '8 years', now() + \(dueIn) * interval '1 second'
            FROM unnest(\(ids)::uuid[]) AS id
            """)
        return ids
    }

    /// Every row of every archive file of `dataType`, as JSON objects.
    func archivedRows(_ dataType: String) throws -> [[String: Any]] {
        let store = try DirectoryArchiveStore(directory: archive)
        return try store.list().filter { $0.hasPrefix(dataType + "-") }.flatMap { name in
            try Gzip.decompress(try store.read(name)).split(separator: 0x0A).map {
                try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any]
            }
        }
    }

    func verifyArchive() throws -> ArchiveVerification {
        try ArchiveVerification.verify(try DirectoryArchiveStore(directory: archive),
                                       publicKeys: [try AuditSigner.publicKey(contentsOf: signingKey.appendingPathExtension("pub"))])
    }
}

@Suite("Retention sweeps: archive, verify, delete; holds; resume after a kill; policies", .serialized)
struct RetentionSweepTests {
    @Test("a sweep archives and deletes what is due in every data type, keeps what holds cover, and a dry run only counts")
    func sweepEveryType() async throws {
        try await RetentionCluster.with { retention in
            let db = retention.database
            let due = try await retention.insertPayments(40, dueIn: -3600)
            let future = try await retention.insertPayments(5, dueIn: 86_400)
            // Records: user-a's statements are held by subject, user-b's are not; a tax document is on hold by flag.
            try await db.execute("""
                INSERT INTO financial_records (record_id, user_id, record_type, classification, compliance_standard, content_ciphertext,
                    content_key_version, requested_by, created_at, retention_until, legal_hold)
                SELECT gen_random_uuid(), CASE WHEN n <= 3 THEN 'user-a' ELSE 'user-b' END, 'statement', 'confidential', 'SOX',
                       '\\x00'::bytea, 1, 'test', now() - interval '8 years', now() - interval '1 day', false
                FROM generate_series(1, 10) AS n
                """)
            try await db.execute("""
                INSERT INTO financial_records (record_id, user_id, record_type, classification, compliance_standard, content_ciphertext,
                    content_key_version, requested_by, created_at, retention_until, legal_hold)
                VALUES (gen_random_uuid(), 'user-c', 'tax_document', 'confidential', 'SOX', '\\x00'::bytea, 1, 'test',
                        now() - interval '8 years', now() - interval '1 day', true)
                """)
            // Card tokens: two old and unreferenced, one old but used by a payment, one recent.
            try await db.execute("""
                INSERT INTO card_tokens (token, fingerprint, fingerprint_version, pan_ciphertext, pan_key_version, card_brand, masked_pan, created_at)
                SELECT 'tok_' || md5(n::text), decode(md5(n::text), 'hex'), 1, '\\x00'::bytea, 1, 'visa', '************4242',
                       now() - CASE WHEN n = 4 THEN interval '1 day' ELSE interval '1 year' END
                FROM generate_series(1, 4) AS n
                """)
            try await db.execute("UPDATE payment_data SET card_token = 'tok_' || md5('3') WHERE transaction_id = \(future[0])")

            let holdResource = try await retention.request("POST", "/holds", ["scope": "resource", "resource_id": due[0].uuidString.lowercased(),
                                                                               "reason": "litigation 2026-17"])
            #expect(holdResource.status == 201, "\(holdResource.body)")
            #expect(try await retention.request("POST", "/holds", ["scope": "subject", "subject_id": "user-a", "reason": "regulator inquiry"]).status == 201)

            let dry = try await retention.sweep(["dry_run": true])
            #expect(dry["payment"]?["eligible"] as? Int == 40)
            #expect(dry["payment"]?["held"] as? Int == 1)
            #expect(dry["payment"]?["deleted"] as? Int == 0)
            #expect(try await retention.count("SELECT count(*) FROM payment_data") == 45)

            let results = try await retention.sweep()
            #expect(results["payment"]?["archived"] as? Int == 39)
            #expect(results["payment"]?["deleted"] as? Int == 39)
            #expect(results["statement"]?["held"] as? Int == 3)
            #expect(results["statement"]?["deleted"] as? Int == 7)
            #expect(results["tax_document"]?["deleted"] as? Int == 0)
            #expect(results["card_token"]?["deleted"] as? Int == 2)
            #expect(try await retention.count("SELECT count(*) FROM payment_data") == 6)
            #expect(try await retention.count("SELECT count(*) FROM payment_data WHERE transaction_id = '\(due[0])'") == 1)
            #expect(try await retention.count("SELECT count(*) FROM financial_records WHERE user_id = 'user-a'") == 3)
            #expect(try await retention.count("SELECT count(*) FROM card_tokens") == 2)

            // What was deleted is in the archive, each row once, sealed columns still sealed.
            let archived = try retention.archivedRows("payment")
            let ids = Set(archived.compactMap { $0["transaction_id"] as? String })
            #expect(archived.count == 39 && ids == Set(due.dropFirst().map { $0.uuidString.lowercased() }))
            let verification = try retention.verifyArchive()
            #expect(verification.isIntact, "\(verification.problems)")
            #expect(verification.rows == 39 + 7 + 2)
            // The sweep is on the audit trail, which still verifies.
            #expect(try await retention.count("SELECT count(*) FROM audit_events WHERE action = 'retention.sweep'") == 2)
            #expect(try await AuditVerifier(database: db, publicKeys: []).verify(streamPrefix: nil).isIntact)

            // Releasing the hold lets the next sweep take the row.
            let holdID = try #require(holdResource.body["id"] as? String)
            #expect(try await retention.request("POST", "/holds/\(holdID)/release", ["reason": "case closed"]).status == 200)
            #expect(try await retention.request("POST", "/holds/\(holdID)/release", ["reason": "again"]).status == 409)
            #expect(try await retention.sweep(["data_types": ["payment"]])["payment"]?["deleted"] as? Int == 1)
        }
    }

    @Test("a tampered archive file or manifest is reported")
    func tampering() async throws {
        try await RetentionCluster.with(batchSize: 10) { retention in
            _ = try await retention.insertPayments(25, dueIn: -60)
            _ = try await retention.sweep(["data_types": ["payment"]])
            #expect(try retention.verifyArchive().isIntact)
            let store = try DirectoryArchiveStore(directory: retention.archive)
            let names = try store.list()
            let file = try #require(names.first { $0.hasPrefix("payment-") })
            let manifest = try #require(names.first { $0.hasPrefix("manifest-") })
            // One changed byte in a file.
            var bytes = try store.read(file)
            bytes[bytes.count / 2] ^= 0x01
            try Data(bytes).write(to: retention.archive.appendingPathComponent(file))
            #expect(try retention.verifyArchive().problems.contains { $0.hasPrefix(file) && $0.contains("SHA-256") })
            // A manifest whose row count was edited no longer verifies its signature.
            let text = String(decoding: try store.read(manifest), as: UTF8.self).replacingOccurrences(of: "\"rows\":10", with: "\"rows\":9")
            try Data(text.utf8).write(to: retention.archive.appendingPathComponent(manifest))
            #expect(try retention.verifyArchive().problems.contains { $0.hasPrefix(manifest) && $0.contains("signature") })
            // A file no manifest lists.
            try Data("stray".utf8).write(to: retention.archive.appendingPathComponent("payment-extra.jsonl.gz"))
            #expect(try retention.verifyArchive().problems.contains { $0.hasPrefix("payment-extra.jsonl.gz") })
        }
    }

    @Test("a sweep paced at a rate limit claims no faster than it")
    func pacedSweep() async throws {
        try await RetentionCluster.with(batchSize: 500, maxRowsPerSecond: 2_000) { retention in
            _ = try await retention.insertPayments(2_000, dueIn: -60)
            let payment = try #require(try await retention.sweep(["data_types": ["payment"]])["payment"])
            #expect(payment["deleted"] as? Int == 2_000 && payment["archived"] as? Int == 2_000, "\(payment)")
            // 2,000 rows at 2,000 rows/s: the last claim waits until a second after the first.
            let took = try #require(payment["duration_ms"] as? Int)
            #expect(took >= 1_000, "\(payment)")
        }
    }

    @Test("a worker killed mid-sweep, then restarted, archives every due row exactly once and deletes it")
    func killedMidSweep() async throws {
        // Paced, so the kill comes mid-sweep however fast the machine is (20,000 rows take 5 s at least).
        try await RetentionCluster.with(batchSize: 100, maxRowsPerSecond: 4_000) { retention in
            let due = try await retention.insertPayments(20_000, dueIn: -60)
            let started = try await retention.request("POST", "/cleanup", ["data_types": ["payment"]])
            let id = try #require(started.body["id"] as? String)
            try #require(try await eventually { try await retention.count("SELECT count(*) FROM retention_archive_batches WHERE status = 'deleted'") >= 5 })
            try await retention.cluster.workers[0].kill9()
            let partly = try await retention.count("SELECT count(*) FROM payment_data")
            #expect(partly > 0 && partly < 20_000, "the sweep finished before the kill; nothing was tested")
            try retention.cluster.startWorker("mingus-retention-worker")
            try #require(try await eventually(timeout: .seconds(120)) {
                try await retention.request("GET", "/sweeps/\(id)").body["status"] as? String == "completed"
            })
            #expect(try await retention.count("SELECT count(*) FROM payment_data") == 0)
            let archived = try retention.archivedRows("payment").compactMap { $0["transaction_id"] as? String }
            #expect(archived.count == 20_000, "rows archived more than once or not at all")
            #expect(Set(archived) == Set(due.map { $0.uuidString.lowercased() }))
            let verification = try retention.verifyArchive()
            #expect(verification.isIntact, "\(verification.problems)")
            #expect(verification.rows == 20_000)
        }
    }

    @Test("a batch stopped between its deletion transactions is finished by the next run: each row archived once, deleted and counted once")
    func stoppedBetweenDeletionChunks() async throws {
        try await RetentionCluster.with(batchSize: 1_300) { retention in
            let due = try await retention.insertPayments(1_300, dueIn: -60)
            // The 800th key in claim order is in the second of the batch's three deletion
            // transactions (500 rows each): refusing its deletion stops the run after the first.
            let refused = due.map { $0.uuidString.lowercased() }.sorted()[799]
            try await retention.database.execute(PostgresQuery(unsafeSQL: """
                CREATE FUNCTION refuse_one_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF OLD.transaction_id = '\(refused)' THEN RAISE EXCEPTION 'deletion refused by the test'; END IF; RETURN OLD; END $$
                """))
            try await retention.database.execute(
                "CREATE TRIGGER refuse_one_deletion BEFORE DELETE ON payment_data FOR EACH ROW EXECUTE FUNCTION refuse_one_deletion()")
            let started = try await retention.request("POST", "/cleanup", ["data_types": ["payment"]])
            let id = try #require(started.body["id"] as? String)
            try #require(try await eventually {
                try await retention.count("SELECT count(*) FROM retention_sweeps WHERE error LIKE '%deletion refused by the test%'") == 1
            })
            #expect(try await retention.count("SELECT count(*) FROM payment_data") == 800)
            #expect(try await retention.count("SELECT count(*) FROM retention_archive_batches WHERE status = 'archived' AND deleted = 500") == 1)

            try await retention.database.execute("DROP TRIGGER refuse_one_deletion ON payment_data")
            try #require(try await eventually(timeout: .seconds(60)) {
                try await retention.request("GET", "/sweeps/\(id)").body["status"] as? String == "completed"
            })
            #expect(try await retention.count("SELECT count(*) FROM payment_data") == 0)
            #expect(try await retention.count("SELECT count(*) FROM retention_archive_batches WHERE status = 'deleted' AND rows = 1300 AND deleted = 1300") == 1)
            let archived = try retention.archivedRows("payment").compactMap { $0["transaction_id"] as? String }
            #expect(archived.count == 1_300, "rows archived more than once or not at all")
            #expect(Set(archived) == Set(due.map { $0.uuidString.lowercased() }))
            let results = try #require(try await retention.request("GET", "/sweeps/\(id)").body["results"] as? [[String: Any]])
            let payment = try #require(results.first { $0["data_type"] as? String == "payment" })
            #expect(payment["archived"] as? Int == 1_300 && payment["deleted"] as? Int == 1_300, "\(payment)")
        }
    }

    @Test("policies: listed with versions; below the legal floor refused; a new period re-dates the rows")
    func policies() async throws {
        try await RetentionCluster.with { retention in
            let listed = try await retention.request("GET", "/policies")
            let policies = listed.body["policies"] as? [[String: Any]] ?? []
            #expect(policies.first { $0["data_type"] as? String == "payment" }?["period"] as? String == "P7Y")
            #expect(policies.first { $0["data_type"] as? String == "health_expense" }?["period"] as? String == "P6Y")

            let short = try await retention.request("POST", "/policies", [
                "data_type": "payment", "period": "P5Y", "compliance_standard": "SOX", "legal_basis": "shorter"])
            #expect(short.status == 422)
            #expect((short.body["error"] as? [String: Any])?["rule"] as? String == "legal_floor")
            #expect(((short.body["error"] as? [String: Any])?["message"] as? String)?.contains("7 years") == true)
            let hipaa = try await retention.request("POST", "/policies", [
                "data_type": "health_expense", "period": "P71M", "compliance_standard": "HIPAA", "legal_basis": "x"])
            #expect(hipaa.status == 422)
            let unavailable = try await retention.request("POST", "/policies", [
                "data_type": "payment", "period": "P8Y", "compliance_standard": "SOX", "legal_basis": "x", "action": "anonymize"])
            #expect(unavailable.status == 422 && (unavailable.body["error"] as? [String: Any])?["rule"] as? String == "unavailable")
            #expect(try await retention.request("POST", "/policies", [
                "data_type": "payments", "period": "P8Y", "compliance_standard": "SOX", "legal_basis": "x"]).status == 422)
            // The audit trail's floor holds whatever standard its policy names; PCI DSS alone sets no floor on card tokens.
            let audit = try await retention.request("POST", "/policies", [
                "data_type": "audit_event", "period": "P11M", "compliance_standard": "internal", "legal_basis": "x"])
            #expect(audit.status == 422 && ((audit.body["error"] as? [String: Any])?["message"] as? String)?.contains("PCI DSS 10.5.1") == true,
                    "\(audit.body)")
            let tokens = try await retention.request("POST", "/policies", [
                "data_type": "card_token", "period": "P30D", "compliance_standard": "PCI DSS", "legal_basis": "tokens unused 30 days"])
            #expect(tokens.status == 200, "\(tokens.body)")
            let keys = try await retention.request("POST", "/policies", [
                "data_type": "idempotency_key", "period": "P2D", "compliance_standard": "Operations", "legal_basis": "x"])
            #expect(keys.status == 200 && keys.body["action"] as? String == "delete", "\(keys.body)")
            let archiveKeys = try await retention.request("POST", "/policies", [
                "data_type": "idempotency_key", "period": "P2D", "compliance_standard": "Operations", "legal_basis": "x",
                "action": "archive_then_delete"])
            #expect(archiveKeys.status == 422 && (archiveKeys.body["error"] as? [String: Any])?["rule"] as? String == "unavailable")

            let ids = try await retention.insertPayments(3, dueIn: 0)
            let longer = try await retention.request("POST", "/policies", [
                "data_type": "payment", "period": "P10Y", "compliance_standard": "SOX", "legal_basis": "board decision 2026-11"])
            #expect(longer.status == 200 && longer.body["version"] as? Int == 2 && longer.body["period"] as? String == "P10Y", "\(longer.body)")
            try #require(try await eventually {
                try await retention.count("""
                    SELECT count(*) FROM payment_data WHERE transaction_id IN ('\(ids[0])', '\(ids[1])', '\(ids[2])')
                      AND retention_until = created_at + interval '10 years'
                    """) == 3
            })
            #expect(try await retention.count("SELECT count(*) FROM retention_policy_history WHERE data_type = 'payment'") == 2)
            #expect(try await retention.count("SELECT count(*) FROM audit_events WHERE action = 'retention.policy.save'") == 3)
        }
    }

    @Test("legal holds: bad input names the field")
    func holdInput() async throws {
        try await RetentionCluster.with { retention in
            let cases: [([String: Any], String, String)] = [
                (["scope": "everything", "reason": "x"], "scope", "enum"),
                (["scope": "subject", "reason": "x"], "subject_id", "required"),
                (["scope": "subject", "subject_id": "u", "resource_id": "r", "reason": "x"], "resource_id", "scope"),
                (["scope": "data_type", "data_type": "payment", "created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z",
                  "reason": "x"], "created_to", "order"),
                (["scope": "resource", "resource_id": "r", "reason": "  "], "reason", "required"),
            ]
            for (body, field, rule) in cases {
                let answer = try await retention.request("POST", "/holds", body)
                let error = answer.body["error"] as? [String: Any]
                #expect((400...422).contains(answer.status) && error?["field"] as? String == field && error?["rule"] as? String == rule,
                        "\(body): \(answer.status) \(answer.body)")
            }
        }
    }
}
