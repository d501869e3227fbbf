import Foundation
@testable import MingusRuntime
import Testing

@Suite("JSON parser of job bodies")
struct JSONParserTests {
    @Test("reads what JSONSerialization reads, to the same values", arguments: [
        #"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#,
        #"[]"#, #"{}"#, #" [ 1 , 2 ] "#, #""text""#, "3", "-0", "0.5", "-12.75e-3", "1E+2", "123456789012345", "1234567890123456789",
        #"{"k": "a\"b\\c\/d\b\f\n\r\t"}"#,
        #"{"unicode": "caf\u00e9 \u20ac \ud83d\ude00 ünïcödé 😀"}"#,
        #"{"dup": 1, "dup": 2}"#,
        #"{"lines":[{"service":"api","level":"info","message":"GET /x 200","time":1764201600000000,"raw":false}],"received_at":1764201600000000}"#,
    ])
    func sameAsFoundation(text: String) throws {
        let data = Data(text.utf8)
        let expected = try JSONValue(any: JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]), path: "")
        #expect(try JSONParser.parse(data) == expected)
    }

    @Test("refuses what is not JSON", arguments: [
        "", " ", "{", "[1,]", #"{"a":1,}"#, "[1 2]", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "NaN", "Infinity",
        #"{"a" 1}"#, #"{a: 1}"#, "'x'", #""unterminated"#, "\"tab\there\"", #""\x""#, #""\u12""#, #""\ud83d""#, #""\ude00""#,
        #""\ud83d\u0041""#, "[1] [2]", "// comment\n1", "{\"a\":1}x",
    ])
    func refuses(text: String) {
        #expect(throws: JSONParser.Invalid.self) { try JSONParser.parse(Data(text.utf8)) }
    }

    @Test("refuses invalid UTF-8 and nesting deeper than 512")
    func limits() {
        #expect(throws: JSONParser.Invalid.self) { try JSONParser.parse(Data([0x22, 0xC3, 0x28, 0x22])) }
        #expect(throws: JSONParser.Invalid.self) { try JSONParser.parse(Data([0x22, 0xED, 0xA0, 0x80, 0x22])) }
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(throws: JSONParser.Invalid.self) { try JSONParser.parse(Data(deep.utf8)) }
        let fine = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect((try? JSONParser.parse(Data(fine.utf8))) != nil)
    }
}
