import Foundation
import Logging
@testable import MingusCore
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("a line is one JSON object with sorted keys, the RFC 3339 time, the handler's, provided and event metadata, escaped text")
    func line() throws {
        var handler = JSONLogHandler(label: "mingus.test", level: .info)
        handler.metadata = ["mingus.worker": "payments", "shared": "handler"]
        handler.metadataProvider = Logger.MetadataProvider { ["mingus.trace": "t-1", "shared": "provider"] }
        let event = LogEvent(level: .warning, message: "line one\nsaid \"hi\" \\ \u{01} é/ü",
                             metadata: ["shared": "event", "nested": .dictionary(["b": "2", "a": .array(["x", .stringConvertible(42)])])],
                             source: nil, file: #fileID, function: #function, line: #line)
        let time = Date(timeIntervalSince1970: 1_795_000_000.125)
        let bytes = handler.line(for: event, at: time)

        #expect(bytes.last == 0x0A)
        #expect(bytes.dropLast().contains(0x0A) == false, "a line must not contain a raw newline")
        let text = String(decoding: bytes.dropLast(), as: UTF8.self)
        // Keys in byte order at every level, nothing between tokens: what `JSONSerialization` with
        // sorted keys wrote before.
        #expect(text == #"{"label":"mingus.test","level":"warning","mingus.trace":"t-1","mingus.worker":"payments","#
            + #""msg":"line one\nsaid \"hi\" \\ \u0001 é/ü","nested":{"a":["x","42"],"b":"2"},"shared":"event","#
            + #""ts":"2026-11-18T11:06:40.125Z"}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["msg"] as? String == "line one\nsaid \"hi\" \\ \u{01} é/ü")
        #expect(object["ts"] as? String == RFC3339.format(time))
    }
}
