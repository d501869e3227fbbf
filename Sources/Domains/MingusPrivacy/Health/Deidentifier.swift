import Foundation
public import MingusHTTP
public import MingusSecurity

/// How far a set of rows is de-identified (`POST /api/hipaa/deidentify`).
public enum DeidentificationLevel: String, Sendable, CaseIterable {
    /// The rows as given; for callers entitled to the identified data. Guarantees nothing.
    case none
    /// Every identifier column replaced by a keyed token (deterministic AES-256-GCM under the
    /// `health-pseudonym` key): equal values give equal tokens, so rows still join, and only the
    /// key turns a token back into its value. Dates, ages and ZIP codes are kept: still
    /// identifiable health information under HIPAA and personal data under GDPR (Art. 4(5)).
    case pseudonymized
    /// HIPAA Safe Harbor, 164.514(b)(2): the 18 identifier kinds removed or generalised (ZIP to its
    /// first three digits or `000`, dates to the year, ages over 89 to `90+`). Does not cover
    /// what a column declared `keep` holds, nor the "actual knowledge" condition of (b)(2)(ii).
    case anonymized
    /// Safe Harbor first, then counts per group of the `group_by` columns, groups smaller than
    /// the threshold suppressed. No complementary suppression: totals may reveal a suppressed cell.
    case aggregated
}

/// What a column holds: one of the 18 Safe Harbor identifier kinds, `keep` (not an identifier:
/// amounts, codes) or `text` (free text, scrubbed of recognisable identifiers).
public enum IdentifierKind: String, Sendable, CaseIterable {
    case name, geographic, zip, date, birthDate = "birth_date", age, phone, fax, email, ssn
    case medicalRecord = "medical_record", healthPlan = "health_plan", account, license, vehicle, device
    case url, ip, biometric, photo, otherId = "other_id", keep, text

    /// Removed outright by Safe Harbor.
    var isRemoved: Bool {
        switch self {
        case .zip, .date, .birthDate, .age, .keep, .text: false
        default: true
        }
    }
}

/// De-identification of rows of JSON values whose columns the caller classified
/// (``IdentifierKind``). Pure: the keyring is only read for pseudonym tokens.
public struct Deidentifier: Sendable {
    /// Three-digit ZIP areas of 20,000 people or fewer (HHS guidance, 2000 census): written `000`.
    public static let restrictedZip3: Set<String> = ["036", "059", "063", "102", "203", "556", "692", "790", "821", "823",
                                                     "830", "831", "878", "879", "884", "890", "893"]

    public let columns: [String: IdentifierKind]
    /// The year ages are computed in (from a birth date): the reference date's.
    public let referenceYear: Int
    let keyring: Keyring?

    public init(columns: [String: IdentifierKind], referenceYear: Int, keyring: Keyring? = nil) {
        self.columns = columns
        self.referenceYear = referenceYear
        self.keyring = keyring
    }

    /// One row at `level` (`aggregated` rows are the `anonymized` ones, grouped by ``aggregate``).
    public func apply(_ row: [String: JSONValue], level: DeidentificationLevel) throws -> [String: JSONValue] {
        switch level {
        case .none: return row
        case .pseudonymized: return try pseudonymize(row)
        case .anonymized, .aggregated: return anonymize(row)
        }
    }

    /// Safe Harbor on one row.
    public func anonymize(_ row: [String: JSONValue]) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        out.reserveCapacity(row.count)
        for (column, value) in row {
            guard let kind = columns[column], !kind.isRemoved else { continue }
            switch kind {
            case .zip: out[column] = Self.zip3(value)
            case .date: out[column] = Self.year(value).map { .integer(Int64($0)) } ?? .null
            case .birthDate:
                if let year = Self.year(value) {
                    out[column] = referenceYear - year > 89 ? .string("90+") : .integer(Int64(year))
                } else {
                    out[column] = .null
                }
            case .age: out[column] = Self.age(value)
            case .text:
                if case .string(let text) = value { out[column] = .string(TextScrubber.scrub(text)) } else { out[column] = .null }
            default: out[column] = value
            }
        }
        return out
    }

    /// Identifier columns replaced by tokens; the rest kept.
    public func pseudonymize(_ row: [String: JSONValue]) throws -> [String: JSONValue] {
        guard let keyring else { throw KeyringError("pseudonyms need the health-pseudonym key") }
        var out = row
        for (column, value) in row {
            guard let kind = columns[column], kind.isRemoved, value != .null else { continue }
            out[column] = .string(try Self.token(value, kind: kind, keyring: keyring))
        }
        return out
    }

    /// The keyed token of `value` (`tok_v<version>_<base64url>`).
    static func token(_ value: JSONValue, kind: IdentifierKind, keyring: Keyring) throws -> String {
        let sealed = try keyring.sealDeterministic(Array(plain(value).utf8), purpose: .healthPseudonym, context: "pseudonym|\(kind.rawValue)")
        let text = Data(sealed.combined).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "tok_v\(sealed.version)_\(text)"
    }

    /// The value behind a token, with the key; nil when it is not a token of that kind.
    public static func reveal(_ token: String, kind: IdentifierKind, keyring: Keyring) -> String? {
        let parts = token.split(separator: "_", maxSplits: 2)
        guard parts.count == 3, parts[0] == "tok", parts[1].hasPrefix("v"), let version = Int(parts[1].dropFirst()) else { return nil }
        var base64 = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              let plain = try? keyring.open(SealedValue(version: version, combined: Array(data)), purpose: .healthPseudonym,
                                            context: "pseudonym|\(kind.rawValue)") else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }

    static func plain(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .bool(let flag): String(flag)
        case .null: ""
        case .array, .object: String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
        }
    }

    /// The first three digits of a US ZIP code, `000` for the restricted areas; null otherwise.
    static func zip3(_ value: JSONValue) -> JSONValue {
        let text = plain(value)
        let digits = text.utf8.prefix(5)
        guard digits.count == 5, digits.allSatisfy({ (48...57).contains($0) }) else { return .null }
        let three = String(decoding: digits.prefix(3), as: UTF8.self)
        return .string(restrictedZip3.contains(three) ? "000" : three)
    }

    /// The year of `YYYY…` text (a date or a date-time); nil otherwise.
    static func year(_ value: JSONValue) -> Int? {
        guard case .string(let text) = value else { return nil }
        let head = Array(text.utf8.prefix(5))
        guard head.count >= 4, head[0..<4].allSatisfy({ (48...57).contains($0) }), head.count == 4 || head[4] == UInt8(ascii: "-") else { return nil }
        return head[0..<4].reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    /// An age: kept up to 89, `90+` above.
    static func age(_ value: JSONValue) -> JSONValue {
        let years: Int64? = switch value {
        case .integer(let number): number
        case .number(let number): number.isFinite ? Int64(number) : nil
        case .string(let text): Int64(text)
        default: nil
        }
        guard let years, years >= 0 else { return .null }
        return years > 89 ? .string("90+") : .integer(years)
    }

    /// One group of an aggregate: its values and the count, or `suppressed` when below the threshold.
    public struct Cell: Encodable, Sendable, Equatable {
        public var group: [String: JSONValue]
        public var count: Int?
        public var suppressed: Bool
    }

    /// Counts of anonymized rows per group of `groupBy`; groups with fewer than `minimumCell`
    /// rows are listed without their count.
    public func aggregate(_ rows: [[String: JSONValue]], groupBy: [String], minimumCell: Int) -> [Cell] {
        var counts: [[JSONValue]: Int] = [:]
        for row in rows {
            let anonymous = anonymize(row)
            counts[groupBy.map { anonymous[$0] ?? .null }, default: 0] += 1
        }
        return counts.map { key, count in
            Cell(group: Dictionary(uniqueKeysWithValues: zip(groupBy, key)), count: count < minimumCell ? nil : count, suppressed: count < minimumCell)
        }.sorted { Self.plain(.array(Array($0.group.values))) < Self.plain(.array(Array($1.group.values))) }
    }
}

/// Replaces recognisable identifiers in free text: e-mail addresses, URLs, IP addresses, SSNs,
/// phone and fax numbers, ZIP codes and dates (to the year). Best effort: names, addresses and
/// identifiers in other shapes are not recognised, so free text is not Safe Harbor without review.
enum TextScrubber {
    static let patterns: [(NSRegularExpression, String)] = [
        (#"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#, "[email]"),
        (#"(?i)\b(?:https?://|www\.)\S+"#, "[url]"),
        (#"\b(?:\d{1,3}\.){3}\d{1,3}\b"#, "[ip]"),
        (#"\b\d{3}-\d{2}-\d{4}\b"#, "[ssn]"),
        (#"(?:\+?1[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b"#, "[phone]"),
        (#"\b(\d{4})-\d{2}-\d{2}\b"#, "$1"),
        (#"\b\d{1,2}/\d{1,2}/(\d{4})\b"#, "$1"),
        (#"\b\d{5}(?:-\d{4})?\b"#, "[zip]"),
    ].map { (try! NSRegularExpression(pattern: $0.0), $0.1) }

    static func scrub(_ text: String) -> String {
        guard text.contains(where: { $0.isNumber || $0 == "@" || $0 == "/" }) else { return text }
        var out = text
        for (pattern, template) in patterns {
            out = pattern.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: template)
        }
        return out
    }
}
