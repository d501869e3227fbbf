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

    /// An RFC 3339 time with or without fractional seconds; nil when it is not one.
    public static func parse(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
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

    /// Microseconds since 1970, the precision of a PostgreSQL timestamp, for cursor fields.
    public static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }
}
