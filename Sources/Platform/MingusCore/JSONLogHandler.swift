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
        var fields: [String: Any] = [:]
        for (key, value) in metadata { fields[key] = Self.json(value) }
        if let provided = metadataProvider?.get() {
            for (key, value) in provided { fields[key] = Self.json(value) }
        }
        if let extra = event.metadata {
            for (key, value) in extra { fields[key] = Self.json(value) }
        }
        fields["ts"] = Self.timestamp()
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["msg"] = event.message.description
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(0x0A)
        // A closed or broken standard error (its reader gone) loses the line, never the process.
        Self.output.withLock { _ in try? FileHandle.standardError.write(contentsOf: line) }
    }

    private static let output = Mutex(())

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): values.mapValues(json)
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
