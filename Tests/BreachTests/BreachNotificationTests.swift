import Foundation
import MingusBreach
import MingusCore
import MingusPostgres
import MingusRuntime
import MingusSecurity
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A breach for notification runs: card and personal data of people in Germany and Texas.
private func notifiedBreach(persons: Int) -> [String: Any] {
    let now = Date()
    return [
        "title": "Customer export exposed", "description": "A storage bucket held a customer export for two days.", "severity": "high",
        "discovered_at": now.addingTimeInterval(-7200).formatted(Date.ISO8601FormatStyle()),
        "aware_at": now.addingTimeInterval(-3600).formatted(Date.ISO8601FormatStyle()),
        "data_categories": ["personal_data", "card_data"], "data_encrypted": false, "records_affected": persons,
        "persons_affected": persons, "jurisdictions": ["DE", "US-TX"], "entity_roles": ["controller", "merchant"],
    ]
}

private var letter: [String: Any] {
    [
    "organization": "Mingus Finance", "what_is_being_done": "We closed the bucket and are reviewing every access to it.",
    "what_you_can_do": "Watch your card statements and ask your bank for a new card.",
    "likely_consequences": "Someone could try to use your card number.",
    "contact": ["phone": "+1 800 555 0100", "email": "privacy@mingus.test", "website": "https://mingus.test/incident"],
    ]
}

extension BreachCluster {
    /// Makes the data keys the breach domain seals recipients with.
    func makeRecipientKeys() async throws {
        for purpose in DomainDescription.breach.keyPurposes {
            try await Keyring.rotate(purpose, kek: cluster.kek, database: cluster.database)
        }
    }

    func upload(_ id: String, _ body: String, contentType: String) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(
            cluster.base + "/api/financial/breach/\(id)/recipients", method: "POST",
            headers: ["Authorization": "Bearer \(key)", "Content-Type": contentType], body: Data(body.utf8))
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    func lineErrors(_ body: [String: Any]) -> [Int: (field: String, rule: String)] {
        Dictionary((body["errors"] as? [[String: Any]] ?? []).map { ($0["line"] as! Int, ($0["field"] as! String, $0["rule"] as! String)) }) { a, _ in a }
    }
}

@Suite("Breach notification runs: recipient uploads, letters, and a run that survives a killed worker", .serialized)
struct BreachNotificationTests {
    @Test("uploads keep good lines and name each bad one; whole-upload problems are 400/415/422; names and addresses are sealed")
    func uploads() async throws {
        let breach = try await BreachCluster.start()
        do {
            try await breach.makeRecipientKeys()
            let id = try await breach.report(notifiedBreach(persons: 10))
            let ndjson = [
                #"{"id":"c-1","name":"Ada Lovelace","email":"ada@example.com","jurisdiction":"DE"}"#,
                #"{"id":"c-2","name":"Alan Turing","jurisdiction":"US-TX"}"#,
                #"{"id":"c-3","name":"Grace Hopper","email":"not-an-address","jurisdiction":"US-TX"}"#,
                #"{"id":"c-4","name":"Edsger Dijkstra","email":"ed@example.com","jurisdiction":"Texas"}"#,
                #"{"id":"c-5","name":"Barbara Liskov","email":"bl@example.com","jurisdiction":"US-TX","phone":"1"}"#,
                "this is not json",
                "",
                #"{"id":"c-6","name":"Ada L.","email":"ADA@example.com","jurisdiction":"DE"}"#,
                #"{"id":7,"name":"Ken Thompson","email":"ken@example.com","jurisdiction":"US-TX"}"#,
                #"{"id":"c-8","name":"\#(String(repeating: "x", count: 5000))","email":"long@example.com","jurisdiction":"DE"}"#,
                #"{"id":"c-9","name":"Frances Allen","email":"fran@example.com","jurisdiction":"us-tx"}"#,
            ].joined(separator: "\n")
            let mixed = try await breach.upload(id, ndjson, contentType: "application/x-ndjson")
            #expect(mixed.status == 200, "\(mixed.body)")
            #expect(mixed.body["accepted"] as? Int == 2)
            #expect(mixed.body["duplicates"] as? Int == 1)
            #expect(mixed.body["rejected"] as? Int == 7)
            #expect(mixed.body["lines"] as? Int == 11)
            let errors = breach.lineErrors(mixed.body)
            #expect(errors[2]?.field == "email" && errors[2]?.rule == "required")
            #expect(errors[3]?.field == "email" && errors[3]?.rule == "format")
            #expect(errors[4]?.field == "jurisdiction" && errors[4]?.rule == "format")
            #expect(errors[5]?.field == "phone" && errors[5]?.rule == "unknown_field")
            #expect(errors[6]?.field == "line" && errors[6]?.rule == "json")
            #expect(errors[9]?.field == "id" && errors[9]?.rule == "type")
            #expect(errors[10]?.field == "line" && errors[10]?.rule == "length")
            #expect(errors.count == 7)

            // CSV: any column order, quoted fields; a bad line among good ones.
            let csv = "email,Name,jurisdiction,id\r\nkaren@example.com,\"Spärck Jones, Karen\",GB,c-10\r\nnobody,\"No One\",DE,c-11\r\n"
            let fromCSV = try await breach.upload(id, csv, contentType: "text/csv; charset=utf-8")
            #expect(fromCSV.status == 200, "\(fromCSV.body)")
            #expect(fromCSV.body["accepted"] as? Int == 1)
            #expect(breach.lineErrors(fromCSV.body)[3]?.field == "email")

            let allBad = try await breach.upload(id, "id,name,email,jurisdiction\nc-12,,x@example.com,DE\n", contentType: "text/csv")
            #expect(allBad.status == 422, "\(allBad.body)")
            let error = allBad.body["error"] as? [String: Any]
            #expect(error?["field"] as? String == "name" && error?["rule"] as? String == "required")
            #expect(breach.lineErrors(allBad.body)[2]?.field == "name")

            let header = try await breach.upload(id, "id,name,jurisdiction\nc-13,Someone,DE\n", contentType: "text/csv")
            #expect(header.status == 400 && (header.body["error"] as? [String: Any])?["field"] as? String == "email", "\(header.body)")
            let unknownColumn = try await breach.upload(id, "id,name,email,jurisdiction,phone\n", contentType: "text/csv")
            #expect(unknownColumn.status == 400 && (unknownColumn.body["error"] as? [String: Any])?["rule"] as? String == "unknown_field")
            let empty = try await breach.upload(id, "\n\n", contentType: "application/x-ndjson")
            #expect(empty.status == 422 && (empty.body["error"] as? [String: Any])?["field"] as? String == "body")
            #expect(try await breach.upload(id, "x", contentType: "text/plain").status == 415)
            #expect(try await breach.upload(UUID().uuidString.lowercased(), "x", contentType: "text/csv").status == 404)

            // Sealed at rest: the stored bytes are not the name, and open only with the row's context.
            let rows = try await breach.cluster.database.query("""
                SELECT id, name_sealed, key_version, external_id FROM breach_recipients WHERE breach_id = \(UUID(uuidString: id)!) ORDER BY upload_line
                """)
            #expect(rows.count == 3)
            let keyring = try await breach.cluster.keyring()
            let first = rows[0]
            let sealed = SealedValue(version: try first.decode(Int.self, at: 2), combined: Array(try first.decode(Data.self, at: 1)))
            let recipient = try first.decode(UUID.self, at: 0)
            #expect(try first.decode(String.self, at: 3) == "c-1")
            #expect(String(decoding: try keyring.open(sealed, purpose: .breachRecipients,
                                                      context: "breach-recipient/\(recipient.uuidString.lowercased())/name"), as: UTF8.self) == "Ada Lovelace")
            #expect(throws: KeyringError.self) { try keyring.open(sealed, purpose: .breachRecipients, context: "breach-recipient/\(UUID())/name") }
            #expect(!breach.cluster.output.contains("ada@example.com") && !breach.cluster.output.contains("Lovelace"))

            // Starting a run: the letter's required content is checked first.
            var noPhone = letter
            noPhone["contact"] = ["email": "privacy@mingus.test"]
            let phone = try await breach.request("POST", "/api/financial/breach/\(id)/notifications", noPhone)
            #expect(phone.status == 422 && (phone.body["error"] as? [String: Any])?["field"] as? String == "contact.phone", "\(phone.body)")
            var noAdvice = letter
            noAdvice["what_you_can_do"] = nil
            let advice = try await breach.request("POST", "/api/financial/breach/\(id)/notifications", noAdvice)
            #expect(advice.status == 400 && (advice.body["error"] as? [String: Any])?["field"] as? String == "what_you_can_do")

            let progress = try await breach.request("GET", "/api/financial/breach/\(id)/notifications")
            #expect(progress.status == 200 && progress.body["remaining"] as? Int == 3 && progress.body["sent"] as? Int == 0, "\(progress.body)")
            #expect((try await breach.breach(id)["notifications"] as? [String: Any])?["recipients"] as? Int == 3)
        } catch {
            try? await breach.stop()
            throw error
        }
        try await breach.stop()
    }

    @Test("a run of 100,000 recipients with the worker killed midway: every recipient mailed, repeats only of letters in flight, same Message-ID")
    func runSurvivesAKilledWorker() async throws {
        let recipients = 100_000
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("smtp-certs"))
        let smtp = try WorkerProcess("python", arguments: [TestEnvironment.fixturesDirectory.appendingPathComponent("smtp_server.py").path],
                                     environment: ["SMTP_MODE": "starttls", "SMTP_CERT_DIR": certificates.path, "SMTP_LOG": "compact",
                                                   "SMTP_USER": "breach@mingus.test", "SMTP_PASSWORD": "breach-smtp-password"],
                                     bin: TestEnvironment.pythonBin)
        defer { smtp.signal(SIGTERM) }
        let port = try #require(try await listeningPort(smtp), "\(smtp.output)")
        let smtpEnvironment = [
            "MINGUS_BREACH_SMTP": "127.0.0.1:\(port)", "MINGUS_BREACH_SMTP_CA_FILE": certificates.appendingPathComponent("ca.pem").path,
            "MINGUS_BREACH_SMTP_USERNAME": "breach@mingus.test", "MINGUS_BREACH_SMTP_PASSWORD": "breach-smtp-password",
            "MINGUS_BREACH_MAIL_FROM": "privacy@mingus.test", "MINGUS_BREACH_SMTP_SESSIONS": "8", "MINGUS_BREACH_NOTIFY_RATE": "100000",
            "MINGUS_BREACH_NOTIFY_CHUNK": "4000",
        ]
        let cluster = try await Cluster.start(environment: smtpEnvironment, privateBroker: true)
        var worker = try cluster.startWorker("mingus-breach-worker")
        let breach = BreachCluster(cluster: cluster, key: try await cluster.key([.breachWrite, .breachRead]).key)
        do {
            try await breach.makeRecipientKeys()
            let id = try await breach.report(notifiedBreach(persons: recipients))
            let breachID = UUID(uuidString: id)!
            var lines = ""
            lines.reserveCapacity(recipients * 90)
            for index in 0..<recipients {
                lines += #"{"id":"r-\#(index)","name":"Person \#(index)","email":"person\#(index)@example.org","jurisdiction":"\#(index % 3 == 0 ? "DE" : "US-TX")"}"# + "\n"
            }
            let uploaded = try await breach.upload(id, lines, contentType: "application/x-ndjson")
            #expect(uploaded.status == 200 && uploaded.body["accepted"] as? Int == recipients, "\(uploaded.body)")

            let started = try await breach.request("POST", "/api/financial/breach/\(id)/notifications", letter)
            try #require(started.status == 202, "\(started.body)")
            let run = try #require(started.body["id"] as? String)

            func count(_ state: String) async throws -> Int {
                try await cluster.database.query("""
                    SELECT count(*) FROM breach_recipients WHERE breach_id = \(breachID) AND state = \(state)
                    """)[0].decode(Int.self, at: 0)
            }
            // Midway: kill the worker while letters are in flight, then start another one.
            try #require(try await eventually(timeout: .seconds(300)) { try await count("sent") >= recipients / 3 }, "\(cluster.output)")
            try await worker.kill9()
            let atKill = try await count("sent")
            #expect(atKill < recipients, "the run ended before the worker was killed")
            worker = try cluster.startWorker("mingus-breach-worker")

            let finished = try await eventually(timeout: .seconds(600)) {
                try await cluster.database.query("SELECT status FROM breach_notification_runs WHERE id = \(UUID(uuidString: run)!)")
                    .first?.decode(String.self, at: 0) == "completed"
            }
            let sentAtEnd = try await count("sent")
            try #require(finished, "the run did not complete: \(sentAtEnd) sent\n\(cluster.output)")
            #expect(try await count("sent") == recipients)

            // At the server: every recipient, each letter under its recipient's one Message-ID.
            let delivered = smtp.output.split(separator: "\n").compactMap { line -> (id: String, to: String)? in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["accepted"] as? Bool == true, let messageID = object["message_id"] as? String,
                      let to = (object["rcpt_tos"] as? [String])?.first else { return nil }
                return (messageID, to)
            }
            let idsByAddress = Dictionary(grouping: delivered, by: \.to).mapValues { Set($0.map(\.id)) }
            #expect(idsByAddress.count == recipients, "recipients mailed: \(idsByAddress.count)")
            #expect(idsByAddress.values.allSatisfy { $0.count == 1 }, "a recipient got two different letters")
            #expect(Set(delivered.map(\.id)).count == recipients)
            // A letter the server took while the worker died, before its reply was recorded, is
            // sent again with the same Message-ID: only recipients the database marks uncertain.
            let repeated = Dictionary(grouping: delivered, by: \.id).filter { $0.value.count > 1 }.keys
            let uncertain = Set(try await cluster.database.query("""
                SELECT id FROM breach_recipients WHERE breach_id = \(breachID) AND uncertain_resends > 0
                """).map { "<breach-notice.\(try $0.decode(UUID.self, at: 0).uuidString.lowercased())@mingus.test>" })
            #expect(Set(repeated).isSubset(of: uncertain), "repeated without being uncertain: \(Set(repeated).subtracting(uncertain))")
            #expect(uncertain.count <= 8, "more letters in flight than SMTP sessions: \(uncertain.count)")
            print("notification run: \(delivered.count) messages for \(recipients) recipients, \(repeated.count) repeated, \(uncertain.count) uncertain at the kill, \(atKill) sent before it")

            // Letters to regulators and the media are rendered for review, not mailed.
            let letters = try await breach.request("GET", "/api/financial/breach/\(id)/letters")
            let audiences = Set((letters.body["letters"] as? [[String: Any]] ?? []).compactMap { $0["audience"] as? String })
            #expect(audiences.contains("supervisory_authority"), "\(letters.body)")
            #expect(!audiences.contains("individuals") && !audiences.contains("data_subjects"))
            let view = try await breach.breach(id)
            let notifications = view["notifications"] as? [String: Any]
            #expect(notifications?["sent"] as? Int == recipients && notifications?["remaining"] as? Int == 0)
            #expect((notifications?["run"] as? [String: Any])?["status"] as? String == "completed")
            #expect(!cluster.output.contains("person17@example.org"))
        } catch {
            try? await breach.stop()
            throw error
        }
        try await breach.stop()
    }
}
