public import Foundation
public import HTTPTypes
public import Hummingbird
import NIOCore

extension JSONEncoder {
    /// The API's one encoder: snake_case keys, RFC 3339 UTC times with fractional seconds
    /// (`2026-11-26T12:00:00.123Z`), sorted keys, slashes unescaped.
    public static let api: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(APITime.format(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// How the API writes and reads times: RFC 3339 in UTC, with fractional seconds when written.
public enum APITime {
    /// `2026-11-26T12:00:00.123Z`.
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// An RFC 3339 time such as `2026-11-23T12:00:00.250+01:00`, or nil. Foundation's ISO 8601
    /// parser rolls impossible fields over (February 30 reads as March 2, second 60 as the next
    /// minute), so the fields it read must also be the ones written.
    public static func parse(_ text: String) -> Date? {
        guard let date = try? Date(text, strategy: .iso8601) else { return nil }
        // The fields are compared on the whole seconds: a fraction such as .9999999999 rounds up.
        var bytes = Array(text.utf8)
        if bytes.count > 19, bytes[19] == UInt8(ascii: ".") {
            let end = bytes[20...].firstIndex { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? bytes.count
            bytes.removeSubrange(19..<end)
        }
        let written = String(decoding: bytes, as: UTF8.self)
        var offset = 0
        if bytes.last != UInt8(ascii: "Z") {
            guard bytes.count >= 6, let hours = Int(String(decoding: bytes[(bytes.count - 5)..<(bytes.count - 3)], as: UTF8.self)),
                  let minutes = Int(String(decoding: bytes[(bytes.count - 2)...], as: UTF8.self)) else { return nil }
            offset = (bytes[bytes.count - 6] == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
        }
        guard let whole = try? Date(written, strategy: .iso8601), let zone = TimeZone(secondsFromGMT: offset) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let fields = calendar.dateComponents([.era, .year, .month, .day, .hour, .minute, .second], from: whole)
        guard let era = fields.era, let year = fields.year, let month = fields.month, let day = fields.day,
              let hour = fields.hour, let minute = fields.minute, let second = fields.second else { return nil }
        let read = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", era == 0 ? 1 - year : year, month, day, hour, minute, second)
        return written.hasPrefix(read) ? date : nil
    }
}

/// A JSON answer: a `Codable` body through ``JSONEncoder/api``, with a status and headers.
public struct APIResponse<Body: Encodable & Sendable>: ResponseGenerator, Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: Body

    public init(_ status: HTTPResponse.Status, _ body: Body, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    /// A 200 answer.
    public init(_ body: Body, headers: HTTPFields = [:]) {
        self.init(.ok, body, headers: headers)
    }

    /// The encoded body, for callers that keep it (idempotent replays).
    public func encodedBody() throws -> [UInt8] {
        Array(try JSONEncoder.api.encode(body))
    }

    /// The answer, for a handler whose answers have different body types.
    public func encodedResponse() throws -> Response {
        .json(status, bytes: try encodedBody(), headers: headers)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try encodedResponse()
    }
}

extension Response {
    /// A JSON answer from bytes already encoded (by ``APIResponse`` earlier, for a replay).
    public static func json(_ status: HTTPResponse.Status, bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// An optional value written as JSON `null` when absent, where the contract lists the key
/// always (synthesized `Encodable` leaves out nil optionals).
@propertyWrapper
public struct Nullable<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

/// An opaque keyset cursor: the fields of the last row of a page, joined by `|` and base64
/// encoded. ``decode(_:fields:)`` refuses anything this API did not give.
public enum PageCursor {
    /// The cursor for a page ending at `fields`.
    public static func encode(_ fields: [String]) -> String {
        Data(fields.joined(separator: "|").utf8).base64EncodedString()
    }

    /// The fields of `cursor` (from the query parameter `name`): 400 unless it has `count` of them.
    public static func decode(_ cursor: String, fields count: Int, name: String = "cursor") throws -> [String] {
        guard let data = Data(base64Encoded: cursor), case let parts = String(decoding: data, as: UTF8.self).split(separator: "|"),
              parts.count == count else {
            throw APIError.invalidParameter(name, rule: "format", "\(name) is not one this API gave")
        }
        return parts.map(String.init)
    }

    /// The `limit` query parameter: `fallback` when absent, 400 (rule `range`) outside 1...`max`.
    public static func limit(_ query: Parameters, default fallback: Int, max: Int) throws -> Int {
        guard let text = query.get("limit") else { return fallback }
        guard let value = Int(text), (1...max).contains(value) else {
            throw APIError.invalidParameter("limit", rule: "range", "limit must be 1-\(max)")
        }
        return value
    }

    /// Microseconds since 1970, the precision of a PostgreSQL timestamp, for cursor fields.
    public static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }
}
