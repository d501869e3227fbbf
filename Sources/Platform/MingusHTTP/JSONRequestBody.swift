import Foundation
public import Hummingbird
import NIOCore

/// A JSON value as a request sent it, so each field's type can be checked and named in errors.
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let fields): try container.encode(fields)
        }
    }
}

/// A JSON object request body: read with a size limit, its fields checked one by one. Every
/// error names the field and the rule, never the value.
public struct JSONRequestBody: Sendable {
    /// The bytes as sent (for idempotency hashes).
    public let raw: [UInt8]
    /// The object's fields.
    public let fields: [String: JSONValue]

    /// Reads the body: 415 unless `application/json`, 413 beyond `limit` bytes, 400 unless a JSON
    /// object, 400 for a field outside `allowed`.
    public static func read(_ request: Request, limit: Int, allowed: Set<String>) async throws -> JSONRequestBody {
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
    public func value(_ name: String) -> JSONValue? {
        guard let value = fields[name], value != .null else { return nil }
        return value
    }

    /// A required string: 400 `required` when absent, `type` when not a string.
    public func string(_ name: String) throws -> String {
        guard let value = try optionalString(name) else { throw missing(name) }
        return value
    }

    /// A string, nil when absent or null: 400 `type` when not a string.
    public func optionalString(_ name: String) throws -> String? {
        switch value(name) {
        case nil: return nil
        case .string(let text)?: return text
        default: throw wrongType(name, "string")
        }
    }

    /// A text field that PostgreSQL can store: nil when absent; 422 `required` when blank (unless
    /// `blank`), `length` beyond `max` characters (Unicode scalars, as JSON Schema counts them),
    /// `characters` for U+0000.
    public func text(_ name: String, max: Int, blank: Bool = false) throws -> String? {
        guard let text = try optionalString(name) else { return nil }
        if !blank && text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw APIError.invalidField(name, rule: "required", "\(name) must not be blank")
        }
        guard text.unicodeScalars.count <= max else { throw APIError.invalidField(name, rule: "length", "\(name) must have at most \(max) characters") }
        guard !text.unicodeScalars.contains("\0") else { throw APIError.invalidField(name, rule: "characters", "\(name) cannot contain U+0000") }
        return text
    }

    /// A required whole number (`2.0` counts): 400 `required` or `type` otherwise.
    public func integer(_ name: String) throws -> Int64 {
        switch value(name) {
        case nil: throw missing(name)
        case .integer(let number)?: return number
        case .number(let number)? where number == number.rounded() && abs(number) < 9e15: return Int64(number)
        default: throw wrongType(name, "integer")
        }
    }

    /// A required JSON object: 400 `required` or `type` otherwise.
    public func object(_ name: String) throws -> [String: JSONValue] {
        guard let value = try optionalObject(name) else { throw missing(name) }
        return value
    }

    /// A JSON object, nil when absent or null: 400 `type` when not an object.
    public func optionalObject(_ name: String) throws -> [String: JSONValue]? {
        switch value(name) {
        case nil: return nil
        case .object(let fields)?: return fields
        default: throw wrongType(name, "object")
        }
    }
}

/// Whether `text` has `length` characters, each an ASCII letter or digit or one of `extra`.
public func isIdentifier(_ text: String, length: ClosedRange<Int>, extra: String) -> Bool {
    length.contains(text.count)
        && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || extra.unicodeScalars.contains($0)) }
}

