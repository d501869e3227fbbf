public import Foundation

/// A Swift value that can be sent to PostgreSQL as a text-format parameter.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text input format.
    var postgresText: String { get }
}

/// A Swift value that can be read from PostgreSQL's text output format.
public protocol PostgresDecodable: Sendable {
    /// Creates a value from PostgreSQL's text output; nil when the text is not a valid value.
    init?(postgresText: String)
}

// MARK: - Text and numbers

extension String: PostgresEncodable, PostgresDecodable {
    /// The string itself.
    public var postgresText: String { self }

    /// The text itself.
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresEncodable, PostgresDecodable {
    /// Decimal digits.
    public var postgresText: String { String(self) }

    /// Parses decimal digits.
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    /// Decimal digits.
    public var postgresText: String { String(self) }

    /// Parses decimal digits.
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    /// Decimal digits.
    public var postgresText: String { String(self) }

    /// Parses decimal digits.
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int16: PostgresEncodable, PostgresDecodable {
    /// Decimal digits.
    public var postgresText: String { String(self) }

    /// Parses decimal digits.
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    /// `true` or `false`.
    public var postgresText: String { self ? "true" : "false" }

    /// Parses `t`/`f` (what the server prints) and `true`/`false`.
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    /// The shortest text that reads back as the same value; `NaN`, `Infinity`, `-Infinity` as PostgreSQL spells them.
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }

    /// Parses a float8 or numeric as printed by the server.
    public init?(postgresText: String) {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(postgresText)
        }
    }
}

// MARK: - Foundation types

extension UUID: PostgresEncodable, PostgresDecodable {
    /// Lower-case hyphenated form.
    public var postgresText: String { uuidString.lowercased() }

    /// Parses the hyphenated form.
    public init?(postgresText: String) { self.init(uuidString: postgresText) }
}

extension Date: PostgresEncodable, PostgresDecodable {
    /// A UTC timestamptz with microseconds, e.g. `2026-11-23 10:00:00.123456+00`.
    public var postgresText: String { PostgresTimestamp.format(self) }

    /// Parses a timestamptz, timestamp or date as printed with `DateStyle = ISO`
    /// (timestamps without a zone are taken as UTC).
    public init?(postgresText: String) {
        guard let date = PostgresTimestamp.parse(postgresText) else { return nil }
        self = date
    }
}

extension Data: PostgresEncodable, PostgresDecodable {
    /// bytea hex format: `\x` followed by two hex digits per byte.
    public var postgresText: String { PostgresBytea.encode(self) }

    /// Parses bytea hex format.
    public init?(postgresText: String) {
        guard let bytes = PostgresBytea.decode(postgresText) else { return nil }
        self.init(bytes)
    }
}

// MARK: - Arrays

/// A type whose Swift arrays have a PostgreSQL text form: a PostgreSQL array for most element
/// types, bytea for `[UInt8]`.
public protocol PostgresArrayElement: Sendable {
    /// The text form of an array of this element type.
    static func postgresArrayText(_ elements: [Self]) -> String

    /// Parses the text form of an array of this element type; nil when invalid.
    static func postgresArray(from text: String) -> [Self]?
}

extension PostgresArrayElement where Self: PostgresEncodable & PostgresDecodable {
    /// A one-dimensional array literal with every element quoted, e.g. `{"a","b \"c\""}`.
    public static func postgresArrayText(_ elements: [Self]) -> String {
        PostgresArrayLiteral.encode(elements.map(\.postgresText))
    }

    /// Parses a one-dimensional array literal; a NULL element makes it invalid.
    public static func postgresArray(from text: String) -> [Self]? {
        guard let items = PostgresArrayLiteral.decode(text) else { return nil }
        var elements: [Self] = []
        elements.reserveCapacity(items.count)
        for item in items {
            guard let item, let element = Self(postgresText: item) else { return nil }
            elements.append(element)
        }
        return elements
    }
}

extension String: PostgresArrayElement {}
extension Int: PostgresArrayElement {}
extension Int64: PostgresArrayElement {}
extension Int32: PostgresArrayElement {}
extension Int16: PostgresArrayElement {}
extension Bool: PostgresArrayElement {}
extension Double: PostgresArrayElement {}
extension UUID: PostgresArrayElement {}
extension Date: PostgresArrayElement {}

extension UInt8: PostgresArrayElement {
    /// `[UInt8]` is bytea, in hex format.
    public static func postgresArrayText(_ elements: [UInt8]) -> String {
        PostgresBytea.encode(elements)
    }

    /// Parses bytea hex format.
    public static func postgresArray(from text: String) -> [UInt8]? {
        PostgresBytea.decode(text)
    }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement & PostgresEncodable & PostgresDecodable {
    /// An array literal with NULL for nil, e.g. `{"a",NULL}`.
    public static func postgresArrayText(_ elements: [Wrapped?]) -> String {
        PostgresArrayLiteral.encode(elements.map { $0?.postgresText })
    }

    /// Parses a one-dimensional array literal; NULL elements are nil.
    public static func postgresArray(from text: String) -> [Wrapped?]? {
        guard let items = PostgresArrayLiteral.decode(text) else { return nil }
        var elements: [Wrapped?] = []
        elements.reserveCapacity(items.count)
        for item in items {
            guard let item else { elements.append(nil); continue }
            guard let element = Wrapped(postgresText: item) else { return nil }
            elements.append(element)
        }
        return elements
    }
}

/// `[[UInt8]]` is `bytea[]`.
extension Array: PostgresArrayElement where Element == UInt8 {}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// A PostgreSQL array literal, or bytea for `[UInt8]`.
    public var postgresText: String { Element.postgresArrayText(self) }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    /// Parses a one-dimensional PostgreSQL array, or bytea for `[UInt8]`.
    public init?(postgresText: String) {
        guard let elements = Element.postgresArray(from: postgresText) else { return nil }
        self = elements
    }
}

// MARK: - Formats

/// bytea's hex format.
enum PostgresBytea {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var text: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        text.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"),
              utf8.count % 2 == 0
        else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// One-dimensional array literals, e.g. `{1,2,NULL}` or `{"a b","c\"d"}`.
/// PostgreSQL's text form of one-dimensional arrays (`{"a","b\\"c",NULL}`).
public enum PostgresArrayLiteral {
    /// Built over UTF-8 bytes (a quote and a backslash are single bytes that no multi-byte
    /// character contains): multi-row statements send every column of a batch this way, and
    /// COPY rows their array columns.
    public static func encode(_ items: [String?]) -> String {
        var text: [UInt8] = [UInt8(ascii: "{")]
        text.reserveCapacity(items.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, item) in items.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            guard let item else {
                text.append(contentsOf: "NULL".utf8)
                continue
            }
            text.append(UInt8(ascii: "\""))
            for byte in item.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { text.append(UInt8(ascii: "\\")) }
                text.append(byte)
            }
            text.append(UInt8(ascii: "\""))
        }
        text.append(UInt8(ascii: "}"))
        return String(decoding: text, as: UTF8.self)
    }

    /// The elements (nil for NULL), or nil when the text is not a one-dimensional array literal.
    static func decode(_ text: String) -> [String?]? {
        let utf8 = Array(text.utf8)
        guard utf8.first == UInt8(ascii: "{"), utf8.last == UInt8(ascii: "}") else { return nil }
        let body = utf8[1..<(utf8.count - 1)]
        if body.isEmpty { return [] }

        var items: [String?] = []
        var index = body.startIndex
        while true {
            var item: [UInt8] = []
            var quoted = false
            if index < body.endIndex, body[index] == UInt8(ascii: "\"") {
                quoted = true
                index += 1
                while true {
                    guard index < body.endIndex else { return nil }
                    let byte = body[index]
                    if byte == UInt8(ascii: "\"") { index += 1; break }
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                        guard index < body.endIndex else { return nil }
                    }
                    item.append(body[index])
                    index += 1
                }
            } else {
                while index < body.endIndex, body[index] != UInt8(ascii: ",") {
                    let byte = body[index]
                    // Nested arrays and quotes inside unquoted elements are not one-dimensional text.
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "\"") {
                        return nil
                    }
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                        guard index < body.endIndex else { return nil }
                    }
                    item.append(body[index])
                    index += 1
                }
            }
            let string = String(decoding: item, as: UTF8.self)
            items.append(!quoted && string.uppercased() == "NULL" ? nil : string)

            if index == body.endIndex { return items }
            guard body[index] == UInt8(ascii: ",") else { return nil }
            index += 1
        }
    }
}

/// Timestamps as text, in UTC with microseconds, computed with proleptic Gregorian calendar
/// arithmetic (no Foundation formatters, which round to milliseconds).
enum PostgresTimestamp {
    private static let secondsPerDay: Int64 = 86_400

    static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        // Beyond ±285,000 years PostgreSQL has no timestamp anyway; avoid overflowing Int64.
        guard seconds.isFinite, abs(seconds) < 9e12 else {
            return seconds > 0 ? "infinity" : "-infinity"
        }
        let micros = Int64((seconds * 1_000_000).rounded())
        let wholeSeconds = floorDivide(micros, 1_000_000)
        let fraction = micros - wholeSeconds * 1_000_000
        let days = floorDivide(wholeSeconds, secondsPerDay)
        let secondOfDay = wholeSeconds - days * secondsPerDay
        let (year, month, day) = civilDate(fromDays: days)

        let isBC = year <= 0
        var text = pad(isBC ? 1 - year : year, 4)
        text += "-\(pad(month, 2))-\(pad(day, 2)) "
        text += "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
        text += ".\(pad(fraction, 6))+00"
        if isBC { text += " BC" }
        return text
    }

    /// Parses `YYYY-MM-DD[ HH:MM:SS[.ffffff]][±HH[:MM[:SS]]][ BC]`; `infinity` gives an infinite date.
    static func parse(_ text: String) -> Date? {
        switch text {
        case "infinity": return Date(timeIntervalSince1970: .infinity)
        case "-infinity": return Date(timeIntervalSince1970: -.infinity)
        default: break
        }
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.number(minDigits: 4, maxDigits: 7), scanner.skip("-"),
              let month = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip("-"),
              let day = scanner.number(minDigits: 2, maxDigits: 2),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }

        var secondOfDay: Int64 = 0
        var micros: Int64 = 0
        var offsetSeconds: Int64 = 0
        if scanner.skip(" ") || scanner.skip("T") {
            guard let hour = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip(":"),
                  let minute = scanner.number(minDigits: 2, maxDigits: 2), scanner.skip(":"),
                  let second = scanner.number(minDigits: 2, maxDigits: 2),
                  hour <= 24, minute < 60, second < 61
            else { return nil }
            secondOfDay = hour * 3600 + minute * 60 + second
            if scanner.skip(".") {
                guard let (digits, count) = scanner.digits(max: 6) else { return nil }
                var scaled = digits
                for _ in count..<6 { scaled *= 10 }
                micros = scaled
            }
            if let sign = scanner.sign() {
                guard let hours = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
                var offset = hours * 3600
                if scanner.skip(":") {
                    guard let minutes = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
                    offset += minutes * 60
                    if scanner.skip(":") {
                        guard let seconds = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
                        offset += seconds
                    }
                }
                offsetSeconds = sign * offset
            }
        }
        var astronomicalYear = year
        if scanner.skip(" BC") { astronomicalYear = 1 - year }
        guard scanner.isAtEnd else { return nil }

        let days = daysSinceEpoch(year: astronomicalYear, month: month, day: day)
        let seconds = days * secondsPerDay + secondOfDay - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    // Howard Hinnant's `days_from_civil` and `civil_from_days`.
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilDate(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// A cursor over ASCII text.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var isAtEnd: Bool { index == bytes.count }

        mutating func skip(_ literal: String) -> Bool {
            let expected = Array(literal.utf8)
            guard bytes.count - index >= expected.count,
                  Array(bytes[index..<(index + expected.count)]) == expected
            else { return false }
            index += expected.count
            return true
        }

        mutating func sign() -> Int64? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }

        /// Up to `max` digits, and how many were read; nil when there are none.
        mutating func digits(max: Int) -> (Int64, Int)? {
            var value: Int64 = 0
            var count = 0
            while index < bytes.count, count < max, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
                count += 1
            }
            return count == 0 ? nil : (value, count)
        }

        mutating func number(minDigits: Int, maxDigits: Int) -> Int64? {
            guard let (value, count) = digits(max: maxDigits), count >= minDigits else { return nil }
            return value
        }
    }
}
