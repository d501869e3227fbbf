import Foundation
import MingusCompliance
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

@Suite("Compliance: automated checks against their evidence, manual assessments, the score, the report", .serialized)
struct ComplianceTests {
    @Test("each automated check fails when its evidence is broken and passes once it is repaired")
    func checksFollowTheirEvidence() async throws {
        try await ComplianceCluster.with { c in
            // Audit trail: events exist (every API request is audited); no operator action yet.
            #expect(try await c.check("audit_activity").status == "failed")
            try await c.database.withConnection { db in
                _ = try await AuditTrail.append(AuditEvent(actor: "operator:tester@host", action: "apikey.create", resource: "apikeys/x",
                                                           outcome: .success), component: "mingusctl", on: db)
            }
            #expect(try await c.check("audit_activity").status == "passed")

            // Chains: tampering with one event is found, restoring it repairs the chain.
            #expect(try await c.check("audit_chain_intact").status == "passed")
            let row = try await c.database.query("SELECT stream, seq, actor FROM audit_events ORDER BY occurred_at LIMIT 1")[0]
            let stream = try row.decode(String.self, at: 0), seq = try row.decode(Int64.self, at: 1), actor = try row.decode(String.self, at: 2)
            func setActor(_ value: String) async throws {
                try await c.database.withTransaction { db in
                    try await db.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
                    try await db.execute("UPDATE audit_events SET actor = \(value) WHERE stream = \(stream) AND seq = \(seq)")
                    try await db.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
                }
            }
            try await setActor("mallory")
            let tampered = try await c.check("audit_chain_intact")
            #expect(tampered.status == "failed")
            let details = try #require(tampered.result["evidence"] as? [String: Any])
            #expect((details["first_break"] as? [String: Any])?["stream"] as? String == stream, "\(details)")
            try await setActor(actor)
            #expect(try await c.check("audit_chain_intact").status == "passed")

            // Checkpoints: none signed yet; one signed with the trusted key.
            #expect(try await c.check("audit_checkpoint_recent").status == "failed")
            _ = try await c.signer.checkpoint(c.database)
            #expect(try await c.check("audit_checkpoint_recent").status == "passed")
            let chain = try await c.check("audit_chain_intact")
            #expect((chain.result["evidence"] as? [String: Any])?["trusted_checkpoints"] as? Int == 1)

            // A card number in a text column, in clear.
            #expect(try await c.check("pan_not_stored_in_clear").status == "passed")
            let payment = UUID()
            try await c.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, failure_reason, requested_by)
                VALUES (\(payment), 'm-1', 'failed', 100, 'EUR', 'card 4111 1111 1111 1111 was declined', 'test')
                """)
            let pan = try await c.check("pan_not_stored_in_clear")
            #expect(pan.status == "failed")
            #expect(pan.result["summary"] as? String == "card numbers in clear in payment_data.failure_reason")
            #expect(!pan.result.description.contains("4111 1111 1111 1111"), "the evidence must not hold the card number")
            try await c.database.execute("UPDATE payment_data SET failure_reason = 'declined' WHERE transaction_id = \(payment)")
            #expect(try await c.check("pan_not_stored_in_clear").status == "passed")

            // A card verification code: a column for it, then a value in a JSON field.
            #expect(try await c.check("cvv_not_stored").status == "passed")
            try await c.execute("ALTER TABLE payment_data ADD COLUMN card_cvv text")
            #expect(try await c.check("cvv_not_stored").status == "failed")
            try await c.execute("ALTER TABLE payment_data DROP COLUMN card_cvv")
            try await c.database.execute("UPDATE payment_data SET metadata = '{\"cvv\": \"123\"}' WHERE transaction_id = \(payment)")
            #expect(try await c.check("cvv_not_stored").status == "failed")
            try await c.database.execute("UPDATE payment_data SET metadata = '{}' WHERE transaction_id = \(payment)")
            #expect(try await c.check("cvv_not_stored").status == "passed")

            // Card fingerprints need a current fingerprint key.
            #expect(try await c.check("pan_fingerprint_keyed").status == "passed")
            try await c.execute("UPDATE mingus_data_keys SET retired_at = now() WHERE purpose = 'fingerprint'")
            #expect(try await c.check("pan_fingerprint_keyed").status == "failed")
            try await c.execute("UPDATE mingus_data_keys SET retired_at = NULL WHERE purpose = 'fingerprint'")
            #expect(try await c.check("pan_fingerprint_keyed").status == "passed")

            // A data key past its cryptoperiod (365 days by default).
            #expect(try await c.check("key_cryptoperiod").status == "passed")
            try await c.execute("UPDATE mingus_data_keys SET created_at = created_at - interval '400 days' WHERE purpose = 'pan'")
            let aged = try await c.check("key_cryptoperiod")
            #expect(aged.status == "failed")
            #expect((aged.result["summary"] as? String ?? "").contains("pan v1"), "\(aged.result)")
            try await c.execute("UPDATE mingus_data_keys SET created_at = created_at + interval '400 days' WHERE purpose = 'pan'")
            #expect(try await c.check("key_cryptoperiod").status == "passed")

            // Retention: no sweep, an old one, a recent one that left data past its date, then a clean one.
            #expect(try await c.check("retention_sweeps").status == "failed")
            let old = UUID(), recent = UUID()
            try await c.database.execute("""
                INSERT INTO retention_sweeps (id, dry_run, requested_by, status, created_at, started_at, finished_at)
                VALUES (\(old), false, 'test', 'completed', now() - interval '5 days', now() - interval '5 days', now() - interval '5 days')
                """)
            #expect(try await c.check("retention_sweeps").status == "failed")
            try await c.database.execute("""
                INSERT INTO retention_sweeps (id, dry_run, requested_by, status, started_at, finished_at)
                VALUES (\(recent), false, 'test', 'completed', now(), now())
                """)
            try await c.database.execute("""
                INSERT INTO retention_sweep_results (sweep_id, data_type, action, eligible, held, archived, deleted, finished)
                VALUES (\(recent), 'payment', 'archive_then_delete', 10, 2, 5, 5, true)
                """)
            #expect(try await c.check("retention_sweeps").status == "failed")
            try await c.database.execute("UPDATE retention_sweep_results SET archived = 8, deleted = 8 WHERE sweep_id = \(recent)")
            #expect(try await c.check("retention_sweeps").status == "passed")

            // API keys: one idle for 100 days, one stored without a proper hash, too many admins.
            #expect(try await c.check("api_keys_inactive").status == "passed")
            let idle = try await c.cluster.key([.complianceRead]).name
            try await c.database.execute("UPDATE mingus_api_keys SET created_at = now() - interval '100 days' WHERE name = \(idle)")
            #expect(try await c.check("api_keys_inactive").status == "failed")
            try await c.database.execute("UPDATE mingus_api_keys SET revoked_at = now() WHERE name = \(idle)")
            #expect(try await c.check("api_keys_inactive").status == "passed")

            #expect(try await c.check("api_key_authentication").status == "passed")
            let weak = try await c.cluster.key([.complianceRead]).name
            try await c.database.execute("UPDATE mingus_api_keys SET secret_hash = '\\x00'::bytea WHERE name = \(weak)")
            #expect(try await c.check("api_key_authentication").status == "failed")
            try await c.database.execute("UPDATE mingus_api_keys SET revoked_at = now() WHERE name = \(weak)")
            #expect(try await c.check("api_key_authentication").status == "passed")

            #expect(try await c.check("roles_least_privilege").status == "passed")
            var admins: [String] = []
            for _ in 0..<3 { admins.append(try await c.cluster.key([.admin]).name) }
            #expect(try await c.check("roles_least_privilege").status == "failed")
            try await c.database.execute("UPDATE mingus_api_keys SET revoked_at = now() WHERE name = ANY(\(admins))")
            #expect(try await c.check("roles_least_privilege").status == "passed")

            // A breach notification obligation past its deadline.
            #expect(try await c.check("breach_obligations").status == "passed")
            let breach = UUID(), obligation = UUID()
            try await c.database.execute("""
                INSERT INTO breaches (id, title, severity, discovered_at, aware_at, data_categories, data_encrypted, records_affected,
                                      persons_affected, jurisdictions, entity_roles, reported_by, reported_at)
                VALUES (\(breach), 'test breach', 'high', now() - interval '5 days', now() - interval '5 days', ARRAY['card'], false, 10, 10,
                        ARRAY['DE'], ARRAY['controller'], 'test', now() - interval '5 days')
                """)
            try await c.database.execute("""
                INSERT INTO breach_obligations (id, breach_id, regime, regime_name, notify, rules_version, reason, clock, deadline, period)
                VALUES (\(obligation), \(breach), 'gdpr_authority', 'GDPR supervisory authority', 'authority', 'test', 'test', 'aware',
                        now() - interval '1 hour', '72 hours')
                """)
            let overdue = try await c.check("breach_obligations")
            #expect(overdue.status == "failed")
            #expect(((overdue.result["evidence"] as? [String: Any])?["overdue"] as? [[String: Any]])?.first?["id"] as? String
                    == obligation.uuidString.lowercased())
            try await c.database.execute("UPDATE breach_obligations SET status = 'met', met_at = now() WHERE id = \(obligation)")
            #expect(try await c.check("breach_obligations").status == "passed")

            // A payment left pending for two hours.
            #expect(try await c.check("payments_settled").status == "passed")
            let stuck = UUID()
            try await c.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at)
                VALUES (\(stuck), 'm-1', 'pending', 100, 'EUR', 'test', now() - interval '2 hours')
                """)
            #expect(try await c.check("payments_settled").status == "failed")
            try await c.database.execute("UPDATE payment_data SET status = 'authorized' WHERE transaction_id = \(stuck)")
            #expect(try await c.check("payments_settled").status == "passed")

            // Every check passes now; the score's check parts say exactly that, and today's snapshot is kept.
            let all = try await c.run(ComplianceChecks.all.map(\.name))
            #expect(all.values.allSatisfy { $0["status"] as? String == "passed" }, "\(all.filter { $0.value["status"] as? String != "passed" })")
            let score = try await c.request("GET", "/api/financial/dashboard/compliance-score")
            try #require(score.status == 200, "\(score.raw)")
            let document = try #require(score.body["score"] as? [String: Any])
            let parts = try #require(document["parts"] as? [[String: Any]])
            for part in parts where part["part"] as? String != "pci_dss" {
                #expect(part["score"] as? Double == 100, "\(part)")
            }
            let history = try #require(score.body["history"] as? [[String: Any]])
            #expect(history.count == 1)
            #expect(history.first?["score"] as? Double == document["score"] as? Double)
        }
    }

    @Test("a manual assessment is recorded and audited; a failing check overrules a manual compliant; bad input and missing roles are refused")
    func assessments() async throws {
        try await ComplianceCluster.with { c in
            // Nothing has run: nothing is compliant, the score is not assessed.
            let empty = try await c.request("GET", "/api/financial/compliance/status")
            try #require(empty.status == 200, "\(empty.raw)")
            let emptyScore = try #require(empty.body["score"] as? [String: Any])
            #expect(emptyScore["status"] as? String == "not_assessed")
            #expect(emptyScore["score"] is NSNull)
            #expect(emptyScore["assessed_weight"] as? Int == 0)

            let assessed = try await c.request("PUT", "/api/financial/pci/requirements/12.6.1",
                                               ["status": "compliant", "assessor": "Jane Roe, QSA", "notes": "training records for 2026"])
            try #require(assessed.status == 200, "\(assessed.raw)")
            #expect(assessed.body["status"] as? String == "compliant")
            #expect(assessed.body["source"] as? String == "manual")
            #expect(assessed.body["assessed_by"] as? String == "Jane Roe, QSA")
            let audited = try await c.database.query("""
                SELECT count(*) FROM audit_events WHERE action = 'compliance.requirement.assess' AND resource = 'compliance/pci/requirements/12.6.1'
                """)[0].decode(Int64.self, at: 0)
            #expect(audited == 1)
            // With one counted requirement compliant, the PCI DSS part is 100 and covers 40 of 100.
            let partial = try #require(try await c.request("GET", "/api/financial/compliance/status").body["score"] as? [String: Any])
            #expect(partial["score"] as? Double == 100)
            #expect(partial["assessed_weight"] as? Int == 40)
            #expect(partial["status"] as? String == "partially_assessed")

            // 8.2.6 assessed compliant by hand, then its automated check fails: non_compliant, overruled.
            #expect(try await c.request("PUT", "/api/financial/pci/requirements/8.2.6", ["status": "compliant", "assessor": "Jane Roe, QSA"]).status == 200)
            let idle = try await c.cluster.key([.complianceRead]).name
            try await c.database.execute("UPDATE mingus_api_keys SET created_at = now() - interval '100 days' WHERE name = \(idle)")
            #expect(try await c.check("api_keys_inactive").status == "failed")
            let requirements = try await c.request("GET", "/api/financial/pci/requirements")
            let list = try #require(requirements.body["requirements"] as? [[String: Any]])
            let overruled = try #require(list.first { $0["id"] as? String == "8.2.6" })
            #expect(overruled["status"] as? String == "non_compliant")
            #expect(overruled["overruled_manual"] as? Bool == true)
            #expect((overruled["notes"] as? String ?? "").contains("overrules the manual compliant assessment by Jane Roe, QSA"), "\(overruled)")
            #expect((list.first { $0["id"] as? String == "8" })?["status"] as? String == "non_compliant")
            let summary = try await c.request("GET", "/api/financial/pci/compliance")
            #expect(summary.body["overruled"] as? [String] == ["8.2.6"])
            #expect(summary.body["status"] as? String == "non_compliant")
            // PCI DSS part: 12.6.1 compliant, 8.2.6 non-compliant → 50; security controls: 1 of 1 failed → 0.
            // Overall: (40 × 50 + 20 × 0) ÷ 60 = 33.33.
            let score = try #require(try await c.request("GET", "/api/financial/compliance/status").body["score"] as? [String: Any])
            #expect(score["score"] as? Double == 33.33, "\(score)")
            #expect(score["assessed_weight"] as? Int == 60)
            // Repaired: the manual compliant stands again, now backed by the check.
            try await c.database.execute("UPDATE mingus_api_keys SET revoked_at = now() WHERE name = \(idle)")
            #expect(try await c.check("api_keys_inactive").status == "passed")
            let repaired = try await c.request("GET", "/api/financial/pci/requirements")
            let again = try #require((repaired.body["requirements"] as? [[String: Any]])?.first { $0["id"] as? String == "8.2.6" })
            #expect(again["status"] as? String == "compliant")
            #expect(again["overruled_manual"] as? Bool == false)

            // Bad input names the field.
            func refused(_ path: String, _ body: [String: Any], _ status: Int, _ field: String) async throws {
                let answer = try await c.request(path.hasSuffix("checks") ? "POST" : "PUT", path, body)
                #expect(answer.status == status, "\(path) \(body): \(answer.raw)")
                #expect((answer.body["error"] as? [String: Any])?["field"] as? String == field, "\(answer.raw)")
            }
            try await refused("/api/financial/pci/requirements/3.5.1", ["assessor": "Jane"], 400, "status")
            try await refused("/api/financial/pci/requirements/3.5.1", ["status": "maybe", "assessor": "Jane"], 422, "status")
            try await refused("/api/financial/pci/requirements/3.5.1", ["status": "compliant"], 400, "assessor")
            try await refused("/api/financial/pci/requirements/3.5.1", ["status": "compliant", "assessor": "  "], 422, "assessor")
            try await refused("/api/financial/pci/requirements/3.5.1", ["status": "compliant", "assessor": "Jane", "color": "red"], 400, "color")
            try await refused("/api/financial/pci/requirements/3", ["status": "compliant", "assessor": "Jane"], 409, "id")
            try await refused("/api/financial/compliance/checks", ["checks": ["no_such_check"]], 422, "checks")
            try await refused("/api/financial/compliance/checks", ["checks": "all"], 400, "checks")
            #expect(try await c.request("PUT", "/api/financial/pci/requirements/99.1", ["status": "compliant", "assessor": "Jane"]).status == 404)
            let badFormat = try await c.request("GET", "/api/financial/compliance/report?format=xml")
            #expect(badFormat.status == 400)
            #expect((badFormat.body["error"] as? [String: Any])?["field"] as? String == "format")

            // Roles.
            let reader = try await c.cluster.key([.complianceRead]).key
            let stranger = try await c.cluster.key([Role("audit:read")]).key
            #expect(try await c.request("GET", "/api/financial/pci/requirements", key: reader).status == 200)
            #expect(try await c.request("PUT", "/api/financial/pci/requirements/12.6.1", ["status": "compliant", "assessor": "x"], key: reader).status == 403)
            #expect(try await c.request("POST", "/api/financial/compliance/checks", [:], key: reader).status == 403)
            for path in ["pci/requirements", "pci/compliance", "compliance/status", "compliance/report", "security/controls",
                         "dashboard/compliance-score", "dashboard/pci-dss", "dashboard/security-controls"] {
                #expect(try await c.request("GET", "/api/financial/\(path)", key: stranger).status == 403, "\(path)")
            }
        }
    }

    @Test("the report comes as JSON, HTML or PDF; the controls list technical, administrative and physical controls")
    func reportAndControls() async throws {
        try await ComplianceCluster.with { c in
            try await c.run(["key_cryptoperiod", "payments_settled"])
            #expect(try await c.request("PUT", "/api/financial/pci/requirements/9.2.1", ["status": "not_applicable", "assessor": "Jane Roe"]).status == 200)
            let json = try await c.request("GET", "/api/financial/compliance/report")
            try #require(json.status == 200, "\(json.raw)")
            #expect((json.body["requirements"] as? [Any])?.count == PCIRequirements.all.count)
            let html = try await c.request("GET", "/api/financial/compliance/report", headers: ["Accept": "text/html"])
            #expect(html.status == 200)
            #expect(html.raw.hasPrefix("<!DOCTYPE html>"))
            #expect(html.raw.contains("key_cryptoperiod"))
            #expect(!html.raw.contains("<script"))
            let pdf = try await c.request("GET", "/api/financial/compliance/report?format=pdf")
            #expect(pdf.status == 200)
            #expect(pdf.raw.hasPrefix("%PDF-1.4"))
            #expect(pdf.raw.contains("%%EOF"))
            #expect(pdf.raw.contains("key_cryptoperiod"))

            let controls = try await c.request("GET", "/api/financial/security/controls")
            try #require(controls.status == 200, "\(controls.raw)")
            let list = try #require(controls.body["controls"] as? [[String: Any]])
            #expect(Set(list.compactMap { $0["category"] as? String }) == ["technical", "administrative", "physical"])
            #expect(list.first { $0["id"] as? String == "TEC-key_cryptoperiod" }?["status"] as? String == "effective")
            #expect(list.first { $0["id"] as? String == "TEC-retention_sweeps" }?["status"] as? String == "not_tested")
            let facility = try #require(list.first { $0["id"] as? String == "PHY-1" })
            #expect(facility["status"] as? String == "not_applicable")
            #expect(facility["tested_by"] as? String == "Jane Roe")
            let dashboard = try await c.request("GET", "/api/financial/dashboard/security-controls")
            #expect(((dashboard.body["summary"] as? [String: Any])?["technical"] as? [String: Any])?["effective"] as? Int == 2)
            let grid = try await c.request("GET", "/api/financial/dashboard/pci-dss")
            #expect((grid.body["requirements"] as? [[String: Any]])?.first { $0["id"] as? String == "3.7.4" }?["status"] as? String == "compliant")
        }
    }
}
