import Foundation
import Hummingbird
import NIOCore

/// A JSON value as a request sent it, so each field's type can be checked and named in errors.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Plain Foundation values, for `JSONSerialization`.
    var foundationValue: Any {
        switch self {
        case .null: NSNull()
        case .bool(let value): value
        case .integer(let value): value
        case .number(let value): value
        case .string(let value): value
        case .array(let values): values.map(\.foundationValue)
        case .object(let fields): fields.mapValues(\.foundationValue)
        }
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON object request body: read with a size limit, its fields checked one by one. Every
/// error names the field and the rule, never the value.
struct JSONRequestBody: Sendable {
    /// The bytes as sent (for idempotency hashes).
    let raw: [UInt8]
    let fields: [String: JSONValue]

    /// Reads the body: 415 unless `application/json`, 413 beyond `limit` bytes, 400 unless a JSON
    /// object, 400 for a field outside `allowed`.
    static func read(_ request: Request, limit: Int, allowed: Set<String>) async throws -> JSONRequestBody {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == "application/json" else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "the body must be application/json")
        }
        let tooLarge = APIError(.contentTooLarge, code: "payload_too_large", message: "the body is larger than \(limit) bytes")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        let raw = Array(buffer.readableBytesView)
        guard case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(raw)) else {
            throw APIError(.badRequest, code: "invalid_json", message: "the body must be a JSON object")
        }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError(.badRequest, code: "invalid_request", message: "\(unknown) is not a field of this request",
                           field: unknown, rule: "unknown_field")
        }
        return JSONRequestBody(raw: raw, fields: fields)
    }

    private func missing(_ name: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: "\(name) is required", field: name, rule: "required")
    }

    private func wrongType(_ name: String, _ expected: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: "\(name) must be a JSON \(expected)", field: name, rule: "type")
    }

    /// The field's value, nil when absent or null.
    func value(_ name: String) -> JSONValue? {
        guard let value = fields[name], value != .null else { return nil }
        return value
    }

    func string(_ name: String) throws -> String {
        guard let value = try optionalString(name) else { throw missing(name) }
        return value
    }

    func optionalString(_ name: String) throws -> String? {
        switch value(name) {
        case nil: return nil
        case .string(let text)?: return text
        default: throw wrongType(name, "string")
        }
    }

    func integer(_ name: String) throws -> Int64 {
        switch value(name) {
        case nil: throw missing(name)
        case .integer(let number)?: return number
        case .number(let number)? where number == number.rounded() && abs(number) < 9e15: return Int64(number)
        default: throw wrongType(name, "integer")
        }
    }

    func object(_ name: String) throws -> [String: JSONValue] {
        guard let value = try optionalObject(name) else { throw missing(name) }
        return value
    }

    func optionalObject(_ name: String) throws -> [String: JSONValue]? {
        switch value(name) {
        case nil: return nil
        case .object(let fields)?: return fields
        default: throw wrongType(name, "object")
        }
    }
}

/// Whether `text` has `length` characters, each an ASCII letter or digit or one of `extra`.
func isIdentifier(_ text: String, length: ClosedRange<Int>, extra: String) -> Bool {
    length.contains(text.count)
        && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || extra.unicodeScalars.contains($0)) }
}

/// A 422 naming the field and the broken rule.
func invalidField(_ field: String, rule: String, _ message: String) -> APIError {
    APIError(.unprocessableContent, code: "invalid_field", message: message, field: field, rule: rule)
}

/// A JSON response from Foundation values (`NSNull` for null), keys sorted.
func jsonResponse(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) throws -> Response {
    jsonResponse(status, bytes: Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])),
                 headers: headers)
}

func jsonResponse(_ status: HTTPResponse.Status, bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// An RFC 3339 timestamp such as `2026-11-23T12:00:00.250+01:00`, or nil. Foundation's ISO 8601
/// parser rolls impossible fields over (February 30 reads as March 2, second 60 as the next
/// minute), so the fields it read must also be the ones written.
func rfc3339Date(_ text: String) -> Date? {
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

/// RFC 3339 with fractional seconds, as every timestamp the API returns.
func timestamp(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}
