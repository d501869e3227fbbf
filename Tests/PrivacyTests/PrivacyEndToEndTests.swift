import Foundation
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import Testing
import TestSupport

private func iso(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }

private func json(_ bytes: [UInt8]?) -> [String: Any] {
    bytes.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] } ?? [:]
}

/// The rows of one table of an export's `export.json`.
private func rows(_ export: [String: Any], _ table: String) -> [[String: Any]] {
    ((export["tables"] as? [String: Any])?[table] as? [String: Any])?["rows"] as? [[String: Any]] ?? []
}

private func error(_ body: [String: Any]) -> (field: String?, rule: String?) {
    let detail = body["error"] as? [String: Any]
    return (detail?["field"] as? String, detail?["rule"] as? String)
}

@Suite("GDPR end to end: consent, policies, requests and deadlines, exports, erasure", .serialized)
struct PrivacyEndToEndTests {
    @Test("consent is given and withdrawn in one call each; withdrawal stops processing; a material policy change needs renewal; cookies; bad input names the field")
    func consentLifecycle() async throws {
        try await PrivacyCluster.with { privacy in
            // No policy published yet: the version shown must be given.
            let early = try await privacy.request("POST", "/api/gdpr/consents",
                                                  ["subject_id": "user-a", "purpose": "marketing_email", "granted": true, "source": "signup"])
            #expect(early.status == 422 && error(early.body).field == "policy_version", "\(early.raw)")
            let v1 = try await privacy.publishPolicy()
            let given = try await privacy.request("POST", "/api/gdpr/consents",
                                                  ["subject_id": "user-a", "purpose": "marketing_email", "granted": true, "source": "signup"])
            #expect(given.status == 201 && given.body["policy_version"] as? Int == v1, "\(given.raw)")
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "signup"])
            let check = try await privacy.request("GET", "/api/gdpr/consents/user-a/check?purpose=marketing_email")
            #expect(check.body["allowed"] as? Bool == true && check.body["reason"] as? String == "consent_given", "\(check.raw)")
            // What another domain calls before processing.
            #expect(try await ConsentLedger.mayProcess("user-a", for: "marketing_email", on: privacy.cluster.database).allowed)

            let withdrawn = try await privacy.request("POST", "/api/gdpr/consents",
                                                      ["subject_id": "user-a", "purpose": "marketing_email", "granted": false, "source": "settings_page"])
            #expect(withdrawn.status == 201 && withdrawn.body["state"] as? String == "withdrawn")
            let refused = try await ConsentLedger.mayProcess("user-a", for: "marketing_email", on: privacy.cluster.database)
            #expect(!refused.allowed && refused.reason == "consent_withdrawn")
            #expect(try await ConsentLedger.mayProcess("user-a", for: "marketing_sms", on: privacy.cluster.database).reason == "no_consent")
            #expect(try await ConsentLedger.mayProcess("user-a", for: "no_such_purpose", on: privacy.cluster.database).reason == "unknown_purpose")

            // The history keeps both entries, oldest first; the state is the latest.
            let history = try await privacy.request("GET", "/api/gdpr/consents/user-a/history")
            let events = history.body["events"] as? [[String: Any]] ?? []
            #expect(events.filter { $0["purpose"] as? String == "marketing_email" }.map { $0["granted"] as? Bool } == [true, false])
            // The ledger is append-only.
            await #expect(throws: (any Error).self) {
                try await privacy.cluster.database.execute("UPDATE privacy_consent_events SET granted = true WHERE subject_id = 'user-a'")
            }
            await #expect(throws: (any Error).self) {
                try await privacy.cluster.database.execute("DELETE FROM privacy_consent_events WHERE subject_id = 'user-a'")
            }

            // A material change: the analytics consent given under v1 needs renewal, and stops processing until renewed.
            let draft = try await privacy.request("POST", "/api/gdpr/policies", ["kind": "privacy", "title": "Policy v2", "body": "New partner sharing.", "material": true])
            let v2 = try #require(draft.body["version"] as? Int)
            let published = try await privacy.request("POST", "/api/gdpr/policies/privacy/\(v2)/publish")
            #expect(published.status == 200 && published.body["consents_needing_renewal"] as? Int == 1 && published.body["retired_version"] as? Int == v1,
                    "\(published.raw)")
            let states = try await privacy.request("GET", "/api/gdpr/consents/user-a").body["consents"] as? [[String: Any]] ?? []
            let analytics = try #require(states.first { $0["purpose"] as? String == "analytics" })
            #expect(analytics["state"] as? String == "given" && analytics["needs_renewal"] as? Bool == true)
            #expect(try await ConsentLedger.mayProcess("user-a", for: "analytics", on: privacy.cluster.database).reason == "renewal_needed")
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "renewal_banner"])
            #expect(try await ConsentLedger.mayProcess("user-a", for: "analytics", on: privacy.cluster.database).allowed)
            #expect(try await privacy.request("POST", "/api/gdpr/policies/privacy/\(v2)/publish").status == 409)

            // Purposes are data.
            let added = try await privacy.request("POST", "/api/gdpr/purposes", ["purpose": "product_research", "description": "Interviews"])
            #expect(added.status == 201)
            #expect(try await privacy.request("POST", "/api/gdpr/consents",
                                              ["subject_id": "user-a", "purpose": "product_research", "granted": true, "source": "email"]).status == 201)

            // Cookies: the banner, a choice (strictly necessary always in), its state.
            let banner = try await privacy.request("GET", "/api/gdpr/cookies/banner")
            #expect((banner.body["categories"] as? [[String: Any]])?.compactMap { $0["category"] as? String }
                    == ["strictly_necessary", "functional", "analytics", "marketing"])
            _ = try await privacy.publishPolicy(kind: "cookie")
            let cookies = try await privacy.request("POST", "/api/gdpr/cookies/consents", ["visitor_id": "v-1", "categories": ["analytics"], "source": "banner"])
            #expect(cookies.status == 201 && cookies.body["categories"] as? [String] == ["strictly_necessary", "analytics"], "\(cookies.raw)")
            #expect(try await privacy.request("GET", "/api/gdpr/cookies/consents/v-1").body["categories"] as? [String] == ["strictly_necessary", "analytics"])
            #expect(try await privacy.request("GET", "/api/gdpr/cookies/consents/v-unknown").status == 404)

            // Bad input names the field.
            let cases: [([String: Any], Int, String, String)] = [
                (["purpose": "analytics", "granted": true, "source": "x"], 400, "subject_id", "required"),
                (["subject_id": "user a", "purpose": "analytics", "granted": true, "source": "x"], 422, "subject_id", "format"),
                (["subject_id": "user-a", "purpose": "unknown_thing", "granted": true, "source": "x"], 422, "purpose", "unknown"),
                (["subject_id": "user-a", "purpose": "analytics", "granted": "yes", "source": "x"], 400, "granted", "type"),
                (["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "  "], 422, "source", "required"),
                (["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "x", "extra": 1], 400, "extra", "unknown_field"),
                (["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "x", "policy_version": 99], 422, "policy_version", "unknown"),
                (["subject_id": "user-a", "purpose": "analytics", "granted": true, "source": "x", "occurred_at": iso(Date().addingTimeInterval(86_400))],
                 422, "occurred_at", "not_future"),
            ]
            for (body, status, field, rule) in cases {
                let answer = try await privacy.request("POST", "/api/gdpr/consents", body)
                #expect(answer.status == status && error(answer.body).field == field && error(answer.body).rule == rule, "\(body): \(answer.raw)")
            }
            let badCookie = try await privacy.request("POST", "/api/gdpr/cookies/consents", ["visitor_id": "v-2", "categories": ["tracking"], "source": "banner"])
            #expect(badCookie.status == 422 && error(badCookie.body).field == "categories")
            let badCheck = try await privacy.request("GET", "/api/gdpr/consents/user-a/check?purpose=Bad-Name")
            #expect(badCheck.status == 400 && error(badCheck.body).field == "purpose")

            let dashboard = try await privacy.request("GET", "/api/gdpr/dashboard")
            let rates = dashboard.body["consent_rates"] as? [[String: Any]] ?? []
            #expect(rates.first { $0["purpose"] as? String == "marketing_email" }?["withdrawn"] as? Int == 1)
            #expect(rates.first { $0["purpose"] as? String == "analytics" }?["rate"] as? Double == 1.0)
        }
    }

    @Test("requests: one-month deadline, reminders and overdue alerts through the scheduler, one two-month extension with its reason, history, bad input")
    func deadlines() async throws {
        try await PrivacyCluster.with { privacy in
            // Received a month less two days ago: the 7- and 3-day lead times have passed, so one
            // reminder fires at once ("within 3 d"); the 1-day one and the overdue one are ahead.
            let received = Calendar(identifier: .gregorian).date(byAdding: .month, value: -1, to: Date())!.addingTimeInterval(2 * 86_400)
            let filed = try await privacy.request("POST", "/api/gdpr/requests", ["subject_id": "user-d", "type": "rectification", "received_at": iso(received)])
            try #require(filed.status == 201, "\(filed.raw)")
            let id = try #require(filed.body["id"] as? String)
            let due = try #require((filed.body["due_at"] as? String).flatMap(APITimeParse.parse))
            #expect(due == RequestDeadlines().due(receivedAt: try #require(APITimeParse.parse(iso(received)))))
            #expect(filed.body["overdue"] as? Bool == false)
            func history(_ id: String) async throws -> [[String: Any]] {
                try await privacy.request("GET", "/api/gdpr/requests/\(id)").body["history"] as? [[String: Any]] ?? []
            }
            try #require(try await eventually { try await history(id).contains { $0["kind"] as? String == "reminder" } }, "\(privacy.cluster.output)")
            let reminder = try #require(try await history(id).first { $0["kind"] as? String == "reminder" })
            #expect((reminder["note"] as? String)?.contains("within 3 d") == true, "\(reminder)")
            // Its alert went out through the outbox with a UUID id, to the alerts worker's queue.
            let scheduled = try await privacy.cluster.database.query("""
                SELECT count(*) FILTER (WHERE fired_at IS NULL), count(*) FROM mingus_scheduled_jobs WHERE message_id LIKE \("privacy-reminder/\(id)/%")
                """)[0]
            #expect(try scheduled.decode(Int64.self, at: 0) == 2 && scheduled.decode(Int64.self, at: 1) == 3)

            // Extension: two further months from the original deadline, once, with the reason.
            let extended = try await privacy.request("POST", "/api/gdpr/requests/\(id)/extend", ["reason": "Complex: three processors hold data"])
            #expect(extended.status == 200, "\(extended.raw)")
            let newDue = try #require((extended.body["due_at"] as? String).flatMap(APITimeParse.parse))
            #expect(newDue == RequestDeadlines().extended(originalDue: due))
            #expect(extended.body["extension_reason"] as? String == "Complex: three processors hold data")
            let again = try await privacy.request("POST", "/api/gdpr/requests/\(id)/extend", ["reason": "more"])
            #expect(again.status == 409 && (again.body["error"] as? [String: Any])?["code"] as? String == "already_extended")
            let rescheduled = try await privacy.cluster.database.query("""
                SELECT count(*) FROM mingus_scheduled_jobs WHERE message_id LIKE \("privacy-reminder/\(id)/\(Int(newDue.timeIntervalSince1970))/%")
                """)[0].decode(Int64.self, at: 0)
            #expect(rescheduled == 4)

            // Received 40 days ago: overdue at once, and the overdue alert fires.
            let late = try await privacy.request("POST", "/api/gdpr/requests",
                                                 ["subject_id": "user-d", "type": "objection", "purposes": ["marketing_sms"], "received_at": iso(Date().addingTimeInterval(-40 * 86_400))])
            let lateID = try #require(late.body["id"] as? String)
            #expect(late.body["overdue"] as? Bool == true)
            try #require(try await eventually { try await history(lateID).contains { ($0["note"] as? String)?.hasPrefix("overdue since") == true } })
            let overdue = try await privacy.request("GET", "/api/gdpr/requests?overdue=true")
            #expect((overdue.body["requests"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [lateID])

            // A rectification completes by hand once verified; not before.
            #expect(try await privacy.request("PUT", "/api/gdpr/requests/\(id)/status", ["status": "completed", "note": "fixed"]).status == 409)
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(id)/verify", ["method": "document_check"]).status == 200)
            let closed = try await privacy.request("PUT", "/api/gdpr/requests/\(id)/status", ["status": "completed", "note": "Address corrected"])
            #expect(closed.status == 200 && closed.body["status"] as? String == "completed")
            let kinds = (closed.body["history"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(kinds.first == "received" && kinds.contains("extended") && kinds.contains("identity_verified") && kinds.last == "completed", "\(kinds)")
            // A reminder for a closed request does nothing; one for a moved deadline neither.
            let dashboard = try await privacy.request("GET", "/api/gdpr/dashboard")
            #expect(dashboard.body["overdue"] as? Int == 1, "\(dashboard.raw)")

            // Bad input names the field.
            let bad: [([String: Any], Int, String, String)] = [
                (["subject_id": "user-d", "type": "deletion"], 422, "type", "enum"),
                (["type": "access"], 400, "subject_id", "required"),
                (["subject_id": "user-d", "type": "access", "received_at": "yesterday"], 422, "received_at", "format"),
                (["subject_id": "user-d", "type": "access", "received_at": iso(Date().addingTimeInterval(3600))], 422, "received_at", "not_future"),
                (["subject_id": "user-d", "type": "access", "received_at": iso(Date().addingTimeInterval(-400 * 86_400))], 422, "received_at", "range"),
            ]
            for (body, status, field, rule) in bad {
                let answer = try await privacy.request("POST", "/api/gdpr/requests", body)
                #expect(answer.status == status && error(answer.body).field == field && error(answer.body).rule == rule, "\(body): \(answer.raw)")
            }
            let badVerify = try await privacy.request("POST", "/api/gdpr/requests/\(lateID)/verify", ["method": "trust_me"])
            #expect(badVerify.status == 422 && error(badVerify.body).field == "method")
            #expect(try await privacy.request("GET", "/api/gdpr/requests/\(UUID().uuidString.lowercased())").status == 404)
        }
    }
}

/// RFC 3339 parsing as the API writes times.
enum APITimeParse {
    static func parse(_ text: String) -> Date? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))) ?? (try? Date(text, strategy: .iso8601))
    }
}
