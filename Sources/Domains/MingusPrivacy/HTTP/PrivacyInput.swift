import Foundation
import HTTPTypes
import MingusHTTP

/// Checks of the privacy routes' fields; every error names the field and the rule.
enum PrivacyInput {
    /// A data subject's id: the user id the other domains use (`financial_records.user_id`,
    /// `metadata.user_id` of payments): 1-128 of A-Z, a-z, 0-9, `.`, `_`, `:`, `@`, `-`.
    static func subject(_ body: JSONRequestBody, _ name: String = "subject_id") throws -> String {
        let text = try body.string(name)
        guard isSubject(text) else {
            throw APIError.invalidField(name, rule: "format", "\(name) must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':', '@' and '-'")
        }
        return text
    }

    static func isSubject(_ text: String) -> Bool {
        isIdentifier(text, length: 1...128, extra: "._:@-")
    }

    /// A subject id from the path: 400 `format` unless well formed.
    static func subjectParameter(_ text: String?) throws -> String {
        guard let text = text?.removingPercentEncoding, isSubject(text) else {
            throw APIError.invalidParameter("subject_id", rule: "format", "subject_id must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':', '@' and '-'")
        }
        return text
    }

    /// A required text field (422 `required` when blank, `length`, `characters`).
    static func text(_ body: JSONRequestBody, _ name: String, max: Int) throws -> String {
        guard let text = try body.text(name, max: max) else {
            throw APIError(.badRequest, code: "invalid_request", message: "\(name) is required", field: name, rule: "required")
        }
        return text
    }

    /// An optional RFC 3339 time: 400 `type` unless a string, 422 `format` unless RFC 3339.
    static func date(_ body: JSONRequestBody, _ name: String) throws -> Date? {
        guard let text = try body.optionalString(name) else { return nil }
        guard let date = APITime.parse(text) else {
            throw APIError.invalidField(name, rule: "format", "\(name) must be an RFC 3339 date-time")
        }
        return date
    }

    /// An optional boolean: 400 `type` unless one.
    static func bool(_ body: JSONRequestBody, _ name: String) throws -> Bool? {
        switch body.value(name) {
        case nil: return nil
        case .bool(let value)?: return value
        default: throw APIError(.badRequest, code: "invalid_request", message: "\(name) must be a JSON boolean", field: name, rule: "type")
        }
    }

    /// An optional whole number in `range`: 400 `type`, 422 `range`.
    static func integer(_ body: JSONRequestBody, _ name: String, _ range: ClosedRange<Int64>) throws -> Int64? {
        guard body.value(name) != nil else { return nil }
        let value = try body.integer(name)
        guard range.contains(value) else {
            throw APIError.invalidField(name, rule: "range", "\(name) must be from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// An optional array of strings: 400 `type` unless one.
    static func strings(_ body: JSONRequestBody, _ name: String) throws -> [String]? {
        switch body.value(name) {
        case nil: return nil
        case .array(let values)?:
            return try values.map {
                guard case .string(let text) = $0 else {
                    throw APIError(.badRequest, code: "invalid_request", message: "\(name) must be an array of strings", field: name, rule: "type")
                }
                return text
            }
        default: throw APIError(.badRequest, code: "invalid_request", message: "\(name) must be an array of strings", field: name, rule: "type")
        }
    }

    /// One of `allowed`: 422 `enum` otherwise.
    static func oneOf(_ value: String, _ name: String, _ allowed: [String]) throws -> String {
        guard allowed.contains(value) else {
            throw APIError.invalidField(name, rule: "enum", "\(name) must be one of \(allowed.joined(separator: ", "))")
        }
        return value
    }

    /// A lower-case name such as a purpose (`marketing_email`).
    static func isName(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard (2...64).contains(scalars.count), ("a"..."z").contains(scalars[0]) else { return false }
        return scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
