import Foundation
import MingusPostgres
import MingusPrivacy
import Testing
import TestSupport

private func error(_ body: [String: Any]) -> (field: String?, rule: String?) {
    let detail = body["error"] as? [String: Any]
    return (detail?["field"] as? String, detail?["rule"] as? String)
}

@Suite("GDPR objections and restrictions act once upheld", .serialized)
struct PrivacyObjectionTests {
    @Test("an upheld objection stops processing for its purposes, consent-based or not, and withdraws the consent; a restriction stops all processing until lifted; bad input names the field")
    func objectionAndRestriction() async throws {
        try await PrivacyCluster.with { privacy in
            let db = privacy.cluster.database
            _ = try await privacy.publishPolicy()
            let added = try await privacy.request("POST", "/api/gdpr/purposes",
                                                  ["purpose": "fraud_scoring", "description": "Scoring payments for fraud", "legal_basis": "legitimate_interests"])
            #expect(added.status == 201, "\(added.raw)")
            for purpose in ["marketing_email", "analytics"] {
                let given = try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": "user-o", "purpose": purpose, "granted": true, "source": "signup"])
                #expect(given.status == 201, "\(given.raw)")
            }
            #expect(try await ConsentLedger.mayProcess("user-o", for: "fraud_scoring", on: db).reason == "not_consent_based")

            // Bad input: an objection must name known purposes; other types take none.
            let missing = try await privacy.request("POST", "/api/gdpr/requests", ["subject_id": "user-o", "type": "objection"])
            #expect(missing.status == 422 && error(missing.body).field == "purposes" && error(missing.body).rule == "required", "\(missing.raw)")
            let unknown = try await privacy.request("POST", "/api/gdpr/requests",
                                                    ["subject_id": "user-o", "type": "objection", "purposes": ["marketing_email", "no_such_purpose"]])
            #expect(unknown.status == 422 && error(unknown.body).field == "purposes" && error(unknown.body).rule == "unknown", "\(unknown.raw)")
            let twice = try await privacy.request("POST", "/api/gdpr/requests",
                                                  ["subject_id": "user-o", "type": "objection", "purposes": ["analytics", "analytics"]])
            #expect(twice.status == 422 && error(twice.body).field == "purposes", "\(twice.raw)")
            let notObjection = try await privacy.request("POST", "/api/gdpr/requests",
                                                         ["subject_id": "user-o", "type": "access", "purposes": ["analytics"]])
            #expect(notObjection.status == 422 && error(notObjection.body).rule == "not_allowed", "\(notObjection.raw)")
            let notArray = try await privacy.request("POST", "/api/gdpr/requests", ["subject_id": "user-o", "type": "objection", "purposes": "analytics"])
            #expect(notArray.status == 400 && error(notArray.body).field == "purposes", "\(notArray.raw)")

            // An objection to direct marketing and to a legitimate-interests purpose.
            let filed = try await privacy.request("POST", "/api/gdpr/requests",
                                                  ["subject_id": "user-o", "type": "objection", "purposes": ["marketing_email", "fraud_scoring"]])
            #expect(filed.status == 201 && filed.body["purposes"] as? [String] == ["marketing_email", "fraud_scoring"], "\(filed.raw)")
            let objection = try #require(filed.body["id"] as? String)
            // Nothing changes while the request is only filed.
            #expect(try await ConsentLedger.mayProcess("user-o", for: "marketing_email", on: db).allowed)
            #expect(try await privacy.request("PUT", "/api/gdpr/requests/\(objection)/status", ["status": "completed", "note": "upheld"]).status == 409)
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(objection)/verify", ["method": "account_login"]).status == 200)
            let upheld = try await privacy.request("PUT", "/api/gdpr/requests/\(objection)/status", ["status": "completed", "note": "no compelling grounds"])
            #expect(upheld.status == 200, "\(upheld.raw)")
            let result = upheld.body["result"] as? [String: String] ?? [:]
            #expect(result["objected"] == "marketing_email, fraud_scoring" && result["consents_withdrawn"] == "marketing_email", "\(upheld.raw)")

            let email = try await ConsentLedger.mayProcess("user-o", for: "marketing_email", on: db)
            #expect(!email.allowed && email.reason == "objected")
            let scoring = try await ConsentLedger.mayProcess("user-o", for: "fraud_scoring", on: db)
            #expect(!scoring.allowed && scoring.reason == "objected")
            #expect(try await ConsentLedger.mayProcess("user-o", for: "analytics", on: db).allowed)
            // The withdrawal is in the ledger with its source, so the consent state says so too.
            let states = try await privacy.request("GET", "/api/gdpr/consents/user-o").body["consents"] as? [[String: Any]] ?? []
            let marketing = try #require(states.first { $0["purpose"] as? String == "marketing_email" })
            #expect(marketing["state"] as? String == "withdrawn" && marketing["source"] as? String == "objection", "\(marketing)")
            // Consent given again later does not override the upheld objection.
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": "user-o", "purpose": "marketing_email", "granted": true, "source": "banner"])
            #expect(try await ConsentLedger.mayProcess("user-o", for: "marketing_email", on: db).reason == "objected")
            // Another subject is untouched.
            try await privacy.request("POST", "/api/gdpr/consents", ["subject_id": "user-p", "purpose": "marketing_email", "granted": true, "source": "signup"])
            #expect(try await ConsentLedger.mayProcess("user-p", for: "marketing_email", on: db).allowed)

            // A restriction: nothing is processed for the subject while it stands.
            let restriction = try await privacy.request("POST", "/api/gdpr/requests", ["subject_id": "user-p", "type": "restriction"])
            let restrictionID = try #require(restriction.body["id"] as? String)
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(restrictionID)/lift", ["note": "too early"]).status == 409)
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(restrictionID)/verify", ["method": "email_confirmation"]).status == 200)
            let restricted = try await privacy.request("PUT", "/api/gdpr/requests/\(restrictionID)/status", ["status": "completed", "note": "accuracy contested"])
            #expect(restricted.status == 200, "\(restricted.raw)")
            for purpose in ["marketing_email", "fraud_scoring"] {
                #expect(try await ConsentLedger.mayProcess("user-p", for: purpose, on: db).reason == "restricted")
            }
            #expect(try await ConsentLedger.mayProcess("user-o", for: "analytics", on: db).allowed)

            let noNote = try await privacy.request("POST", "/api/gdpr/requests/\(restrictionID)/lift", [String: String]())
            #expect(noNote.status == 400 && error(noNote.body).field == "note", "\(noNote.raw)")
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(objection)/lift", ["note": "wrong request"]).status == 409)
            let lifted = try await privacy.request("POST", "/api/gdpr/requests/\(restrictionID)/lift", ["note": "accuracy verified; subject told on 2026-11-20"])
            #expect(lifted.status == 200, "\(lifted.raw)")
            let history = lifted.body["history"] as? [[String: Any]] ?? []
            #expect(history.last?["kind"] as? String == "lifted", "\(lifted.raw)")
            #expect(try await ConsentLedger.mayProcess("user-p", for: "marketing_email", on: db).allowed)
            #expect(try await ConsentLedger.mayProcess("user-p", for: "fraud_scoring", on: db).reason == "not_consent_based")
            #expect(try await privacy.request("POST", "/api/gdpr/requests/\(restrictionID)/lift", ["note": "again"]).status == 409)

            // Each step is in the audit trail.
            let actions = try await db.query("""
                SELECT action FROM audit_events WHERE action IN ('privacy.request.complete', 'privacy.restriction.lift') ORDER BY occurred_at, seq
                """).map { try $0.decode(String.self, at: 0) }
            #expect(actions == ["privacy.request.complete", "privacy.request.complete", "privacy.restriction.lift"])
        }
    }
}
