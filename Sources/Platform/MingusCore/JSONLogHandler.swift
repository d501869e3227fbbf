public import Logging
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"ts":"…","level":"info","label":"…","msg":"…", …metadata}`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = self.line(for: event, at: Date())
        // A closed or broken standard error (its reader gone) loses the line, never the process.
        Self.output.withLock { _ in try? FileHandle.standardError.write(contentsOf: line) }
    }

    /// The event's line, newline included.
    func line(for event: LogEvent, at time: Date) -> [UInt8] {
        var fields: Logger.Metadata = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        fields["ts"] = .string(RFC3339.format(time))
        fields["level"] = .string(event.level.rawValue)
        fields["label"] = .string(label)
        fields["msg"] = .string(event.message.description)
        var line = JSONWriter(capacity: 256)
        Self.write(.dictionary(fields), to: &line)
        line.raw("\n")
        return line.bytes
    }

    private static let output = Mutex(())

    /// Written by hand, keys sorted: `JSONSerialization`'s sorted keys and Foundation's ISO 8601
    /// style loaded ICU's locale and time zone data into every process at its first log line.
    private static func write(_ value: Logger.Metadata.Value, to line: inout JSONWriter) {
        switch value {
        case .string(let string): line.string(string)
        case .stringConvertible(let convertible): line.string(convertible.description)
        case .array(let values):
            line.raw("[")
            for (index, element) in values.enumerated() {
                if index > 0 { line.raw(",") }
                write(element, to: &line)
            }
            line.raw("]")
        case .dictionary(let members):
            line.raw("{")
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line.raw(",") }
                line.string(member.key)
                line.raw(":")
                write(member.value, to: &line)
            }
            line.raw("}")
        }
    }
}

/// Process-wide logging set-up shared by every executable.
public enum MingusLogging {
    private static let installed = Atomic<Bool>(false)

    /// Installs the JSON handler at `level`, first thing in `main`; later calls do nothing.
    public static func bootstrap(level: Logger.Level) {
        guard installed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        // Writing to a pipe whose reader has gone must fail the write, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
    }
}
