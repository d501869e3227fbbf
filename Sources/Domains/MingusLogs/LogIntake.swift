public import Foundation
import MingusCore

/// One log line as the logs worker receives it: already redacted.
public struct LogRecord: Codable, Sendable, Equatable {
    /// Microseconds since 1970 (the shipper's time, or the gateway's when it sent none).
    public var time: Int64
    public var service: String
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `unknown`.
    public var level: String
    public var message: String
    /// True when the line could not be parsed in its declared format and is kept as raw text.
    public var raw: Bool

    public init(time: Int64, service: String, level: String, message: String, raw: Bool = false) {
        self.time = time
        self.service = service
        self.level = level
        self.message = message
        self.raw = raw
    }
}

/// What a shipper sent, by body shape.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (Vector's and Fluent Bit's `json_lines`).
    case jsonLines = "json_lines"
    /// A JSON array of objects (Vector's and Fluent Bit's `http` output with `json`).
    case jsonArray = "json_array"
    /// The Loki push API's JSON (`{"streams": [{"stream": {…}, "values": [["<ns>", "line"], …]}]}`).
    case loki
    /// OTLP/HTTP logs in JSON (`{"resourceLogs": […]}`).
    case otlp
    /// Text: one line each, RFC 5424 or RFC 3164 syslog where a line is one, plain otherwise.
    case text
}

/// Turns request bodies into records: every format shippers send, one line never failing its
/// neighbours. Messages are redacted here, before anything else sees them.
public struct LogIntake: Sendable {
    public let redactor = LogRedactor()
    /// The service of lines that name none (the API key's name).
    public var defaultService: String
    /// Now, in microseconds since 1970, for lines without a time.
    public var now: Int64

    public init(defaultService: String, now: Int64 = Int64(Date().timeIntervalSince1970 * 1_000_000)) {
        self.defaultService = defaultService
        self.now = now
    }

    /// The result of one body.
    public struct Batch: Sendable {
        public var records: [LogRecord] = []
        /// Lines kept as raw text because they were not valid in the body's format.
        public var malformed = 0
        public var redactions = Redactions()
        /// Services whose lines held a card number.
        public var cardSources: Set<String> = []
    }

    /// Why a body is refused as a whole (its shape is not any known format).
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// Picks the format from the content type and the body's first byte.
    public static func detect(contentType: String, body: [UInt8]) -> LogFormat? {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let first = body.first { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }
        switch type {
        case "text/plain", "application/octet-stream", "": return .text
        case "application/x-ndjson", "application/jsonl", "application/json-lines", "application/x-jsonlines": return .jsonLines
        case "application/json":
            if first == UInt8(ascii: "[") { return .jsonArray }
            guard first == UInt8(ascii: "{") else { return nil }
            // One object on its own is Loki or OTLP by its keys, or a single record; anything else
            // starting with an object is JSON lines.
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return .jsonLines }
            if object["resourceLogs"] is [Any] { return .otlp }
            if object["streams"] is [Any] { return .loki }
            if object["resourceLogs"] != nil { return .otlp }
            if object["streams"] != nil { return .loki }
            return .jsonLines
        default: return nil
        }
    }

    public func parse(_ body: [UInt8], as format: LogFormat) throws -> Batch {
        var batch = Batch()
        switch format {
        case .text:
            for line in body.split(separator: 0x0A, omittingEmptySubsequences: true) {
                var text = String(decoding: line, as: UTF8.self)
                if text.hasSuffix("\r") { text.removeLast() }
                if text.isEmpty { continue }
                add(Syslog.parse(text, defaultService: defaultService, now: now), to: &batch)
            }
        case .jsonLines:
            for line in body.split(separator: 0x0A, omittingEmptySubsequences: true) {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    if !text.isEmpty { add(raw: text, to: &batch) }
                    continue
                }
                add(record(from: object), to: &batch)
            }
        case .jsonArray:
            guard let items = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else {
                throw Refusal(description: "the body is not a JSON array")
            }
            for item in items {
                if let object = item as? [String: Any] {
                    add(record(from: object), to: &batch)
                } else if let text = item as? String {
                    add(LogRecord(time: now, service: defaultService, level: "unknown", message: text), to: &batch)
                } else {
                    add(raw: Self.jsonText(item), to: &batch)
                }
            }
        case .loki:
            guard let root = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let streams = root["streams"] as? [Any] else {
                throw Refusal(description: "the body is not a Loki push request (an object with streams)")
            }
            for case let stream as [String: Any] in streams {
                let labels = (stream["stream"] as? [String: Any]) ?? [:]
                let service = Self.firstString(labels, ["service_name", "service", "app", "job", "container", "host"]) ?? defaultService
                let level = Self.level(Self.firstString(labels, ["level", "detected_level", "severity"]))
                for value in (stream["values"] as? [Any]) ?? [] {
                    guard let pair = value as? [Any], pair.count >= 2, let nanos = (pair[0] as? String).flatMap(Int64.init),
                          let line = pair[1] as? String else {
                        add(raw: Self.jsonText(value), to: &batch)
                        continue
                    }
                    add(LogRecord(time: nanos / 1000, service: service, level: level == "unknown" ? Self.levelInText(line) : level,
                                  message: line), to: &batch)
                }
            }
        case .otlp:
            guard let root = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let resources = root["resourceLogs"] as? [Any] else {
                throw Refusal(description: "the body is not an OTLP logs request (an object with resourceLogs)")
            }
            for case let resource as [String: Any] in resources {
                let attributes = Self.otlpAttributes((resource["resource"] as? [String: Any])?["attributes"])
                let service = attributes["service.name"] ?? defaultService
                for case let scope as [String: Any] in (resource["scopeLogs"] as? [Any]) ?? [] {
                    for case let log as [String: Any] in (scope["logRecords"] as? [Any]) ?? [] {
                        guard let message = Self.otlpBody(log["body"]) else {
                            add(raw: Self.jsonText(log), to: &batch)
                            continue
                        }
                        let nanos = Self.int64(log["timeUnixNano"]).flatMap { $0 > 0 ? $0 : nil } ?? Self.int64(log["observedTimeUnixNano"])
                        let level = Self.level((log["severityText"] as? String).flatMap { $0.isEmpty ? nil : $0 })
                        add(LogRecord(time: nanos.map { $0 / 1000 } ?? now, service: service,
                                      level: level != "unknown" ? level : Self.otlpLevel(Self.int64(log["severityNumber"])),
                                      message: message), to: &batch)
                    }
                }
            }
        }
        return batch
    }

    private func add(_ record: LogRecord, to batch: inout Batch) {
        var record = record
        let (text, found) = redactor.redact(record.message)
        record.message = text
        if found.card > 0 { batch.cardSources.insert(record.service) }
        batch.redactions += found
        if record.raw { batch.malformed += 1 }
        batch.records.append(record)
    }

    private func add(raw text: String, to batch: inout Batch) {
        add(LogRecord(time: now, service: defaultService, level: Self.levelInText(text), message: text, raw: true), to: &batch)
    }

    // MARK: - JSON records

    /// A record from one shipper object: the message from `message`, `msg`, `log`, `MESSAGE` or
    /// `text`; the time from `timestamp`, `@timestamp`, `time`, `ts` or `date` (RFC 3339 text or
    /// seconds since 1970); the service from `service`, `service_name`, `app`, `application`,
    /// `container_name`, `kubernetes.container_name`, `host` or `hostname`; the level from `level`,
    /// `severity`, `log.level` or `lvl`. An object without a message is kept whole, as raw text.
    func record(from object: [String: Any]) -> LogRecord {
        guard let message = Self.firstString(object, ["message", "msg", "log", "MESSAGE", "text"]) else {
            return LogRecord(time: now, service: defaultService, level: "unknown", message: Self.jsonText(object), raw: true)
        }
        let kubernetes = object["kubernetes"] as? [String: Any]
        let service = Self.firstString(object, ["service", "service_name", "app", "application", "container_name"])
            ?? kubernetes.flatMap { Self.firstString($0, ["container_name", "pod_name"]) }
            ?? Self.firstString(object, ["host", "hostname"]) ?? defaultService
        var level = Self.level(Self.firstString(object, ["level", "severity", "log.level", "lvl", "loglevel"])
            ?? ((object["log"] as? [String: Any]).flatMap { $0["level"] as? String }))
        if level == "unknown" { level = Self.levelInText(message) }
        let time = ["timestamp", "@timestamp", "time", "ts", "date"].lazy.compactMap { Self.micros(object[$0]) }.first ?? now
        return LogRecord(time: time, service: service, level: level, message: message)
    }

    static func firstString(_ object: [String: Any], _ keys: [String]) -> String? {
        for key in keys {
            if let value = object[key] as? String, !value.isEmpty { return value }
        }
        return nil
    }

    static func jsonText(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "\(value)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func int64(_ value: Any?) -> Int64? {
        if let text = value as? String { return Int64(text) }
        if let number = value as? NSNumber { return number.int64Value }
        return nil
    }

    /// RFC 3339 text or seconds (fractional) since 1970, as microseconds.
    static func micros(_ value: Any?) -> Int64? {
        if let number = value as? NSNumber {
            let seconds = number.doubleValue
            // Milliseconds, microseconds or nanoseconds by magnitude.
            if seconds > 1e17 { return Int64(seconds / 1000) }
            if seconds > 1e14 { return Int64(seconds) }
            if seconds > 1e11 { return Int64(seconds * 1000) }
            return Int64(seconds * 1_000_000)
        }
        guard let text = value as? String else { return nil }
        return RFC3339.micros(text)
    }

    // MARK: - Levels

    /// A level name as one of ours.
    static func level(_ text: String?) -> String {
        guard let text else { return "unknown" }
        switch text.lowercased() {
        case "trace", "finest", "finer": return "trace"
        case "debug", "dbug", "fine", "verbose", "7": return "debug"
        case "info", "information", "informational", "notice", "inf", "6", "5": return "info"
        case "warn", "warning", "wrn", "4": return "warn"
        case "error", "err", "eror", "severe", "3": return "error"
        case "fatal", "critical", "crit", "alert", "emerg", "emergency", "panic", "0", "1", "2": return "fatal"
        default: return "unknown"
        }
    }

    /// The level a plain line names in its first words (`ERROR`, `[warn]`, `level=info`).
    /// Words are runs of letters and `=` in the first 120 bytes, read as UTF-8 bytes (bytes of
    /// other scripts count as letters): asking each `Character` whether it is a letter was the
    /// gateway's costliest step on plain text.
    static func levelInText(_ text: String) -> String {
        func isWordByte(_ byte: UInt8) -> Bool {
            (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "=") || byte >= 0x80
        }
        let head = text.utf8.prefix(120)
        for word in head.split(whereSeparator: { !isWordByte($0) }).prefix(8) {
            // Level names are 3 to 13 ASCII letters ("informational").
            guard word.count <= 19, word.allSatisfy({ $0 < 0x80 }) else { continue }
            var candidate = String(decoding: word, as: UTF8.self)
            if candidate.hasPrefix("level=") { candidate = String(candidate.dropFirst(6)) }
            guard (3...13).contains(candidate.utf8.count) else { continue }
            let found = level(candidate)
            if found != "unknown" { return found }
        }
        return "unknown"
    }

    /// OTLP severity numbers: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error, 21–24 fatal.
    static func otlpLevel(_ number: Int64?) -> String {
        guard let number, (1...24).contains(number) else { return "unknown" }
        return ["trace", "debug", "info", "warn", "error", "fatal"][Int((number - 1) / 4)]
    }

    // MARK: - OTLP values

    static func otlpValue(_ value: Any?) -> String? {
        guard let value = value as? [String: Any] else { return nil }
        if let text = value["stringValue"] as? String { return text }
        if let number = value["intValue"] { return "\(number)" }
        if let number = value["doubleValue"] { return "\(number)" }
        if let flag = value["boolValue"] as? Bool { return "\(flag)" }
        if let nested = value["kvlistValue"] ?? value["arrayValue"] { return jsonText(nested) }
        return nil
    }

    static func otlpBody(_ value: Any?) -> String? { otlpValue(value) }

    static func otlpAttributes(_ value: Any?) -> [String: String] {
        var attributes: [String: String] = [:]
        for case let pair as [String: Any] in (value as? [Any]) ?? [] {
            if let key = pair["key"] as? String, let text = otlpValue(pair["value"]) { attributes[key] = text }
        }
        return attributes
    }
}

/// Syslog lines: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`) and RFC 3164
/// (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`); the severity is PRI mod 8, the service the app
/// name or tag. Anything else is a plain line.
enum Syslog {
    static let severities = ["fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ line: String, defaultService: String, now: Int64) -> LogRecord {
        guard line.hasPrefix("<"), let close = line.firstIndex(of: ">"),
              let pri = Int(line[line.index(after: line.startIndex)..<close]), (0...191).contains(pri) else {
            return LogRecord(time: now, service: defaultService, level: LogIntake.levelInText(line), message: line)
        }
        let level = severities[pri % 8]
        let rest = line[line.index(after: close)...]
        if rest.hasPrefix("1 ") {
            // VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
            let fields = rest.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
            guard fields.count >= 7 else { return LogRecord(time: now, service: defaultService, level: level, message: line, raw: true) }
            let time = fields[1] == "-" ? now : (RFC3339.micros(String(fields[1])) ?? now)
            let app = fields[3] == "-" ? defaultService : String(fields[3])
            var message = fields[6]
            if message.hasPrefix("[") {
                // Structured data: skip its elements.
                var depth = 0
                var index = message.startIndex
                var escaped = false
                while index < message.endIndex {
                    let c = message[index]
                    if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "[" { depth += 1 } else if c == "]" {
                        depth -= 1
                        if depth == 0, message.index(after: index) == message.endIndex || message[message.index(after: index)] == " " {
                            index = message.index(after: index)
                            break
                        }
                    }
                    index = message.index(after: index)
                }
                message = message[index...]
            } else if message.hasPrefix("-") {
                message = message.dropFirst()
            }
            var text = String(message.drop { $0 == " " })
            if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
            return LogRecord(time: time, service: app, level: level, message: text)
        }
        // RFC 3164: "Mmm dd hh:mm:ss HOST TAG: MSG" (the year is the current one).
        let fields = rest.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5, let month = months.firstIndex(of: String(fields[0])), let day = Int(fields[1]),
              fields[2].count == 8 else {
            return LogRecord(time: now, service: defaultService, level: level, message: String(rest))
        }
        let clock = fields[2].split(separator: ":").compactMap { Int($0) }
        let year = Calendar(identifier: .gregorian).component(.year, from: Date(timeIntervalSince1970: Double(now) / 1e6))
        let time = clock.count == 3
            ? (Int64(RFC3339.daysFromCivil(year, month + 1, day)) * 86_400 + Int64(clock[0] * 3600 + clock[1] * 60 + clock[2])) * 1_000_000
            : now
        let tagAndMessage = fields.count == 6 ? "\(fields[4]) \(fields[5])" : String(fields[4])
        guard let colon = tagAndMessage.firstIndex(of: ":") else {
            return LogRecord(time: time, service: defaultService, level: level, message: tagAndMessage)
        }
        let tag = tagAndMessage[..<colon]
        let app = tag.split(separator: "[").first.map(String.init) ?? String(tag)
        let message = tagAndMessage[tagAndMessage.index(after: colon)...].drop { $0 == " " }
        return LogRecord(time: time, service: app.isEmpty ? defaultService : app, level: level, message: String(message))
    }
}
