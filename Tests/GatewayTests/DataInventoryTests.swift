import Foundation
import MingusCompliance
import MingusGateway
import MingusPostgres
import MingusRuntime
import MingusSecurity
import TestSupport
import Testing

@Suite("Data inventory: every column classified, served with retention and row estimates; customer protection status")
struct DataInventoryTests {
    @Test("every column of every table is classified, nothing is declared that the schema lacks; a new column or table fails the check")
    func everyColumnClassified() async throws {
        let gateway = try await Gateway.start()
        let tables = GatewayApplication.dataInventory
        let problems = try await DataInventory.problems(tables, on: gateway.database)
        #expect(problems.isEmpty, "classify these in the owning domain's inventory:\n\(problems.joined(separator: "\n"))")

        // The check fails for what a new migration could bring without a declaration.
        try await gateway.database.execute("ALTER TABLE payment_data ADD COLUMN nickname text")
        try await gateway.database.execute("CREATE TABLE loyalty_points (user_id text, points int)")
        let after = try await DataInventory.problems(tables, on: gateway.database)
        #expect(after == ["payment_data.nickname: not classified", "loyalty_points: table not in the inventory (2 columns unclassified)"])

        // And for declarations that do not match, or highly restricted data stored as written.
        let wrong = [
            DataTable("loyalty_points", "points", categories: [.personal], retention: .rule("test"))
                .columns(.confidential, "user_id points points")
                .columns(.highlyRestricted, "secret"),
        ]
        #expect(DataInventory.problems(wrong, schema: ["loyalty_points": ["user_id", "points"]]) == [
            "loyalty_points.points: declared twice",
            "loyalty_points.secret: declared but no such column",
            "loyalty_points.secret: highly_restricted but stored as written",
        ])
        #expect(DataInventory.problems(wrong + wrong, schema: [:]).prefix(2) == [
            "loyalty_points: declared but no such table", "loyalty_points: declared twice",
        ])
        try await gateway.stopCleanly()
    }

    @Test("the inventory names table, column, classification, protection and key, the policy in force and row estimates; filters; roles")
    func inventoryEndpoint() async throws {
        let gateway = try await Gateway.start()
        let (_, key) = try await gateway.key([.complianceRead])
        let (_, other) = try await gateway.key([.auditRead])
        let auth = ["Authorization": "Bearer \(key)"]
        try await gateway.database.execute("ANALYZE mingus_api_keys")
        let apiKeys = try await gateway.database.query("SELECT count(*) FROM mingus_api_keys")[0].decode(Int.self, at: 0)

        let response = try await httpRequest(gateway.base + "/api/financial/customer/data/inventory", headers: auth)
        #expect(response.status == 200, "\(response.body)")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        let tables = try #require(body["tables"] as? [[String: Any]])
        #expect(tables.count == GatewayApplication.dataInventory.count)
        let byName = Dictionary(uniqueKeysWithValues: tables.map { ($0["name"] as! String, $0) })

        let vault = try #require(byName["card_tokens"])
        #expect(vault["domain"] as? String == "payments")
        #expect(vault["classification"] as? String == "highly_restricted")
        let pan = try #require((vault["columns"] as? [[String: Any]])?.first { $0["name"] as? String == "pan_ciphertext" })
        #expect(pan["classification"] as? String == "highly_restricted")
        #expect(pan["protection"] as? String == "encrypted")
        #expect(pan["key_purpose"] as? String == "pan")
        let retention = try #require(vault["retention"] as? [String: Any])
        #expect(retention["kind"] as? String == "policy")
        let policy = try #require((retention["policies"] as? [[String: Any]])?.first)
        #expect(policy["data_type"] as? String == "card_token")
        #expect(policy["retention"] as? String == "90 days")
        #expect(policy["action"] as? String == "archive_then_delete")

        #expect(byName["mingus_api_keys"]?["row_estimate"] as? Int == apiKeys)
        #expect(byName["breaches"]?["lawful_basis"] as? String == "legal_obligation")
        let summary = try #require(body["summary"] as? [String: Any])
        let declared = GatewayApplication.dataInventory.flatMap(\.table.columns)
        #expect(summary["columns"] as? Int == declared.count)
        #expect((summary["unbounded_tables"] as? [String])?.contains("mingus_inbox") == true)

        // One domain; only the most sensitive columns, every one of them protected.
        let payments = try await httpRequest(gateway.base + "/api/financial/customer/data/inventory?domain=payments", headers: auth)
        let paymentTables = try #require((try JSONSerialization.jsonObject(with: Data(payments.body.utf8)) as? [String: Any])?["tables"] as? [[String: Any]])
        #expect(Set(paymentTables.map { $0["name"] as! String }) == ["payment_data", "card_tokens", "financial_records", "payment_hourly_rollups"])
        let highly = try await httpRequest(gateway.base + "/api/financial/customer/data/inventory?min_classification=highly_restricted", headers: auth)
        let highlyTables = try #require((try JSONSerialization.jsonObject(with: Data(highly.body.utf8)) as? [String: Any])?["tables"] as? [[String: Any]])
        let highlyColumns = highlyTables.flatMap { $0["columns"] as! [[String: Any]] }
        #expect(highlyColumns.count == declared.filter { $0.classification == .highlyRestricted }.count)
        #expect(highlyColumns.allSatisfy { $0["classification"] as? String == "highly_restricted" && $0["protection"] as? String != "none" })

        for (query, field) in [("domain=nowhere", "domain"), ("min_classification=secret", "min_classification")] {
            let bad = try await httpRequest(gateway.base + "/api/financial/customer/data/inventory?\(query)", headers: auth)
            #expect(bad.status == 400)
            #expect(try errorBody(bad.body)["field"] == field)
        }
        for path in ["customer/data/inventory", "customer/protection/status", "dashboard/customer-protection"] {
            let refused = try await httpRequest(gateway.base + "/api/financial/\(path)", headers: ["Authorization": "Bearer \(other)"])
            #expect(refused.status == 403, "\(path)")
        }
        try await gateway.stopCleanly()
    }

    @Test("protection status: sensitive columns and their protection, key ages, erased subject keys; an overdue request puts it at risk")
    func protectionStatus() async throws {
        let gateway = try await Gateway.start()
        let (_, key) = try await gateway.key([.complianceRead])
        let auth = ["Authorization": "Bearer \(key)"]
        func status(_ path: String = "customer/protection/status") async throws -> [String: Any] {
            let response = try await httpRequest(gateway.base + "/api/financial/\(path)", headers: auth)
            #expect(response.status == 200, "\(response.body)")
            return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        }

        let before = try await status()
        let data = try #require(before["data"] as? [String: Any])
        let declared = GatewayApplication.dataInventory.flatMap(\.table.columns)
        let highly = declared.filter { $0.classification == .highlyRestricted }
        #expect(data["highly_restricted_columns"] as? Int == highly.count)
        #expect(data["highly_restricted_columns_protected"] as? Int == highly.count)
        let keys = try #require(before["keys"] as? [[String: Any]])
        let purposes = try await gateway.database.query("SELECT DISTINCT purpose FROM mingus_data_keys WHERE retired_at IS NULL")
            .map { try $0.decode(String.self, at: 0) }
        #expect(Set(keys.map { $0["purpose"] as! String }) == Set(purposes))
        #expect(keys.allSatisfy { $0["age_days"] as? Int == 0 })
        // Tables of personal data that nothing deletes are a medium finding: attention, not at risk.
        let findings = try #require(before["findings"] as? [[String: Any]])
        #expect(findings.map { $0["code"] as! String } == ["personal_data_without_deletion"])
        let kept = GatewayApplication.dataInventory.filter {
            if case .unbounded = $0.table.retention { $0.table.categories.contains(.personal) } else { false }
        }.map(\.table.name)
        #expect(findings.first?["tables"] as? [String] == kept)
        #expect(before["status"] as? String == "attention")

        let subjects = SubjectKeys(kek: gateway.kek, database: gateway.database)
        _ = try await subjects.key("subject-a")
        _ = try await subjects.key("subject-b")
        _ = try await subjects.erase("subject-b", actor: "test", reason: "erasure request")
        try await gateway.database.execute("""
            INSERT INTO privacy_requests (id, subject_id, type, received_at, due_at, original_due_at, requested_by)
            VALUES (gen_random_uuid(), 'subject-a', 'access', now() - interval '40 days', now() - interval '10 days', now() - interval '10 days', 'test'),
                   (gen_random_uuid(), 'subject-a', 'erasure', now(), now() + interval '3 days', now() + interval '3 days', 'test')
            """)
        for after in [try await status(), try await status("dashboard/customer-protection")] {
            #expect(after["status"] as? String == "at_risk")
            #expect((after["findings"] as? [[String: Any]])?.first?["code"] as? String == "requests_overdue")
            let requests = try #require(after["requests"] as? [String: Any])
            #expect(requests["open"] as? Int == 2)
            #expect(requests["overdue"] as? Int == 1)
            #expect(requests["due_within_week"] as? Int == 1)
            let subjectKeys = try #require(after["subject_keys"] as? [String: Any])
            #expect(subjectKeys["active"] as? Int == 1)
            #expect(subjectKeys["erased"] as? Int == 1)
        }
        try await gateway.stopCleanly()
    }
}
