import Foundation
@testable import MingusLogs
@testable import MingusRuntime
import Testing
import TestSupport

@Suite("Log batch bodies read from the parsed schema check")
struct LogsBatchBodyTests {
    @Test("a body read from its parsed value equals the one JSONDecoder reads", arguments: [
        LogsBatchJob(lines: [LogRecord(time: 1_764_201_600_123_456, service: "api", level: "info", message: "GET /x 200 in 3 ms \u{1F600} \"q\"\\n"),
                             LogRecord(time: -5, service: "db", level: "unknown", message: "", raw: true)],
                     receivedAt: 1_764_201_601_000_000, cardSources: ["billing", "web"]),
        LogsBatchJob(lines: [], receivedAt: 0),
    ])
    func sameAsDecoder(job: LogsBatchJob) throws {
        let bytes = try JSONEncoder.mingus.encode(job)
        let schema = try JSONSchema(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/schemas/logs.batch.v1.json"))
        let (value, violations) = schema.check(bytes)
        #expect(violations.isEmpty)
        let parsed = try LogsBatchJob(json: JSONBody(try #require(value)))
        #expect(parsed == job)
        #expect(try JSONDecoder.mingus.decode(LogsBatchJob.self, from: bytes) == job)
    }

    @Test("the body written by hand is the document JSONEncoder writes, passes its schema and reads back to the same job", arguments: [
        LogsBatchJob(lines: [LogRecord(time: 1_764_201_600_123_456, service: "api", level: "info",
                                       message: "tab\tnew\nline\r bell\u{07} nul\u{00} quote\" slash\\ \u{1F600} é"),
                             LogRecord(time: -5, service: "db", level: "unknown", message: "", raw: true)],
                     receivedAt: 1_764_201_601_000_000, cardSources: ["billing", "web"]),
        LogsBatchJob(lines: [], receivedAt: 0),
    ])
    func writtenByHand(job: LogsBatchJob) throws {
        let written = job.json()
        #expect(try JSONDecoder.mingus.decode(LogsBatchJob.self, from: Data(written)) == job)
        let encoded = try JSONEncoder.mingus.encode(job)
        let same = try JSONSerialization.jsonObject(with: Data(written)) as? NSDictionary
        #expect(same == (try JSONSerialization.jsonObject(with: encoded) as? NSDictionary))
        let schema = try JSONSchema(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/schemas/logs.batch.v1.json"))
        #expect(schema.validate(Data(written)).isEmpty)
    }

    @Test("the level a plain line names in its first words", arguments: [
        ("2026-11-27 04:00:00 ERROR disk full", "error"), ("[warn] low memory", "warn"), ("ts=1 level=info msg=ok", "info"),
        ("Ünïcödé façade WARNING ahead", "warn"), ("E 12 failed", "unknown"), ("nothing to see here", "unknown"),
        ("one two three four five six seven eight error", "unknown"), ("CRIT: raid degraded", "fatal"), ("", "unknown"),
    ])
    func levelInText(line: String, expected: String) {
        #expect(LogIntake.levelInText(line) == expected)
    }

    @Test("a line's variables are its words in the template's wildcard slots", arguments: [
        ("job 42 finished in 7 ms", "job <*> finished in <*> ms", ["42", "7"]),
        ("  job   42  ", "job <*>", ["42"]),
        ("a b c", "a <*>", []), ("a", "a <*>", []), ("", "<*>", []),
        ("x <*> y", "x <*> y", []), ("user=ann ok", "user=<*> ok", ["user=ann"]), ("café 😀 ok", "café <*> ok", ["😀"]),
    ])
    func variables(line: String, template: String, expected: [String]) {
        #expect(LogsWorker.variables(line, template: template) == expected)
    }

    @Test("template words with a wildcard", arguments: [("<*>", true), ("id=<*>", true), ("<<*>>", true), ("<*", false), ("*>", false), ("<a*>", false), ("", false)])
    func wildcard(word: String, expected: Bool) {
        #expect(LogsWorker.hasWildcard(word.utf8) == expected)
    }
}
