import Foundation
import MingusHTTP
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import Testing
import TestSupport

private typealias Answer = (status: Int, headers: [AnyHashable: Any], body: [String: Any], raw: String)

/// POSTs a JSON-lines upload: the settings line, then the lines as given.
private func submit(_ cluster: Cluster, _ key: String, settings: [String: Any]?, lines: [String], contentType: String = "application/x-ndjson") async throws
    -> Answer {
    var text = try settings.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys), as: UTF8.self) + "\n" } ?? ""
    text += lines.joined(separator: "\n")
    let answer = try await httpRequest(cluster.base + "/api/hipaa/deidentify/jobs", method: "POST",
                                       headers: ["Authorization": "Bearer \(key)", "Content-Type": contentType], body: Data(text.utf8))
    return (answer.status, answer.headers, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body)
}

private func get(_ cluster: Cluster, _ key: String, _ path: String) async throws -> Answer {
    let answer = try await httpRequest(cluster.base + path, headers: ["Authorization": "Bearer \(key)"])
    return (answer.status, answer.headers, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body)
}

private func header(_ answer: Answer, _ name: String) -> String? {
    answer.headers.first { ($0.key as? String)?.lowercased() == name.lowercased() }?.value as? String
}

private func errorDetail(_ body: [String: Any]) -> [String: Any] { body["error"] as? [String: Any] ?? [:] }

/// JSON text of one row, keys sorted.
private func json(_ object: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: .sortedKeys), as: UTF8.self)
}

/// A JSON value written again with sorted keys, so equal values compare equal as text.
private func canonical(_ object: Any) -> String {
    (try? json(object)) ?? "<not JSON>"
}

/// The lines of a JSON-lines result, each in canonical form.
private func objects(_ text: String) -> [String] {
    text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }.map(canonical)
}

/// The objects of an array field of a JSON answer, each in canonical form.
private func objects(_ body: [String: Any], _ field: String) -> [String] {
    (body[field] as? [Any] ?? []).map(canonical)
}

/// A canonical JSON line's object.
private func object(_ line: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
}

/// Waits until the job is completed (or failed); returns its status.
private func finished(_ cluster: Cluster, _ key: String, _ path: String, timeout: Duration = .seconds(180)) async throws -> [String: Any] {
    var last: [String: Any] = [:]
    let done = try await eventually(timeout: timeout) {
        last = try await get(cluster, key, path).body
        return ["completed", "failed"].contains(last["status"] as? String)
    }
    try #require(done, "not finished: \(last)\n\(cluster.output)")
    return last
}

/// Health rows with every kind of column the fixture uses: restricted and ordinary ZIP areas,
/// birth dates on both sides of the 90+ fold, ages, free text with identifiers.
enum DeidentifyFixture {
    static let columns: [String: String] = ["name": "name", "zip": "zip", "born": "birth_date", "admitted": "date", "age": "age", "phone": "phone",
                                            "email": "email", "amount": "keep", "note": "text"]
    static let referenceDate = "2026-06-30T00:00:00Z"

    static func row(_ i: Int) -> [String: Any] {
        let zips = ["10001", "03601", "90210-1234", "82301", "5560"]
        var row: [String: Any] = [
            "name": "Person \(i)", "zip": zips[i % zips.count], "born": String(format: "19%02d-%02d-%02d", 20 + i % 80, 1 + i % 12, 1 + i % 28),
            "admitted": "2025-03-\(String(format: "%02d", 1 + i % 28))T10:00:00Z", "age": i % 100, "phone": String(format: "212-555-%04d", i % 10_000),
            "email": "p\(i)@example.com", "amount": i * 7,
        ]
        if i % 3 == 0 { row["note"] = "seen 2025-03-14, call 212-555-0101 or p\(i)@example.com" }
        return row
    }
}

@Suite("HIPAA: de-identification jobs for large sets", .serialized)
struct DeidentifyJobTests {
    @Test("25,000 rows through the job: the synchronous route's output for every row, bad lines listed and the rest kept, status, result, one audit event")
    func largeSetMatchesSynchronousRoute() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            let reader = try await cluster.key([.hipaaRead])
            let count = 25_000
            var lines = try (0..<count).map { try json(DeidentifyFixture.row($0)) }
            // Two bad lines among the good ones: not JSON, and a column without its kind.
            lines.insert("{not json", at: 100)
            lines.insert(try json(["name": "X", "diagnosis": "secret"]), at: 20_000)
            let settings: [String: Any] = ["level": "anonymized", "columns": DeidentifyFixture.columns, "purpose": "health_care_operations",
                                           "reference_date": DeidentifyFixture.referenceDate]
            let accepted = try await submit(cluster, reader.key, settings: settings, lines: lines)
            try #require(accepted.status == 202, "\(accepted.raw)")
            let id = try #require(accepted.body["id"] as? String)
            let path = "/api/hipaa/deidentify/jobs/\(id)"
            #expect(header(accepted, "Location") == path && accepted.body["status_url"] as? String == path)
            #expect(accepted.body["accepted"] as? Int == count && accepted.body["rejected"] as? Int == 2 && accepted.body["lines"] as? Int == count + 3)
            let errors = accepted.body["errors"] as? [[String: Any]] ?? []
            #expect(errors.count == 2)
            #expect(errors.first?["line"] as? Int == 102 && errors.first?["field"] as? String == "line" && errors.first?["rule"] as? String == "json")
            #expect(errors.last?["line"] as? Int == 20_002 && errors.last?["field"] as? String == "diagnosis" && errors.last?["rule"] as? String == "unclassified")
            #expect(!accepted.raw.contains("secret"), "an error repeated a value")

            let status = try await finished(cluster, reader.key, path)
            #expect(status["status"] as? String == "completed", "\(status)")
            #expect(status["rows_in"] as? Int == count && status["rows_done"] as? Int == count && status["rows_rejected"] as? Int == 2)
            #expect(status["blocks"] as? Int == 25 && status["blocks_done"] as? Int == 25 && status["expires_at"] != nil)
            #expect(status["result_url"] as? String == path + "/result" && status["requested_by"] as? String == "apikey:\(reader.name)")

            let result = try await get(cluster, reader.key, path + "/result")
            #expect(result.status == 200 && (header(result, "Content-Type") ?? "").hasPrefix("application/x-ndjson"))
            let rows = objects(result.raw)
            try #require(rows.count == count, "\(rows.count) result rows")

            // The synchronous route, 10,000 rows at a time, gives the same rows in the same order.
            var expected: [String] = []
            for start in stride(from: 0, to: count, by: 10_000) {
                let slice = (start..<min(start + 10_000, count)).map(DeidentifyFixture.row)
                let answer = try await httpRequest(
                    cluster.base + "/api/hipaa/deidentify", method: "POST", headers: ["Authorization": "Bearer \(reader.key)", "Content-Type": "application/json"],
                    body: try JSONSerialization.data(withJSONObject: ["level": "anonymized", "columns": DeidentifyFixture.columns, "rows": slice,
                                                                      "reference_date": DeidentifyFixture.referenceDate]))
                try #require(answer.status == 200, "\(answer.body.prefix(500))")
                let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
                expected += objects(body, "rows")
            }
            try #require(expected.count == count)
            let differing = zip(rows, expected).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            #expect(differing.isEmpty, "rows differ from the synchronous route's, first at \(differing.prefix(3)): \(differing.first.map { "\(rows[$0]) vs \(expected[$0])" } ?? "")")
            // Safe Harbor holds on the stored result: no name, phone or e-mail survived.
            #expect(!result.raw.contains("Person ") && !result.raw.contains("212-555") && !result.raw.contains("@example.com"))
            // A result may be read again until it expires.
            #expect(objects(try await get(cluster, reader.key, path + "/result").raw).count == count)

            // Stored sealed, and the input is gone once de-identified.
            let blocks = try await cluster.database.query("""
                SELECT stage, count(*), bool_and(position(convert_to('Person', 'UTF8') in sealed) = 0) FROM health_deidentify_blocks
                WHERE job_id = \(UUID(uuidString: id)!) GROUP BY stage
                """).map { (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1), try $0.decode(Bool.self, at: 2)) }
            #expect(blocks.count == 1 && blocks.first?.0 == "output" && blocks.first?.1 == 25 && blocks.first?.2 == true, "\(blocks)")

            // One audit event for the job: who, level, rows, why.
            let events = try await cluster.database.query("""
                SELECT actor, details->>'level', details->>'rows', details->>'why' FROM audit_events
                WHERE action = 'hipaa.deidentify' AND details->>'job_id' = \(id)
                """).map { try ($0.decode(String.self, at: 0), $0.decode(String.self, at: 1), $0.decode(String.self, at: 2), $0.decode(String.self, at: 3)) }
            #expect(events.count == 1)
            #expect(events.first?.0 == "apikey:\(reader.name)" && events.first?.1 == "anonymized" && events.first?.2 == "\(count)"
                    && events.first?.3 == "health_care_operations", "\(events)")
            // Each download of the result is an audit event of its own: two above.
            let downloads = try await cluster.database.query("""
                SELECT actor, details->>'rows' FROM audit_events
                WHERE action = 'hipaa.deidentify.download' AND resource = \("hipaa/deidentify/jobs/" + id)
                """).map { try ($0.decode(String.self, at: 0), $0.decode(String.self, at: 1)) }
            #expect(downloads.count == 2 && downloads.allSatisfy { $0.0 == "apikey:\(reader.name)" && $0.1 == "\(count)" }, "\(downloads)")
        }
    }

    @Test("pseudonymized and aggregated jobs give the synchronous route's tokens and groups; expired results are deleted by the cleanup")
    func pseudonymizedAndAggregated() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            let reader = try await cluster.key([.hipaaRead]).key
            let source = (0..<60).map(DeidentifyFixture.row)
            var jobs: [String] = []
            for level in ["pseudonymized", "aggregated"] {
                var settings: [String: Any] = ["level": level, "columns": DeidentifyFixture.columns, "purpose": "treatment",
                                               "reference_date": DeidentifyFixture.referenceDate]
                if level == "aggregated" { settings["group_by"] = ["zip"]; settings["minimum_cell"] = 13 }
                let accepted = try await submit(cluster, reader, settings: settings, lines: try source.map(json))
                try #require(accepted.status == 202, "\(accepted.raw)")
                let path = try #require(header(accepted, "Location"))
                jobs.append(path)
                let status = try await finished(cluster, reader, path)
                #expect(status["status"] as? String == "completed" && status["rows_done"] as? Int == 60, "\(status)")
                let rows = objects(try await get(cluster, reader, path + "/result").raw)
                var sync = settings
                sync["purpose"] = nil
                sync["rows"] = source
                let answer = try await httpRequest(cluster.base + "/api/hipaa/deidentify", method: "POST",
                                                   headers: ["Authorization": "Bearer \(reader)", "Content-Type": "application/json"],
                                                   body: try JSONSerialization.data(withJSONObject: sync))
                let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
                if level == "pseudonymized" {
                    let expected = objects(body, "rows")
                    #expect(rows.count == 60 && rows == expected)
                    let token = try #require(rows.first.map(object)?["name"] as? String)
                    let keyring = try await cluster.keyring()
                    #expect(token.hasPrefix("tok_") && Deidentifier.reveal(token, kind: .name, keyring: keyring) == "Person 0")
                } else {
                    // 60 rows over five ZIP values, 12 each: 036 and 823 are both restricted areas (000, 24 rows, shown);
                    // 100, 902 and the malformed 5560 (null) have 12, under 13: suppressed, without their count.
                    let expected = Set(objects(body, "groups"))
                    #expect(rows.count == 4 && Set(rows) == expected, "\(rows) vs \(expected)")
                    #expect(status["groups"] as? Int == 4 && status["suppressed_groups"] as? Int == 3 && body["suppressed_groups"] as? Int == 3)
                    let shown = rows.map(object).filter { $0["suppressed"] as? Bool == false }
                    #expect(shown.count == 1 && (shown.first?["group"] as? [String: Any])?["zip"] as? String == "000" && shown.first?["count"] as? Int == 24)
                    #expect(rows.map(object).filter { $0["suppressed"] as? Bool == true }.allSatisfy { $0["count"] == nil })
                }
            }

            // Retention: once a result's time has passed, the hourly cleanup marks the job expired and
            // deletes its blocks and cells; the job row stays, the result is gone.
            try await cluster.database.execute("UPDATE health_deidentify_jobs SET expires_at = now() - interval '1 second'")
            let fired = try await eventually(timeout: .seconds(60)) {
                try await cluster.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'privacy.cleanup'") == 1
            }
            try #require(fired, "no privacy.cleanup schedule\n\(cluster.output)")
            let expired = try await eventually(timeout: .seconds(60)) {
                var all = true
                for path in jobs where try await get(cluster, reader, path).body["status"] as? String != "expired" { all = false }
                return all
            }
            #expect(expired, "not expired\n\(cluster.output)")
            #expect(try await cluster.database.query("SELECT count(*) FROM health_deidentify_blocks")[0].decode(Int.self, at: 0) == 0)
            #expect(try await cluster.database.query("SELECT count(*) FROM health_deidentify_cells")[0].decode(Int.self, at: 0) == 0)
            for path in jobs {
                let gone = try await get(cluster, reader, path + "/result")
                #expect(gone.status == 410 && errorDetail(gone.body)["code"] as? String == "job_expired", "\(gone.raw)")
            }
        }
    }

    @Test("bad settings are refused naming the field, with nothing stored; rows all bad is 422 listing them; roles; unknown jobs")
    func refusals() async throws {
        try await PrivacyCluster.with { privacy in
            let cluster = privacy.cluster
            let reader = try await cluster.key([.hipaaRead]).key
            let row = try json(DeidentifyFixture.row(1))
            let good: [String: Any] = ["level": "anonymized", "columns": DeidentifyFixture.columns, "purpose": "treatment"]
            func refused(_ settings: [String: Any]?, _ lines: [String] = [row], status: Int, field: String, rule: String) async throws {
                let answer = try await submit(cluster, reader, settings: settings, lines: lines)
                #expect(answer.status == status && errorDetail(answer.body)["field"] as? String == field && errorDetail(answer.body)["rule"] as? String == rule,
                        "\(settings ?? [:]): \(answer.raw)")
            }
            var missing = good
            missing["purpose"] = nil
            try await refused(missing, status: 400, field: "purpose", rule: "required")
            missing = good
            missing["columns"] = nil
            try await refused(missing, status: 400, field: "columns", rule: "required")
            try await refused(good.merging(["level": "secret"]) { $1 }, status: 422, field: "level", rule: "enum")
            try await refused(good.merging(["purpose": "curiosity"]) { $1 }, status: 422, field: "purpose", rule: "enum")
            try await refused(good.merging(["columns": ["name": "nickname"]]) { $1 }, status: 422, field: "columns", rule: "enum")
            try await refused(good.merging(["minimum_cell": 1]) { $1 }, status: 422, field: "minimum_cell", rule: "range")
            try await refused(good.merging(["level": "aggregated", "group_by": ["name"]]) { $1 }, status: 422, field: "group_by", rule: "required")
            try await refused(good.merging(["reference_date": "yesterday"]) { $1 }, status: 422, field: "reference_date", rule: "format")
            try await refused(good.merging(["rows": []]) { $1 }, status: 400, field: "rows", rule: "unknown_field")
            try await refused(nil, [], status: 400, field: "settings", rule: "required")
            try await refused(nil, ["[1, 2]", row], status: 400, field: "settings", rule: "json")
            try await refused(good, [], status: 422, field: "rows", rule: "empty")
            // Every row bad: 422 naming the first one's field, each listed.
            let allBad = try await submit(cluster, reader, settings: good, lines: ["{\"ssn\": \"123-45-6789\"}", "not json"])
            #expect(allBad.status == 422 && errorDetail(allBad.body)["code"] as? String == "invalid_rows" && errorDetail(allBad.body)["field"] as? String == "ssn",
                    "\(allBad.raw)")
            #expect((allBad.body["errors"] as? [[String: Any]])?.compactMap { $0["line"] as? Int } == [2, 3] && !allBad.raw.contains("123-45"))
            let wrongType = try await submit(cluster, reader, settings: good, lines: [row], contentType: "application/json")
            #expect(wrongType.status == 415)
            // Nothing was stored by any refused upload.
            #expect(try await cluster.database.query("SELECT count(*) FROM health_deidentify_jobs")[0].decode(Int.self, at: 0) == 0)
            #expect(try await cluster.database.query("SELECT count(*) FROM health_deidentify_blocks")[0].decode(Int.self, at: 0) == 0)

            // Roles: the synchronous route's, hipaa:read.
            let writer = try await cluster.key([.hipaaWrite, .hipaaAudit]).key
            let accepted = try await submit(cluster, reader, settings: good, lines: [row])
            try #require(accepted.status == 202, "\(accepted.raw)")
            let path = try #require(header(accepted, "Location"))
            #expect(try await submit(cluster, writer, settings: good, lines: [row]).status == 403)
            #expect(try await get(cluster, writer, path).status == 403)
            #expect(try await get(cluster, writer, path + "/result").status == 403)
            #expect(try await get(cluster, reader, path).status == 200)
            // Another hipaa:read caller does not see the job; an admin does.
            let otherReader = try await cluster.key([.hipaaRead]).key
            #expect(try await get(cluster, otherReader, path).status == 404)
            #expect(try await get(cluster, otherReader, path + "/result").status == 404)
            #expect(try await get(cluster, try await cluster.key([.admin]).key, path).status == 200)
            let unknown = "/api/hipaa/deidentify/jobs/\(UUID().uuidString.lowercased())"
            #expect(try await get(cluster, reader, unknown).status == 404)
            #expect(try await get(cluster, reader, unknown + "/result").status == 404)
            let badId = try await get(cluster, reader, "/api/hipaa/deidentify/jobs/nope")
            #expect(badId.status == 400 && errorDetail(badId.body)["field"] as? String == "id", "\(badId.raw)")
        }
    }

    @Test("a worker killed mid-job: the job waits, then resumes on another worker; every row de-identified once, one audit event")
    func killedWorkerResumes() async throws {
        let cluster = try await Cluster.start(privateBroker: true, keyPurposes: [.privacyExport, .privacyLink, .healthPseudonym])
        do {
            // One block (1,000 rows) per chunk, so the job is caught between chunks.
            let chunked = ["MINGUS_HIPAA_DEIDENTIFY_CHUNK_BLOCKS": "1"]
            let first = try cluster.startWorker("mingus-privacy-worker", environment: chunked)
            let reader = try await cluster.key([.hipaaRead]).key
            let count = 30_000
            let source = try (0..<count).map { try json(DeidentifyFixture.row($0)) }
            let settings: [String: Any] = ["level": "anonymized", "columns": DeidentifyFixture.columns, "purpose": "health_care_operations",
                                           "reference_date": DeidentifyFixture.referenceDate]
            let accepted = try await submit(cluster, reader, settings: settings, lines: source)
            try #require(accepted.status == 202, "\(accepted.raw)")
            let path = try #require(header(accepted, "Location"))
            let id = try #require(accepted.body["id"] as? String)
            var status: [String: Any] = [:]
            let started = try await eventually(timeout: .seconds(120)) {
                status = try await get(cluster, reader, path).body
                return (status["blocks_done"] as? Int ?? 0) >= 2
            }
            try #require(started, "no chunk done: \(status)\n\(cluster.output)")
            try await first.kill9()
            status = try await get(cluster, reader, path).body
            try #require(status["status"] as? String == "running" && (status["blocks_done"] as? Int ?? 0) < 30, "finished before the kill: \(status)")
            let doneAtKill = status["blocks_done"] as? Int ?? 0
            // Input and output together always account for every block: nothing lost, nothing twice.
            let stages = try await cluster.database.query("SELECT stage, count(*) FROM health_deidentify_blocks GROUP BY stage ORDER BY stage")
                .map { (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1)) }
            #expect(stages.map(\.0) == ["input", "output"] && stages.map(\.1).reduce(0, +) == 30 && stages[1].1 == doneAtKill, "\(stages)")
            let notReady = try await get(cluster, reader, path + "/result")
            #expect(notReady.status == 409 && errorDetail(notReady.body)["code"] as? String == "job_not_completed")

            try cluster.startWorker("mingus-privacy-worker", environment: chunked)
            status = try await finished(cluster, reader, path)
            #expect(status["status"] as? String == "completed" && status["rows_done"] as? Int == count && status["blocks_done"] as? Int == 30, "\(status)")
            let rows = objects(try await get(cluster, reader, path + "/result").raw)
            try #require(rows.count == count)
            // Each row as Safe Harbor gives it, in upload order.
            let columns = DeidentifyFixture.columns.compactMapValues(IdentifierKind.init(rawValue:))
            let deidentifier = Deidentifier(columns: columns, referenceYear: 2026)
            var differing = 0
            for (index, line) in source.enumerated() {
                guard case .object(let row) = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)) else { differing += 1; continue }
                let expected = canonical(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(deidentifier.anonymize(row))))
                if rows[index] != expected { differing += 1 }
            }
            #expect(differing == 0)
            let events = try await cluster.database.query("""
                SELECT count(*) FROM audit_events WHERE action = 'hipaa.deidentify' AND details->>'job_id' = \(id)
                """)[0].decode(Int.self, at: 0)
            #expect(events == 1)
        } catch {
            try? await cluster.stopCleanly()
            throw error
        }
        try await cluster.stopCleanly()
    }
}
