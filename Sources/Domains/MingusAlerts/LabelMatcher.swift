import Foundation
import MingusCore

/// One Alertmanager-style label matcher: `name="value"`, `name!="value"`, `name=~"regex"` or
/// `name!~"regex"`. A missing label matches as the empty string; regexes are anchored.
public struct LabelMatcher: @unchecked Sendable, Equatable, CustomStringConvertible {
    // @unchecked: NSRegularExpression is immutable and documented as safe to share between threads.

    /// How the label's value is compared.
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "=", notEqual = "!=", matchesRegex = "=~", notMatchesRegex = "!~"
    }

    public let name: String
    public let op: Operator
    public let value: String
    private let regex: NSRegularExpression?

    public init(name: String, op: Operator, value: String) throws(LabelMatcherError) {
        guard Self.isLabelName(name) else {
            throw LabelMatcherError("'\(name)' is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        }
        self.name = name
        self.op = op
        self.value = value
        switch op {
        case .equal, .notEqual:
            regex = nil
        case .matchesRegex, .notMatchesRegex:
            guard let compiled = try? NSRegularExpression(pattern: "^(?:\(value))$") else {
                throw LabelMatcherError("'\(value)' is not a valid regular expression")
            }
            regex = compiled
        }
    }

    /// Reads `name<op>"value"` (the quotes are optional for values without spaces or quotes).
    public init(parsing text: String) throws(LabelMatcherError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let nameEnd = trimmed.firstIndex(where: { "=!~".contains($0) }) else {
            throw LabelMatcherError("'\(text)' is not a matcher: expected name=\"value\", !=, =~ or !~")
        }
        let name = trimmed[..<nameEnd].trimmingCharacters(in: .whitespaces)
        let rest = trimmed[nameEnd...]
        guard let op = Operator.allCases.sorted(by: { $0.rawValue.count > $1.rawValue.count })
            .first(where: { rest.hasPrefix($0.rawValue) }) else {
            throw LabelMatcherError("'\(text)' has no operator: use =, !=, =~ or !~")
        }
        var value = rest.dropFirst(op.rawValue.count).trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\"") else {
                throw LabelMatcherError("'\(text)' has an unterminated quoted value")
            }
            value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
                .replacingOccurrences(of: "\\\\", with: "\\")
        }
        try self.init(name: name, op: op, value: value)
    }

    /// Whether `labels` satisfy this matcher.
    public func matches(_ labels: [String: String]) -> Bool {
        let actual = labels[name] ?? ""
        switch op {
        case .equal: return actual == value
        case .notEqual: return actual != value
        case .matchesRegex: return fullMatch(actual)
        case .notMatchesRegex: return !fullMatch(actual)
        }
    }

    private func fullMatch(_ text: String) -> Bool {
        guard let regex else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    public var description: String {
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\(name)\(op.rawValue)\"\(escaped)\""
    }

    public static func == (lhs: LabelMatcher, rhs: LabelMatcher) -> Bool {
        lhs.name == rhs.name && lhs.op == rhs.op && lhs.value == rhs.value
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
    public static func isLabelName(_ text: some StringProtocol) -> Bool {
        guard let first = text.unicodeScalars.first, text.count <= 128 else { return false }
        func letter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" }
        return letter(first) && text.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }
}

extension Array where Element == LabelMatcher {
    /// Whether every matcher matches (an empty list matches everything).
    public func matchAll(_ labels: [String: String]) -> Bool { allSatisfy { $0.matches(labels) } }
}

/// A matcher that cannot be read, and why.
public struct LabelMatcherError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
