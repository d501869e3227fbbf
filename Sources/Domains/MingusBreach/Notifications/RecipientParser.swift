import Foundation
import MingusMail

/// One person to notify, as an upload line gave it. `name` and `email` are personal data:
/// sealed before they are stored, never logged (this type prints only its line and id).
public struct RecipientRecord: Sendable, CustomStringConvertible {
    public var line: Int
    public var id: String
    public var name: String
    public var email: String
    public var jurisdiction: String

    public var description: String { "recipient \(id) (line \(line))" }
}

/// Why one upload line was refused: its number, the field and the rule (never the value).
public struct RecipientLineError: Error, Encodable, Sendable, Equatable {
    public var line: Int
    public var field: String
    public var rule: String
    public var message: String
}

/// The upload formats: JSON lines (one object per line) and CSV with a header row.
public enum RecipientFormat: String, Sendable {
    case ndjson = "application/x-ndjson"
    case csv = "text/csv"
}

/// A problem with the upload as a whole (a CSV header without a column, say): 400, nothing
/// stored from that point on.
public struct RecipientUploadError: Error, Sendable {
    public init(field: String, rule: String, message: String) {
        self.field = field
        self.rule = rule
        self.message = message
    }

    public var field: String
    public var rule: String
    public var message: String
}

/// Splits bytes into lines as they arrive (LF or CRLF ends; the last line may have none),
/// holding at most one line of `maxLength` bytes: a longer line is reported as too long and
/// skipped up to its end.
public struct LineSplitter: Sendable {
    /// One line: its number (from 1) and bytes without the line end, or nil when it was longer
    /// than the limit.
    public typealias Line = (number: Int, bytes: [UInt8]?)

    public let maxLength: Int
    private var pending: [UInt8] = []
    private var overflowing = false
    public private(set) var lineNumber = 0

    public init(maxLength: Int) {
        self.maxLength = maxLength
    }

    /// Feeds the next bytes; `emit` gets each line they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>, _ emit: (Line) throws -> Void) rethrows {
        var start = bytes.startIndex
        while start != bytes.endIndex {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                append(bytes[start...])
                return
            }
            append(bytes[start..<newline])
            try finishLine(emit)
            start = bytes.index(after: newline)
        }
    }

    /// Ends the input: emits the last line if it had no line end.
    public mutating func finish(_ emit: (Line) throws -> Void) rethrows {
        if !pending.isEmpty || overflowing { try finishLine(emit) }
    }

    private mutating func append(_ slice: some Collection<UInt8>) {
        guard !overflowing else { return }
        if pending.count + slice.count > maxLength + 1 {
            overflowing = true
            pending = []
        } else {
            pending.append(contentsOf: slice)
        }
    }

    private mutating func finishLine(_ emit: (Line) throws -> Void) rethrows {
        lineNumber += 1
        if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        let line: Line = overflowing || pending.count > maxLength ? (lineNumber, nil) : (lineNumber, pending)
        pending.removeAll(keepingCapacity: true)
        overflowing = false
        try emit(line)
    }
}

/// Turns upload lines into recipients or line errors: `id` (1–128 characters), `name` (1–256),
/// `email` (one address, at most 254 characters) and `jurisdiction` (ISO 3166-1 alpha-2 or a
/// US state as `US-XX`). Blank lines are skipped. For CSV, the first line is the header, naming
/// each of the four columns once in any order; a quoted field may hold commas and doubled
/// quotes, not line breaks.
public struct RecipientParser: Sendable {
    public static let fields = ["id", "name", "email", "jurisdiction"]
    public let format: RecipientFormat
    private var columns: [Int]?

    public init(format: RecipientFormat) {
        self.format = format
    }

    /// The recipient on `line`, nil for a blank line or the CSV header, or the line's error.
    /// Throws ``RecipientUploadError`` for a CSV header that cannot be used.
    public mutating func parse(_ line: LineSplitter.Line) throws -> Result<RecipientRecord, RecipientLineError>? {
        guard var bytes = line.bytes else {
            return .failure(RecipientLineError(line: line.number, field: "line", rule: "length",
                                               message: "line \(line.number) is longer than the limit"))
        }
        if line.number == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
            if format == .csv && columns == nil {
                throw RecipientUploadError(field: "header", rule: "required", message: "the first line must be the CSV header (id,name,email,jurisdiction)")
            }
            return nil
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(RecipientLineError(line: line.number, field: "line", rule: "encoding", message: "line \(line.number) is not UTF-8"))
        }
        switch format {
        case .ndjson: return .some(json(text, line: line.number))
        case .csv:
            guard let columns else {
                self.columns = try Self.header(text)
                return nil
            }
            return .some(csv(text, line: line.number, columns: columns))
        }
    }

    /// Whether a CSV upload has seen its header.
    public var hasHeader: Bool { columns != nil }

    private static func header(_ text: String) throws -> [Int] {
        guard let names = Self.splitCSV(text) else {
            throw RecipientUploadError(field: "header", rule: "format", message: "the CSV header is not valid CSV")
        }
        var positions: [String: Int] = [:]
        for (index, raw) in names.enumerated() {
            let name = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard fields.contains(name) else {
                throw RecipientUploadError(field: name.isEmpty ? "header" : String(name.prefix(64)), rule: "unknown_field",
                                           message: "column \(index + 1) of the header is not one of id, name, email, jurisdiction")
            }
            guard positions[name] == nil else {
                throw RecipientUploadError(field: name, rule: "duplicate", message: "the header names \(name) twice")
            }
            positions[name] = index
        }
        for field in fields where positions[field] == nil {
            throw RecipientUploadError(field: field, rule: "required", message: "the CSV header has no \(field) column")
        }
        return fields.map { positions[$0]! } + [names.count]
    }

    private func csv(_ text: String, line: Int, columns: [Int]) -> Result<RecipientRecord, RecipientLineError> {
        guard let values = Self.splitCSV(text) else {
            return .failure(RecipientLineError(line: line, field: "line", rule: "format", message: "line \(line) is not valid CSV (an unclosed or misplaced quote)"))
        }
        guard values.count == columns[4] else {
            return .failure(RecipientLineError(line: line, field: "line", rule: "columns",
                                               message: "line \(line) has \(values.count) fields, the header \(columns[4])"))
        }
        return Self.check(line: line, id: values[columns[0]], name: values[columns[1]], email: values[columns[2]],
                          jurisdiction: values[columns[3]])
    }

    private func json(_ text: String, line: Int) -> Result<RecipientRecord, RecipientLineError> {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return .failure(RecipientLineError(line: line, field: "line", rule: "json", message: "line \(line) is not a JSON object"))
        }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            return .failure(RecipientLineError(line: line, field: String(unknown.prefix(64)), rule: "unknown_field",
                                               message: "line \(line): not a field of a recipient"))
        }
        var values: [String] = []
        for field in Self.fields {
            guard let value = object[field] else {
                return .failure(RecipientLineError(line: line, field: field, rule: "required", message: "line \(line): \(field) is required"))
            }
            guard let string = value as? String else {
                return .failure(RecipientLineError(line: line, field: field, rule: "type", message: "line \(line): \(field) must be a string"))
            }
            values.append(string)
        }
        return Self.check(line: line, id: values[0], name: values[1], email: values[2], jurisdiction: values[3])
    }

    static func check(line: Int, id: String, name: String, email rawEmail: String, jurisdiction rawJurisdiction: String)
        -> Result<RecipientRecord, RecipientLineError>
    {
        func failure(_ field: String, _ rule: String, _ message: String) -> Result<RecipientRecord, RecipientLineError> {
            .failure(RecipientLineError(line: line, field: field, rule: rule, message: "line \(line): \(field) \(message)"))
        }
        let id = id.trimmingCharacters(in: .whitespaces)
        let name = name.trimmingCharacters(in: .whitespaces)
        let email = rawEmail.trimmingCharacters(in: .whitespaces)
        let jurisdiction = rawJurisdiction.trimmingCharacters(in: .whitespaces).uppercased()
        if id.isEmpty { return failure("id", "required", "is required") }
        if id.count > 128 { return failure("id", "length", "must be at most 128 characters") }
        if id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return failure("id", "characters", "must not hold control characters") }
        if name.isEmpty { return failure("name", "required", "is required") }
        if name.count > 256 { return failure("name", "length", "must be at most 256 characters") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return failure("name", "characters", "must not hold control characters") }
        if email.isEmpty { return failure("email", "required", "is required") }
        if email.utf8.count > 254 || !SMTPServerSettings.isAddress(email) { return failure("email", "format", "must be one e-mail address (local@domain)") }
        if jurisdiction.isEmpty { return failure("jurisdiction", "required", "is required") }
        if !BreachVocabulary.isJurisdiction(jurisdiction) { return failure("jurisdiction", "format", "must be a country code (DE) or a US state (US-TX)") }
        return .success(RecipientRecord(line: line, id: id, name: name, email: email, jurisdiction: jurisdiction))
    }

    /// Splits one CSV line (RFC 4180 quoting); nil when a quote is unclosed or misplaced.
    static func splitCSV(_ text: String) -> [String]? {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var atFieldStart = true
        var afterClosingQuote = false
        var iterator = text.makeIterator()
        var lookahead: Character? = nil
        func next() -> Character? {
            if let character = lookahead { lookahead = nil; return character }
            return iterator.next()
        }
        while let character = next() {
            if quoted {
                if character == "\"" {
                    if let following = iterator.next() {
                        if following == "\"" { field.append("\"") } else { quoted = false; afterClosingQuote = true; lookahead = following }
                    } else {
                        quoted = false
                        afterClosingQuote = true
                    }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case ",":
                fields.append(field)
                field = ""
                atFieldStart = true
                afterClosingQuote = false
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case "\"":
                return nil
            default:
                if afterClosingQuote { return nil }
                field.append(character)
                atFieldStart = false
            }
        }
        if quoted { return nil }
        fields.append(field)
        return fields
    }
}
