import Foundation
import MingusBreach
import MingusHTTP
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import Testing
import TestSupport

/// A request with its own API key.
private func call(_ cluster: Cluster, _ key: String, _ method: String, _ path: String, _ body: Any? = nil) async throws
    -> (status: Int, body: [String: Any], raw: String) {
    let answer = try await httpRequest(cluster.base + path, method: method, headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                       body: try body.map { try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) })
    return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body)
}

private func records(_ answer: (status: Int, body: [String: Any], raw: String)) -> [[String: Any]] {
    answer.body["records"] as? [[String: Any]] ?? []
}

private func errorDetail(_ body: [String: Any]) -> [String: Any] { body["error"] as? [String: Any] ?? [:] }

@Suite("HIPAA: Safe Harbor de-identification")
struct SafeHarborTests {
    /// One row holding every identifier kind, and the columns that classify it.
    static let columns: [String: IdentifierKind] = [
        "name": .name, "street": .geographic, "zip": .zip, "admitted": .date, "born": .birthDate, "age": .age, "phone": .phone, "fax": .fax,
        "email": .email, "ssn": .ssn, "mrn": .medicalRecord, "plan": .healthPlan, "account": .account, "licence": .license, "plate": .vehicle,
        "pacemaker": .device, "site": .url, "ip": .ip, "fingerprint": .biometric, "photo": .photo, "badge": .otherId, "amount": .keep,
        "codes": .keep, "note": .text,
    ]
    static let row: [String: JSONValue] = [
        "name": .string("Ann Example"), "street": .string("12 Elm Street, Springfield"), "zip": .string("10001-1234"), "admitted": .string("2025-03-14"),
        "born": .string("1931-07-01"), "age": .integer(95), "phone": .string("+1 212 555 0101"), "fax": .string("212-555-0199"),
        "email": .string("ann@example.com"), "ssn": .string("123-45-6789"), "mrn": .string("MRN-0042"), "plan": .string("HP-77"),
        "account": .string("ACC-9"), "licence": .string("D1234567"), "plate": .string("NY-ABC123"), "pacemaker": .string("SN-556677"),
        "site": .string("https://ann.example.com"), "ip": .string("192.0.2.7"), "fingerprint": .string("minutiae:ab12"), "photo": .string("photo-1.jpg"),
        "badge": .string("B-1"), "amount": .integer(4500), "codes": .array([.string("Z00.00")]),
        "note": .string("Seen 2025-03-14; call 212-555-0101 or ann@example.com, SSN 123-45-6789, from 192.0.2.7 via https://x.example/a, ZIP 10001"),
    ]

    @Test("every one of the 18 identifier kinds is removed or generalised; ZIPs to three digits or 000; dates to the year; ages over 89 to 90+")
    func anonymizedFixture() throws {
        let deidentifier = Deidentifier(columns: Self.columns, referenceYear: 2026)
        let out = try deidentifier.apply(Self.row, level: .anonymized)
        // Removed: names, geography below a state, phone, fax, e-mail, SSN, record, plan, account
        // and licence numbers, vehicle and device identifiers, URLs, IPs, biometrics, photos, other codes.
        for column in ["name", "street", "phone", "fax", "email", "ssn", "mrn", "plan", "account", "licence", "plate", "pacemaker", "site", "ip",
                       "fingerprint", "photo", "badge"] {
            #expect(out[column] == nil, "\(column) survived")
        }
        #expect(out["zip"] == .string("100"))
        #expect(out["admitted"] == .integer(2025))
        #expect(out["born"] == .string("90+"))       // born 1931: 95 in 2026, the year would reveal it
        #expect(out["age"] == .string("90+"))
        #expect(out["amount"] == .integer(4500) && out["codes"] == .array([.string("Z00.00")]))
        guard case .string(let note)? = out["note"] else { Issue.record("note missing"); return }
        for secret in ["2025-03-14", "212-555-0101", "ann@example.com", "123-45-6789", "192.0.2.7", "https://x.example", "10001"] {
            #expect(!note.contains(secret), "\(secret) left in \(note)")
        }
        #expect(note.contains("2025"))

        // The three-digit rule: each restricted area becomes 000, its neighbours keep their digits.
        for zip3 in ["036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884", "890", "893"] {
            #expect(deidentifier.anonymize(["zip": .string(zip3 + "42")])["zip"] == .string("000"), "\(zip3)")
        }
        #expect(deidentifier.anonymize(["zip": .string("03701")])["zip"] == .string("037"))
        #expect(deidentifier.anonymize(["zip": .string("1234")])["zip"] == .null)
        // Ages: 89 stays, 90 folds; a birth year 89 years back stays.
        #expect(deidentifier.anonymize(["age": .integer(89)])["age"] == .integer(89))
        #expect(deidentifier.anonymize(["age": .string("90")])["age"] == .string("90+"))
        #expect(deidentifier.anonymize(["born": .string("1937-01-01")])["born"] == .integer(1937))
        #expect(deidentifier.anonymize(["born": .string("1936-12-31")])["born"] == .string("90+"))
    }

    @Test("aggregated: counts per group after Safe Harbor, small cells suppressed")
    func aggregated() {
        let deidentifier = Deidentifier(columns: ["zip": .zip, "name": .name, "amount": .keep], referenceYear: 2026)
        let rows: [[String: JSONValue]] = (0..<12).map { ["zip": .string("10001"), "name": .string("n\($0)"), "amount": .integer(1)] }
            + (0..<3).map { ["zip": .string("03601"), "name": .string("m\($0)"), "amount": .integer(1)] }
        let cells = deidentifier.aggregate(rows, groupBy: ["zip"], minimumCell: 11)
        #expect(cells.contains { $0.group == ["zip": .string("100")] && $0.count == 12 && !$0.suppressed })
        #expect(cells.contains { $0.group == ["zip": .string("000")] && $0.count == nil && $0.suppressed })
    }
}

@Suite("HIPAA end to end: minimum necessary, consent, break-glass, accounting, violations", .serialized)
struct HealthEndToEndTests {
    @Test("fields per role; tracking refused without consent, then accepted; every access in the accounting; erasure covers health records")
    func visibilityConsentAccounting() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            _ = try await privacy.publishPolicy()
            let writer = try await cluster.key([.hipaaWrite, .hipaaAudit])
            let billing = try await cluster.key([.hipaaRead, .hipaaBilling]).key
            let clinical = try await cluster.key([.hipaaRead, .hipaaClinical]).key
            let reader = try await cluster.key([.hipaaRead]).key
            let subject = "patient-1"

            // Tracking needs consent: refused, with the reason and the field.
            let tracking: [String: Any] = ["subject_id": subject, "kind": "tracking", "service_date": "2026-11-01", "measurements": ["weight_kg": 71.5],
                                           "notes": "dizzy after exercise"]
            let refused = try await call(cluster, writer.key, "POST", "/api/hipaa/records", tracking)
            #expect(refused.status == 409 && errorDetail(refused.body)["code"] as? String == "consent_refused"
                    && errorDetail(refused.body)["rule"] as? String == "no_consent", "\(refused.raw)")
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": subject, "purpose": "health_tracking", "granted": true, "source": "app"])
            let accepted = try await call(cluster, writer.key, "POST", "/api/hipaa/records", tracking)
            #expect(accepted.status == 201, "\(accepted.raw)")
            let expense = try await call(cluster, writer.key, "POST", "/api/hipaa/records",
                                         ["subject_id": subject, "kind": "expense", "service_date": "2026-11-02", "amount_minor": 4500, "currency": "USD",
                                          "codes": ["Z00.00", "99213"], "provider": "Dr. Example", "notes": "annual check-up"])
            #expect(expense.status == 201, "\(expense.raw)")
            // Sealed at rest: the notes are not in the row.
            let stored = try await cluster.database.query("SELECT sealed FROM health_records WHERE subject_id = \(subject)")
            for row in stored { #expect(!String(decoding: try row.decode([UInt8].self, at: 0), as: UTF8.self).contains("annual")) }

            // Minimum necessary per role.
            let path = "/api/hipaa/subjects/\(subject)/records?purpose=payment"
            let byBilling = records(try await call(cluster, billing, "GET", path))
            let billed = try #require(byBilling.first { $0["kind"] as? String == "expense" })
            #expect(billed["amount_minor"] as? Int == 4500 && (billed["codes"] as? [String]) == ["Z00.00", "99213"] && billed["notes"] == nil)
            #expect((billed["withheld_fields"] as? [String])?.contains("notes") == true)
            let byClinical = records(try await call(cluster, clinical, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=treatment"))
            #expect(byClinical.count == 2 && byClinical.allSatisfy { $0["notes"] != nil } && byClinical.allSatisfy { ($0["withheld_fields"] as? [String]) == [] })
            let byReader = records(try await call(cluster, reader, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=health_care_operations"))
            #expect(byReader.count == 2 && byReader.allSatisfy { $0["service_date"] != nil && $0["amount_minor"] == nil && $0["notes"] == nil && $0["measurements"] == nil })
            let noWhy = try await call(cluster, billing, "GET", "/api/hipaa/subjects/\(subject)/records")
            #expect(noWhy.status == 400 && errorDetail(noWhy.body)["field"] as? String == "purpose")

            // Consent withdrawn: the tracking entry is no longer read.
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": subject, "purpose": "health_tracking", "granted": false, "source": "app"])
            let withdrawn = try await call(cluster, clinical, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=treatment")
            #expect(withdrawn.status == 409 && errorDetail(withdrawn.body)["rule"] as? String == "consent_withdrawn", "\(withdrawn.raw)")

            let disclosed = try await call(cluster, writer.key, "POST", "/api/hipaa/subjects/\(subject)/disclosures",
                                           ["recipient": "State health department", "purpose": "public_health", "description": "reportable condition"])
            #expect(disclosed.status == 201, "\(disclosed.raw)")

            // The accounting has every access: 3 writes (one refused), 4 reads (one refused), 1 disclosure.
            let accounting = try await call(cluster, writer.key, "GET", "/api/hipaa/subjects/\(subject)/disclosures")
            #expect(accounting.status == 200, "\(accounting.raw)")
            let entries = accounting.body["entries"] as? [[String: Any]] ?? []
            func count(_ kind: String, _ outcome: String) -> Int { entries.filter { $0["kind"] as? String == kind && $0["outcome"] as? String == outcome }.count }
            #expect(count("write", "success") == 2 && count("write", "denied") == 1, "\(entries)")
            #expect(count("read", "success") == 3 && count("read", "denied") == 1, "\(entries)")
            #expect(count("disclosure", "success") == 1)
            #expect(entries.allSatisfy { ($0["actor"] as? String)?.hasPrefix("apikey:") == true && $0["why"] != nil }, "\(entries)")
            let disclosure = try #require(entries.first { $0["kind"] as? String == "disclosure" })
            #expect(disclosure["recipient"] as? String == "State health department" && disclosure["why"] as? String == "public_health")
            let onlyDisclosures = try await call(cluster, writer.key, "GET", "/api/hipaa/subjects/\(subject)/disclosures?kind=disclosure")
            #expect((onlyDisclosures.body["entries"] as? [[String: Any]])?.count == 1)
            // Roles: a reader cannot see the accounting.
            #expect(try await call(cluster, reader, "GET", "/api/hipaa/subjects/\(subject)/disclosures").status == 403)

            // A GDPR erasure deletes the records and destroys the key they were sealed under.
            let erasure = try await privacy.fileAndVerify(subject, type: "erasure")
            let done = try await privacy.completed(erasure)
            #expect((done["result"] as? [String: Any])?["health_records"] as? String == "deleted 2", "\(done)")
            #expect(try await cluster.database.query("SELECT count(*) FROM health_records WHERE subject_id = \(subject)")[0].decode(Int64.self, at: 0) == 0)
        }
    }

    @Test("break-glass needs a reason, shows every field for a limited time, and each grant and use alerts the security channel")
    func breakGlass() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            // The alerts worker stores the alerts; it routes them nowhere.
            let config = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
            try "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n".write(to: config, atomically: true, encoding: .utf8)
            try cluster.startWorker("mingus-alerts-worker", environment: ["MINGUS_ALERTING_CONFIG": config.path])
            let writer = try await cluster.key([.hipaaWrite, .hipaaAudit]).key
            let reader = try await cluster.key([.hipaaRead])
            let subject = "patient-2"
            let created = try await call(cluster, writer, "POST", "/api/hipaa/records",
                                         ["subject_id": subject, "kind": "expense", "amount_minor": 100, "currency": "USD", "notes": "allergy: penicillin"])
            #expect(created.status == 201, "\(created.raw)")
            let noReason = try await call(cluster, reader.key, "POST", "/api/hipaa/break-glass", ["subject_id": subject, "reason": "now"])
            #expect(noReason.status == 422 && errorDetail(noReason.body)["field"] as? String == "reason")
            let tooLong = try await call(cluster, reader.key, "POST", "/api/hipaa/break-glass", ["subject_id": subject, "reason": "unconscious in the ER", "minutes": 600])
            #expect(tooLong.status == 422 && errorDetail(tooLong.body)["field"] as? String == "minutes")

            let before = records(try await call(cluster, reader.key, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=emergency"))
            #expect(before.first?["notes"] == nil)
            let grant = try await call(cluster, reader.key, "POST", "/api/hipaa/break-glass", ["subject_id": subject, "reason": "unconscious in the ER", "minutes": 30])
            #expect(grant.status == 201, "\(grant.raw)")
            let grantID = try #require(grant.body["id"] as? String).lowercased()
            let during = try await call(cluster, reader.key, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=emergency")
            #expect(during.body["break_glass"] as? Bool == true && records(during).first?["notes"] as? String == "allergy: penicillin", "\(during.raw)")

            // The grant and the read each reached the alerts worker, labelled for the security channel.
            let alerted = try await eventually(timeout: .seconds(60)) {
                try await cluster.database.query("""
                    SELECT count(*) FROM alerts WHERE labels->>'grant_id' = \(grantID) AND labels->>'team' = 'security' AND severity = 'high'
                      AND title IN ('Break-glass access granted', 'Break-glass access used')
                    """)[0].decode(Int64.self, at: 0) == 2
            }
            #expect(alerted, "\(cluster.output)")

            // Expired: back to the profile's fields.
            try await cluster.database.execute("UPDATE health_break_glass SET granted_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'")
            let after = records(try await call(cluster, reader.key, "GET", "/api/hipaa/subjects/\(subject)/records?purpose=emergency"))
            #expect(after.count == 1 && after.first?["notes"] == nil)

            // The scan flags the use for review; it is not a breach.
            #expect(try await call(cluster, writer, "POST", "/api/hipaa/violations/scan").status == 202)
            var flagged: [[String: Any]] = []
            let found = try await eventually(timeout: .seconds(60)) {
                flagged = try await call(cluster, writer, "GET", "/api/hipaa/violations?rule=break_glass").body["violations"] as? [[String: Any]] ?? []
                return !flagged.isEmpty
            }
            #expect(found, "\(cluster.output)")
            #expect(flagged.first?["is_breach"] as? Bool == false && flagged.first?["risk_level"] as? String == "low")
        }
    }

    @Test("a bulk read beyond the role's norm becomes a breach in the breach worker, with the HIPAA obligations and their deadlines, and each finding a security incident")
    func violationBecomesBreach() async throws {
        try await PrivacyCluster.with(environment: ["MINGUS_HIPAA_BULK_NORM": "3"]) { privacy in
            let cluster = privacy.cluster
            try cluster.startWorker("mingus-breach-worker")
            try cluster.startWorker("mingus-security-worker")
            let writer = try await cluster.key([.hipaaWrite, .hipaaAudit, .breachRead]).key
            let reader = try await cluster.key([.hipaaRead, .hipaaBilling])
            for n in 0..<5 {
                let created = try await call(cluster, writer, "POST", "/api/hipaa/records",
                                             ["subject_id": "patient-\(n % 2)", "kind": "expense", "amount_minor": 100 + n, "currency": "USD"])
                #expect(created.status == 201, "\(created.raw)")
            }
            for n in 0..<2 {
                let read = try await call(cluster, reader.key, "GET", "/api/hipaa/subjects/patient-\(n)/records?purpose=payment")
                #expect(read.status == 200)
            }
            #expect(try await call(cluster, writer, "POST", "/api/hipaa/violations/scan").status == 202)
            var bulk: [String: Any] = [:]
            let found = try await eventually(timeout: .seconds(60)) {
                let list = try await call(cluster, writer, "GET", "/api/hipaa/violations?rule=bulk_read").body["violations"] as? [[String: Any]] ?? []
                bulk = list.first ?? [:]
                return bulk["breach_id"] != nil
            }
            try #require(found, "\(cluster.output)")
            #expect(bulk["actor"] as? String == "apikey:\(reader.name)" && bulk["records"] as? Int == 5 && bulk["is_breach"] as? Bool == true)
            let risk = try #require(bulk["risk"] as? [String: Any])
            for factor in ["nature_and_extent", "unauthorized_person", "acquired_or_viewed", "mitigation"] {
                #expect((risk[factor] as? [String: Any])?["rating"] != nil, "\(factor)")
            }
            // Reading without a relationship is a finding of its own.
            let noBasis = try await call(cluster, writer, "GET", "/api/hipaa/violations?rule=no_basis").body["violations"] as? [[String: Any]] ?? []
            #expect(noBasis.count == 1)
            // Each new finding is a hipaa_violation detection: an incident per rule and actor, with the HIPAA
            // playbook (an after-hours finding too, depending on the hour the test runs).
            var incidents: [(String, String, String?)] = []
            let opened = try await eventually(timeout: .seconds(60)) {
                incidents = try await cluster.database.query("""
                    SELECT dedup_key, severity, playbook FROM security_incidents
                    WHERE kind = 'hipaa_violation' AND dedup_key NOT LIKE 'hipaa_violation:after_hours:%' ORDER BY dedup_key
                    """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(String?.self, at: 2)) }
                return incidents.count == 2
            }
            try #require(opened, "\(incidents)\n\(cluster.output)")
            #expect(incidents.map(\.0) == ["hipaa_violation:bulk_read:apikey:\(reader.name)", "hipaa_violation:no_basis:apikey:\(reader.name)"])
            #expect(incidents.allSatisfy { $0.2 == "hipaa_violation" })
            #expect(incidents[0].1 == (bulk["risk_level"] as? String ?? ""), "the incident's severity is the finding's risk")

            let breachID = try #require(bulk["breach_id"] as? String)
            var breach: [String: Any] = [:]
            let stored = try await eventually(timeout: .seconds(60)) {
                let answer = try await call(cluster, writer, "GET", "/api/financial/breach/\(breachID)")
                breach = answer.body
                return answer.status == 200
            }
            try #require(stored, "\(cluster.output)")
            let obligations = breach["obligations"] as? [[String: Any]] ?? []
            let individuals = try #require(obligations.first { $0["regime"] as? String == "hipaa_404" }, "\(breach)")
            let discovered = try #require(APITime.parse(breach["discovered_at"] as? String ?? ""))
            let deadline = try #require(APITime.parse(individuals["deadline"] as? String ?? ""))
            #expect(deadline > discovered.addingTimeInterval(59 * 86_400) && deadline < discovered.addingTimeInterval(61 * 86_400))
            #expect(obligations.contains { $0["regime"] as? String == "hipaa_408_annual" })
            // Scanning again opens nothing more.
            #expect(try await call(cluster, writer, "POST", "/api/hipaa/violations/scan").status == 202)
            let dashboard = try await call(cluster, writer, "GET", "/api/hipaa/dashboard")
            #expect(dashboard.status == 200 && dashboard.body["records"] as? Int == 5, "\(dashboard.raw)")
        }
    }

    @Test("pseudonymized tokens are deterministic and open only with the key; aggregated suppresses small cells; bad input names the field")
    func deidentifyRoute() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            let reader = try await cluster.key([.hipaaRead]).key
            let rows: [[String: Any]] = [["name": "Ann Example", "zip": "10001", "amount": 1], ["name": "Ann Example", "zip": "03601", "amount": 2]]
            let pseudo = try await call(cluster, reader, "POST", "/api/hipaa/deidentify",
                                        ["level": "pseudonymized", "columns": ["name": "name", "zip": "zip", "amount": "keep"], "rows": rows])
            #expect(pseudo.status == 200, "\(pseudo.raw)")
            let out = pseudo.body["rows"] as? [[String: Any]] ?? []
            let token = try #require(out.first?["name"] as? String)
            #expect(token.hasPrefix("tok_") && out.last?["name"] as? String == token && out.first?["zip"] as? String == "10001")
            #expect(Deidentifier.reveal(token, kind: .name, keyring: try await cluster.keyring()) == "Ann Example")
            let anonymous = try await call(cluster, reader, "POST", "/api/hipaa/deidentify",
                                           ["level": "anonymized", "columns": ["name": "name", "zip": "zip", "amount": "keep"], "rows": rows])
            #expect((anonymous.body["rows"] as? [[String: Any]])?.map { $0["zip"] as? String } == ["100", "000"])
            let grouped = try await call(cluster, reader, "POST", "/api/hipaa/deidentify",
                                         ["level": "aggregated", "columns": ["name": "name", "zip": "zip", "amount": "keep"], "rows": rows, "group_by": ["zip"],
                                          "minimum_cell": 2])
            #expect(grouped.body["suppressed_groups"] as? Int == 2, "\(grouped.raw)")
            let unclassified = try await call(cluster, reader, "POST", "/api/hipaa/deidentify", ["level": "anonymized", "columns": ["name": "name"], "rows": rows])
            #expect(unclassified.status == 422 && errorDetail(unclassified.body)["field"] as? String == "columns")
            let badLevel = try await call(cluster, reader, "POST", "/api/hipaa/deidentify", ["level": "secret", "columns": [:], "rows": []])
            #expect(badLevel.status == 422 && errorDetail(badLevel.body)["field"] as? String == "level")
        }
    }
}
