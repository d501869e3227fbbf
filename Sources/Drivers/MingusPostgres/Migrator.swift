public import Foundation
public import Logging

/// Applies numbered SQL files (`NNNN_name.sql`) to a database, once each, in version order.
///
/// Applied versions are recorded in `mingus_schema_migrations` with the SHA-256 of the file.
/// Each file runs in its own transaction together with its record, under a transaction-level
/// advisory lock, so concurrent migrators serialize and a failed file leaves nothing behind.
/// A file must not contain transaction control (`BEGIN`, `COMMIT`) or statements that cannot
/// run in a transaction (`CREATE INDEX CONCURRENTLY`).
public struct Migrator: Sendable {
    /// The folder holding the migration files.
    public let directory: URL
    private let client: PostgresClient
    private let logger: Logger

    /// An arbitrary constant key for `pg_advisory_xact_lock`, shared by every migrator.
    private static let lockKey: Int64 = 0x6D69_6E67_7573_6462  // "mingusdb"

    /// Creates a migrator for the files in `directory`.
    public init(directory: URL, client: PostgresClient, logger: Logger = Logger(label: "mingus.postgres.migrator")) {
        self.directory = directory
        self.client = client
        self.logger = logger
    }

    /// Applies every file not applied yet, in version order, and returns what it applied.
    ///
    /// Throws `MigrationError.checksumMismatch` naming the file if an applied file has changed,
    /// before applying anything. Running it again applies nothing.
    @discardableResult
    public func apply() async throws -> [AppliedMigration] {
        let files = try MigrationFile.load(from: directory)
        let applied = try await client.withTransaction { connection in
            try await Self.lock(connection)
            try await connection.executeScript(Self.createTable)
            return try await Self.appliedChecksums(connection)
        }
        try await verify(files, against: applied)

        var results: [AppliedMigration] = []
        for file in files where applied[file.version] == nil {
            let started = ContinuousClock.now
            let checksum = try await client.withTransaction { connection -> String? in
                try await Self.lock(connection)
                // Another migrator may have applied it since we looked.
                if let existing = try await Self.appliedChecksums(connection, version: file.version)[file.version] {
                    try await Self.verify(file, appliedChecksum: existing, connection: connection)
                    return nil
                }
                try await connection.executeScript(file.sql)
                let rows = try await connection.query(
                    """
                    INSERT INTO mingus_schema_migrations (version, name, checksum)
                    VALUES (\(file.version), \(file.name), encode(sha256(\(file.contents)::bytea), 'hex'))
                    RETURNING checksum
                    """
                )
                return try rows.first?.decode(String.self, at: 0)
            }
            guard let checksum else { continue }
            let duration = ContinuousClock.now - started
            logger.info(
                "applied migration",
                metadata: [
                    "mingus.db.migration.version": "\(file.version)",
                    "mingus.db.migration.file": "\(file.fileName)",
                    "mingus.db.migration.duration": "\(duration)",
                ]
            )
            results.append(AppliedMigration(version: file.version, name: file.name, checksum: checksum, duration: duration))
        }
        return results
    }

    /// Every migration file with whether and when it was applied, and whether it changed since.
    public func status() async throws -> [MigrationStatus] {
        let files = try MigrationFile.load(from: directory)
        return try await client.withConnection { connection in
            let exists = try await connection.query("SELECT to_regclass('mingus_schema_migrations') IS NOT NULL")
            guard try exists.first?.decode(Bool.self, at: 0) == true else {
                return files.map { MigrationStatus(version: $0.version, name: $0.name, appliedAt: nil, checksumMismatch: false) }
            }
            let rows = try await connection.query("SELECT version, applied_at, checksum FROM mingus_schema_migrations")
            var applied: [Int: (appliedAt: Date, checksum: String)] = [:]
            for row in rows {
                applied[try row.decode(Int.self, at: 0)] = (try row.decode(Date.self, at: 1), try row.decode(String.self, at: 2))
            }
            var statuses: [MigrationStatus] = []
            for file in files {
                var status = MigrationStatus(version: file.version, name: file.name, appliedAt: nil, checksumMismatch: false)
                if let record = applied[file.version] {
                    status.appliedAt = record.appliedAt
                    status.checksumMismatch = try await Self.checksum(of: file, connection: connection) != record.checksum
                }
                statuses.append(status)
            }
            return statuses
        }
    }

    // MARK: - Internals

    private static let createTable = """
        CREATE TABLE IF NOT EXISTS mingus_schema_migrations (
            version    int PRIMARY KEY,
            name       text NOT NULL,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    private static func lock(_ connection: PostgresConnection) async throws {
        try await connection.execute("SELECT pg_advisory_xact_lock(\(lockKey))")
    }

    private static func appliedChecksums(_ connection: PostgresConnection, version: Int? = nil) async throws -> [Int: String] {
        let rows =
            if let version {
                try await connection.query("SELECT version, checksum FROM mingus_schema_migrations WHERE version = \(version)")
            } else {
                try await connection.query("SELECT version, checksum FROM mingus_schema_migrations")
            }
        var checksums: [Int: String] = [:]
        for row in rows {
            checksums[try row.decode(Int.self, at: 0)] = try row.decode(String.self, at: 1)
        }
        return checksums
    }

    private static func checksum(of file: MigrationFile, connection: PostgresConnection) async throws -> String {
        let rows = try await connection.query("SELECT encode(sha256(\(file.contents)::bytea), 'hex')")
        guard let row = rows.first else { throw PostgresError(kind: .decoding, message: "sha256 returned no row") }
        return try row.decode(String.self, at: 0)
    }

    private func verify(_ files: [MigrationFile], against applied: [Int: String]) async throws {
        let appliedFiles = files.filter { applied[$0.version] != nil }
        guard !appliedFiles.isEmpty else { return }
        try await client.withConnection { connection in
            for file in appliedFiles {
                try await Self.verify(file, appliedChecksum: applied[file.version]!, connection: connection)
            }
        }
    }

    private static func verify(_ file: MigrationFile, appliedChecksum: String, connection: PostgresConnection) async throws {
        let current = try await checksum(of: file, connection: connection)
        if current != appliedChecksum {
            throw MigrationError.checksumMismatch(file: file.fileName, version: file.version)
        }
    }
}

/// A migration `Migrator.apply()` ran.
public struct AppliedMigration: Sendable, Equatable {
    /// The number the file name starts with.
    public var version: Int
    /// The file name between the number and `.sql`.
    public var name: String
    /// SHA-256 of the file, hex.
    public var checksum: String
    /// How long the file took, with its record.
    public var duration: Duration
}

/// Whether a migration file has been applied.
public struct MigrationStatus: Sendable, Equatable {
    /// The number the file name starts with.
    public var version: Int
    /// The file name between the number and `.sql`.
    public var name: String
    /// When it was applied; nil while pending.
    public var appliedAt: Date?
    /// The file changed after it was applied.
    public var checksumMismatch: Bool

    /// Whether the migration has been applied.
    public var isApplied: Bool { appliedAt != nil }
}

/// A problem with the migration files themselves.
public enum MigrationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// An applied file was changed afterwards.
    case checksumMismatch(file: String, version: Int)
    /// A `.sql` file whose name is not `NNNN_name.sql`.
    case invalidFileName(String)
    /// Two files share a version number.
    case duplicateVersion(Int, files: [String])
    /// A file could not be read.
    case unreadable(file: String, reason: String)

    /// One line naming the file.
    public var description: String {
        switch self {
        case .checksumMismatch(let file, let version):
            "migration \(file) (version \(version)) was changed after it was applied: its checksum differs from the recorded one"
        case .invalidFileName(let file):
            "migration file \(file) is not named NNNN_name.sql"
        case .duplicateVersion(let version, let files):
            "migration version \(version) is used by more than one file: \(files.joined(separator: ", "))"
        case .unreadable(let file, let reason):
            "cannot read migration \(file): \(reason)"
        }
    }
}

/// One `NNNN_name.sql` file.
struct MigrationFile: Sendable {
    let version: Int
    let name: String
    let fileName: String
    let contents: Data

    /// The SQL text (invalid UTF-8 is repaired; the checksum still covers the exact bytes).
    var sql: String { String(decoding: contents, as: UTF8.self) }

    /// The directory's `.sql` files, sorted by version; other files are ignored.
    static func load(from directory: URL) throws -> [MigrationFile] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError.unreadable(file: directory.path, reason: "\(error.localizedDescription)")
        }
        var files: [MigrationFile] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            let stem = fileName.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"),
                  stem[..<underscore].allSatisfy({ ("0"..."9").contains($0) }),
                  let version = Int(stem[..<underscore]),
                  stem.index(after: underscore) < stem.endIndex
            else {
                throw MigrationError.invalidFileName(fileName)
            }
            let contents: Data
            do {
                contents = try Data(contentsOf: directory.appendingPathComponent(fileName))
            } catch {
                throw MigrationError.unreadable(file: fileName, reason: "\(error.localizedDescription)")
            }
            let name = String(stem[stem.index(after: underscore)...])
            files.append(MigrationFile(version: version, name: name, fileName: fileName, contents: contents))
        }
        files.sort { $0.version < $1.version }
        for (previous, next) in zip(files, files.dropFirst()) where previous.version == next.version {
            throw MigrationError.duplicateVersion(next.version, files: [previous.fileName, next.fileName])
        }
        return files
    }
}
