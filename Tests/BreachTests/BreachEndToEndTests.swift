import Foundation
import MingusBreach
import MingusCore
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

/// A gateway and breach workers on a database and a broker virtual host of their own.
struct BreachCluster {
    let cluster: Cluster
    let key: String

    static func start(workers: Int = 1, reminders: String = "48h,24h,4h") async throws -> BreachCluster {
        let cluster = try await Cluster.start(environment: ["MINGUS_BREACH_REMINDERS": reminders], privateBroker: true)
        for _ in 0..<workers { try cluster.startWorker("mingus-breach-worker") }
        let key = try await cluster.key([.breachWrite, .breachRead]).key
        return BreachCluster(cluster: cluster, key: key)
    }

    func request(_ method: String, _ path: String, _ body: Any? = nil, headers: [String: String] = [:]) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(
            cluster.base + path, method: method,
            headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"].merging(headers) { _, new in new },
            body: try body.map { try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) })
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    /// Reports a breach and waits until the worker has stored and assessed it; returns its id.
    func report(_ fields: [String: Any]) async throws -> String {
        let answer = try await request("POST", "/api/financial/breach/report", fields)
        try #require(answer.status == 202, "\(answer.body)")
        let id = try #require(answer.body["id"] as? String)
        try #require(try await eventually { try await assessedAt(id) != nil }, "not assessed: \(cluster.output)")
        return id
    }

    func assessedAt(_ id: String) async throws -> Date? {
        try await cluster.database.query("SELECT assessed_at FROM breaches WHERE id = \(UUID(uuidString: id)!)").first?.decode(Date?.self, at: 0)
    }

    func breach(_ id: String) async throws -> [String: Any] {
        let answer = try await request("GET", "/api/financial/breach/\(id)")
        try #require(answer.status == 200, "\(answer.body)")
        return answer.body
    }

    /// The live obligations by regime.
    func obligations(_ id: String) async throws -> [String: [String: Any]] {
        let list = try await breach(id)["obligations"] as? [[String: Any]] ?? []
        return Dictionary(list.filter { ["open", "met"].contains($0["status"] as? String) }.map { ($0["regime"] as! String, $0) }) { a, _ in a }
    }

    func timeline(_ id: String, kind: String) async throws -> [String] {
        try await cluster.database.query("""
            SELECT message FROM breach_timeline WHERE breach_id = \(UUID(uuidString: id)!) AND kind = \(kind) ORDER BY id
            """).map { try $0.decode(String.self, at: 0) }
    }

    /// Runs `body` against a new cluster, then stops it (also when `body` throws).
    static func with(workers: Int = 1, reminders: String = "48h,24h,4h", _ body: (BreachCluster) async throws -> Void) async throws {
        let breach = try await start(workers: workers, reminders: reminders)
        do {
            try await body(breach)
        } catch {
            try? await breach.stop()
            throw error
        }
        try await breach.stop()
    }

    /// Stops every process; each must exit 0 but those the test killed.
    func stop() async throws {
        try await cluster.stopCleanly()
    }
}

private func iso(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle())
}

private func parse(_ value: Any?) -> Date? {
    (value as? String).flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
        ?? (value as? String).flatMap { try? Date($0, strategy: .iso8601) }
}

/// A card and personal data breach in Germany and Texas, found an hour ago.
private func cardBreach(persons: Int = 900, texas: Int = 200, awareAgo: TimeInterval = 1800) -> [String: Any] {
    [
        "title": "Card export exposed", "description": "A bucket held a customer export.", "severity": "high",
        "discovered_at": iso(Date().addingTimeInterval(-3600)), "aware_at": iso(Date().addingTimeInterval(-awareAgo)),
        "data_categories": ["personal_data", "card_data"], "data_encrypted": false, "records_affected": 1200,
        "persons_affected": persons, "jurisdictions": ["DE", "US-TX"], "persons_by_jurisdiction": ["US-TX": texas],
        "entity_roles": ["controller", "merchant"],
    ]
}

@Suite("Breach notification end to end: assessment, lifecycle, reassessment, reminders", .serialized)
struct BreachEndToEndTests {
    @Test("a report is stored and assessed: every regime that applies, deadlines as the rules compute them, and a timeline")
    func reportAndAssess() async throws {
        try await BreachCluster.with { breach in
            let id = try await breach.report(cardBreach())
            let obligations = try await breach.obligations(id)
            #expect(Set(obligations.keys) == ["gdpr_art33", "gdpr_art34", "pci_acquirer", "pci_visa", "pci_mastercard", "texas_individuals"],
                    "\(obligations.keys.sorted())")
            let view = try await breach.breach(id)
            let aware = try #require(parse(view["aware_at"]))
            #expect(parse(obligations["gdpr_art33"]?["deadline"]) == aware.addingTimeInterval(72 * 3600))
            #expect(parse(obligations["pci_mastercard"]?["deadline"]) == aware.addingTimeInterval(24 * 3600))
            #expect(obligations["gdpr_art34"]?["deadline"] is NSNull)
            #expect(obligations["texas_individuals"]?["reason"] as? String == "affects US-TX; data: card_data; data was not encrypted")
            #expect(obligations.values.allSatisfy { ($0["rules_version"] as? String)?.isEmpty == false })
            #expect(view["status"] as? String == "detected")
            #expect(view["notification_sent"] as? Bool == false)
            let kinds = (view["timeline"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(kinds.first == "reported")
            #expect(kinds.filter { $0 == "obligation_added" }.count == 6)
            // Reminders of deadlines already within a lead time are scheduled by the assessment and
            // may land in the timeline before this read; every other entry precedes "assessed".
            #expect(kinds.filter { $0 != "reminder" }.last == "assessed", "\(kinds)")
            // The list finds it by regime and not by one that does not apply.
            let listed = try await breach.request("GET", "/api/financial/breaches?regime=pci_visa&status=detected")
            #expect((listed.body["breaches"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            let none = try await breach.request("GET", "/api/financial/breaches?regime=hipaa_404")
            #expect((none.body["breaches"] as? [[String: Any]])?.isEmpty == true)

            // A retried report with its Idempotency-Key gets the first answer: one breach, stored once.
            let retried = cardBreach()
            let first = try await breach.request("POST", "/api/financial/breach/report", retried, headers: ["Idempotency-Key": "report-1"])
            let again = try await breach.request("POST", "/api/financial/breach/report", retried, headers: ["Idempotency-Key": "report-1"])
            #expect(first.status == 202 && again.status == 202)
            #expect(first.body["id"] as? String == again.body["id"] as? String)
            let reuse = try await breach.request("POST", "/api/financial/breach/report", cardBreach(persons: 901), headers: ["Idempotency-Key": "report-1"])
            #expect(reuse.status == 422 && (reuse.body["error"] as? [String: Any])?["code"] as? String == "idempotency_key_reuse")
            let retriedID = try #require(first.body["id"] as? String)
            try #require(try await eventually { try await breach.assessedAt(retriedID) != nil })
            #expect(try await breach.cluster.database.query("SELECT count(*) FROM breaches")[0].decode(Int64.self, at: 0) == 2)

            // Keyset paging, newest report first.
            let page1 = try await breach.request("GET", "/api/financial/breaches?limit=1")
            let cursor = try #require(page1.body["next_cursor"] as? String)
            let page2 = try await breach.request("GET", "/api/financial/breaches?limit=1&cursor=\(cursor)")
            #expect((page1.body["breaches"] as? [[String: Any]])?.first?["id"] as? String == retriedID)
            #expect((page2.body["breaches"] as? [[String: Any]])?.first?["id"] as? String == id)
            #expect(page2.body["next_cursor"] == nil)
        }
    }

    @Test("bad input everywhere: 400 or 422 naming the field, 404 for no such breach, nothing stored")
    func badInput() async throws {
        try await BreachCluster.with(workers: 0) { breach in
            var cases: [(body: [String: Any], status: Int, field: String, rule: String)] = []
            func with(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
                var body = cardBreach()
                change(&body)
                return body
            }
            cases.append((with { $0["severity"] = nil }, 400, "severity", "required"))
            cases.append((with { $0["colour"] = "red" }, 400, "colour", "unknown_field"))
            cases.append((with { $0["severity"] = "apocalyptic" }, 422, "severity", "enum"))
            cases.append((with { $0["title"] = "   " }, 422, "title", "required"))
            cases.append((with { $0["title"] = "a\u{0}b" }, 422, "title", "characters"))
            cases.append((with { $0["data_categories"] = ["pets"] }, 422, "data_categories", "enum"))
            cases.append((with { $0["jurisdictions"] = ["DE", "US-XX"] }, 422, "jurisdictions[1]", "format"))
            cases.append((with { $0["persons_by_jurisdiction"] = ["FR": 3] }, 422, "persons_by_jurisdiction.FR", "listed"))
            cases.append((with { $0["persons_by_jurisdiction"] = ["US-TX": 5000] }, 422, "persons_by_jurisdiction.US-TX", "range"))
            cases.append((with { $0["aware_at"] = iso(Date().addingTimeInterval(-7200)) }, 422, "aware_at", "order"))
            cases.append((with { $0["discovered_at"] = "yesterday" }, 422, "discovered_at", "format"))
            cases.append((with { $0["discovered_at"] = iso(Date().addingTimeInterval(86_400)) }, 422, "discovered_at", "not_future"))
            cases.append((with { $0["persons_affected"] = -1 }, 422, "persons_affected", "range"))
            cases.append((with { $0["data_encrypted"] = "no" }, 400, "data_encrypted", "type"))
            cases.append((with { $0["facts"] = ["Materiality": iso(Date())] }, 422, "facts.Materiality", "pattern"))
            for (index, item) in cases.enumerated() {
                let answer = try await breach.request("POST", "/api/financial/breach/report", item.body)
                let error = answer.body["error"] as? [String: Any]
                #expect(answer.status == item.status && error?["field"] as? String == item.field && error?["rule"] as? String == item.rule,
                        "case \(index): \(answer.status) \(answer.body)")
            }
            let missing = UUID().uuidString.lowercased()
            #expect(try await breach.request("GET", "/api/financial/breach/\(missing)").status == 404)
            #expect(try await breach.request("PATCH", "/api/financial/breach/\(missing)", ["persons_affected": 5]).status == 404)
            #expect(try await breach.request("PUT", "/api/financial/breach/\(missing)/status", ["status": "investigating"]).status == 404)
            #expect(try await breach.request("GET", "/api/financial/breach/not-a-uuid").status == 400)
            let status = try await breach.request("PUT", "/api/financial/breach/\(missing)/status", ["status": "done"])
            #expect(status.status == 422 && (status.body["error"] as? [String: Any])?["field"] as? String == "status")
            let list = try await breach.request("GET", "/api/financial/breaches?overdue=maybe")
            #expect(list.status == 400 && (list.body["error"] as? [String: Any])?["field"] as? String == "overdue")
            #expect(try await breach.cluster.database.query("SELECT count(*) FROM breaches")[0].decode(Int64.self, at: 0) == 0)
        }
    }

    @Test("the lifecycle refuses illegal transitions naming the allowed ones; a breach closes once its obligations are met with evidence")
    func lifecycle() async throws {
        try await BreachCluster.with { breach in
            let id = try await breach.report(cardBreach())
            let path = "/api/financial/breach/\(id)/status"
            let skip = try await breach.request("PUT", path, ["status": "closed"])
            #expect(skip.status == 409)
            #expect(((skip.body["error"] as? [String: Any])?["message"] as? String)?.hasSuffix("allowed: investigating") == true, "\(skip.body)")
            for status in ["investigating", "contained", "resolved"] {
                let answer = try await breach.request("PUT", path, ["status": status, "note": "moving on"])
                #expect(answer.status == 200 && answer.body["status"] as? String == status, "\(answer.body)")
            }
            // Another breach turns out to be a false positive: its open obligations are withdrawn.
            let other = try await breach.report(cardBreach())
            #expect(try await breach.request("PUT", "/api/financial/breach/\(other)/status", ["status": "investigating"]).status == 200)
            #expect(try await breach.request("PUT", "/api/financial/breach/\(other)/status", ["status": "false_positive"]).status == 200)
            let statuses = (try await breach.breach(other)["obligations"] as? [[String: Any]] ?? []).compactMap { $0["status"] as? String }
            #expect(statuses.count == 6 && statuses.allSatisfy { $0 == "withdrawn" }, "\(statuses)")
            #expect(try await breach.timeline(other, kind: "obligation_withdrawn").count == 6)

            let falsePositive = try await breach.request("PUT", path, ["status": "false_positive"])
            #expect(falsePositive.status == 409 && (falsePositive.body["error"] as? [String: Any])?["code"] as? String == "illegal_transition")
            let early = try await breach.request("PUT", path, ["status": "closed"])
            #expect(early.status == 409 && (early.body["error"] as? [String: Any])?["code"] as? String == "obligations_open", "\(early.body)")

            let obligations = try await breach.obligations(id)
            for (regime, obligation) in obligations.sorted(by: { $0.key < $1.key }) {
                let evidence = try await breach.request("POST", "/api/financial/breach/\(id)/obligations/\(obligation["id"]!)/evidence", [
                    "what": "Notice for \(regime)", "sent_to": obligation["notify"]!, "sent_at": iso(Date()), "reference": "ref-\(regime)",
                ])
                #expect(evidence.status == 201, "\(evidence.body)")
                if regime == "pci_acquirer" {
                    let view = try await breach.breach(id)
                    #expect(view["regulatory_reported"] as? Bool == false)
                }
            }
            let view = try await breach.breach(id)
            #expect(view["notification_sent"] as? Bool == true)
            #expect(view["regulatory_reported"] as? Bool == true)
            let closed = try await breach.request("PUT", path, ["status": "closed"])
            #expect(closed.status == 200, "\(closed.body)")
            let statusLines = try await breach.timeline(id, kind: "status")
            #expect(statusLines == ["detected → investigating: moving on", "investigating → contained: moving on",
                                    "contained → resolved: moving on", "resolved → closed"])
            let actors = try await breach.cluster.database.query("""
                SELECT DISTINCT actor FROM breach_timeline WHERE breach_id = \(UUID(uuidString: id)!) AND kind IN ('status', 'evidence')
                """).map { try $0.decode(String.self, at: 0) }
            #expect(actors.count == 1 && actors[0].hasPrefix("apikey:caller_"))
        }
    }

    @Test("new facts reassess: a threshold crossed adds an obligation, a fact starts the SEC clock, a communicated deadline is superseded, not moved")
    func reassessment() async throws {
        // Reminders 48 h ahead: an Art. 33 deadline less than 48 h away is reminded at once, which communicates it.
        try await BreachCluster.with(reminders: "48h") { breach in
            var fields = cardBreach(awareAgo: 30 * 3600)
            fields["discovered_at"] = iso(Date().addingTimeInterval(-70 * 3600))
            fields["entity_roles"] = ["controller", "merchant", "sec_registrant"]
            let id = try await breach.report(fields)
            #expect(try await breach.obligations(id)["texas_ag"] == nil)
            #expect(try await breach.obligations(id)["sec_8k_105"] == nil)
            let firstArt33 = try #require(try await breach.obligations(id)["gdpr_art33"])
            try #require(try await eventually { try await breach.obligations(id)["gdpr_art33"]?["communicated"] as? Bool == true },
                         "the first reminder did not fire: \(breach.cluster.output)")

            // 300 Texans now: the attorney general must be told (250 or more).
            let more = try await breach.request("PATCH", "/api/financial/breach/\(id)",
                                                ["persons_affected": 1000, "persons_by_jurisdiction": ["US-TX": 300], "note": "second export found"])
            #expect(more.status == 202, "\(more.body)")
            try #require(try await eventually { try await breach.obligations(id)["texas_ag"] != nil })
            let added = try await breach.timeline(id, kind: "obligation_added").last ?? ""
            #expect(added.contains("Texas") && added.contains("US-TX 300 (at least 250 in one)"), "\(added)")
            #expect(try await breach.timeline(id, kind: "changed").last?.contains("persons_affected 900 → 1000") == true)

            // The materiality determination starts the SEC clock.
            let fact = try await breach.request("POST", "/api/financial/breach/\(id)/facts", ["fact": "materiality_determined"])
            #expect(fact.status == 202)
            try #require(try await eventually { try await breach.obligations(id)["sec_8k_105"] != nil })
            #expect(try await breach.obligations(id)["sec_8k_105"]?["clock"] as? String == "fact:materiality_determined")

            // Awareness was 36 h earlier than reported (so on another calendar day): the
            // communicated Art. 33 deadline is kept on record, superseded by a new obligation.
            let earlier = try await breach.request("PATCH", "/api/financial/breach/\(id)", ["aware_at": iso(Date().addingTimeInterval(-66 * 3600))])
            #expect(earlier.status == 202)
            let moved = try await eventually { try await breach.obligations(id)["gdpr_art33"]?["id"] as? String != firstArt33["id"] as? String }
            let timelineNow = try await breach.breach(id)["timeline"] ?? ""
            try #require(moved, "\(timelineNow)\n\(breach.cluster.output)")
            let all = try await breach.breach(id)["obligations"] as? [[String: Any]] ?? []
            let old = try #require(all.first { $0["id"] as? String == firstArt33["id"] as? String })
            #expect(old["status"] as? String == "superseded")
            #expect(parse(old["deadline"]) == parse(firstArt33["deadline"]))
            let replacement = try #require(try await breach.obligations(id)["gdpr_art33"])
            #expect(old["superseded_by"] as? String == replacement["id"] as? String)
            #expect(parse(replacement["deadline"])! < parse(old["deadline"])!)
            // Deadlines nobody was told of yet (Texas: 30 days ahead, no reminder so far) move in place.
            let superseded = try await breach.timeline(id, kind: "obligation_superseded")
            #expect(superseded.contains { $0.hasPrefix("GDPR Art. 33:") && $0.contains("already communicated") }, "\(superseded)")
            let changedInPlace = try await breach.timeline(id, kind: "obligation_changed")
            #expect(!changedInPlace.contains { $0.hasPrefix("GDPR Art. 33:") })
            #expect(changedInPlace.contains { $0.hasPrefix("Texas Bus. & Com. Code 521.053(b):") }, "\(changedInPlace)")
            #expect(try await breach.timeline(id, kind: "reassessed").last?.contains("superseded gdpr_art33") == true)
        }
    }

    @Test("reminders fire once each across two workers, and after every worker was killed and restarted")
    func remindersOnce() async throws {
        try await BreachCluster.with(workers: 2) { breach in
            // Aware 72 h less 15 s ago: the Art. 33 deadline is 15 s away, so every lead time has
            // passed: one reminder now, then the overdue one at the deadline.
            var fields = cardBreach(awareAgo: 72 * 3600 - 15)
            fields["discovered_at"] = iso(Date().addingTimeInterval(-73 * 3600))
            fields["data_categories"] = ["personal_data"]
            fields["entity_roles"] = ["controller"]
            fields["jurisdictions"] = ["DE"]
            fields["persons_by_jurisdiction"] = [:]
            let id = try await breach.report(fields)
            let obligation = try #require(try await breach.obligations(id)["gdpr_art33"])
            let deadline = try #require(parse(obligation["deadline"]))
            try #require(try await eventually { try await breach.timeline(id, kind: "reminder").count == 1 })
            for worker in breach.cluster.workers { try await worker.kill9() }
            // The overdue reminder falls due while no worker runs.
            try #require(try await eventually(timeout: .seconds(30)) { Date() > deadline.addingTimeInterval(1) })
            for _ in 0..<2 { try breach.cluster.startWorker("mingus-breach-worker") }
            try #require(try await eventually { try await breach.timeline(id, kind: "reminder").count == 2 })
            // Every scheduled reminder fired and was applied once: nothing left to fire twice.
            let oid = try #require(obligation["id"] as? String)
            try #require(try await eventually {
                try await breach.cluster.database.query("""
                    SELECT count(*) FILTER (WHERE fired_at IS NULL), count(*) FROM mingus_scheduled_jobs WHERE message_id LIKE \("breach-reminder/\(oid)/%")
                    """).first.map { try $0.decode(Int64.self, at: 0) == 0 && $0.decode(Int64.self, at: 1) == 2 } ?? false
            })
            let applied = try await breach.cluster.database.query("""
                SELECT count(*) FROM mingus_inbox WHERE message_id LIKE \("breach-reminder/\(oid)/%")
                """)[0].decode(Int64.self, at: 0)
            #expect(applied == 2)
            let reminders = try await breach.timeline(id, kind: "reminder")
            #expect(reminders.count == 2)
            #expect(reminders[0].contains("within") && reminders[1].contains("overdue since"), "\(reminders)")
            let view = try await breach.breach(id)
            #expect(view["overdue"] as? Bool == true)
            let overdueList = try await breach.request("GET", "/api/financial/breaches?overdue=true")
            #expect((overdueList.body["breaches"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        }
    }
}
