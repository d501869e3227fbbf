public import Foundation
import MingusHTTP
import Crypto
public import Logging
import MingusCore
public import MingusPostgres
public import MingusSecurity

/// Runs a sweep: for each data type, counts what is due and what holds keep, then archives and
/// deletes in bounded batches, each batch in short transactions of its own.
///
/// A batch is first claimed (its keys recorded in `retention_archive_batches`, under a lock per
/// data type so two sweepers never claim the same rows), then its rows are written to the archive
/// store as gzip-compressed JSON lines, synced and read back against their SHA-256, and only then
/// deleted (rows that became held meanwhile stay). A sweeper that dies at any point leaves its
/// batches claimed or archived; the next run finishes them before claiming more, so nothing is
/// deleted unarchived and no row is claimed twice. At the end of each data type a manifest of
/// its files (digests, rows, key ranges) is signed with the audit checkpoint key.
public struct RetentionSweeper: Sendable {
    public let database: PostgresClient
    public let archive: any ArchiveStore
    public let signer: AuditSigner
    public let batchSize: Int
    /// Rows per second a sweep claims at most, per data type (nil: as fast as it can), so that
    /// writers to the same tables keep their latency while it runs.
    public let maxRowsPerSecond: Int?
    public let logger: Logger

    public init(database: PostgresClient, archive: any ArchiveStore, signer: AuditSigner, batchSize: Int = 5000, maxRowsPerSecond: Int? = nil,
                logger: Logger) {
        self.database = database
        self.archive = archive
        self.signer = signer
        self.batchSize = batchSize
        self.maxRowsPerSecond = maxRowsPerSecond
        self.logger = logger
    }

    /// Spaces claims so that rows go at `maxRowsPerSecond` at most, counted from the data type's start.
    struct Pace {
        let limit: Int?
        let start = ContinuousClock.now
        var rows = 0

        mutating func wait(after claimed: Int) async throws {
            rows += claimed
            guard let limit else { return }
            try await Task.sleep(until: start + .seconds(Double(rows) / Double(limit)), clock: .continuous)
        }
    }

    /// What a sweep did for one data type.
    public struct Counts: Sendable, Equatable {
        public var eligible: Int64 = 0
        public var held: Int64 = 0
        public var archived: Int64 = 0
        public var deleted: Int64 = 0
        public var bytes: Int64 = 0

        mutating func add(_ other: Counts) {
            eligible += other.eligible
            held += other.held
            archived += other.archived
            deleted += other.deleted
            bytes += other.bytes
        }
    }

    /// Runs (or resumes) sweep `id`; returns the counts per data type.
    @discardableResult
    public func run(_ id: UUID) async throws -> [String: Counts] {
        let rows = try await database.query("""
            UPDATE retention_sweeps SET status = 'running', started_at = COALESCE(started_at, now())
            WHERE id = \(id) AND status IN ('queued', 'running') RETURNING data_types, dry_run
            """)
        guard let row = rows.first else { return [:] }
        let wanted = try row.decode([String]?.self, at: 0)
        let dryRun = try row.decode(Bool.self, at: 1)
        let policies = Dictionary(uniqueKeysWithValues: try await database.query("SELECT data_type, action FROM retention_policies").map {
            (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1))
        })
        var results: [String: Counts] = [:]
        do {
            for target in RetentionTarget.all where wanted?.contains(target.dataType) ?? true {
                guard let action = policies[target.dataType] else { continue }
                results[target.dataType] = try await sweep(target, action: action, sweep: id, dryRun: dryRun)
            }
        } catch {
            // The job is retried and resumes the sweep where it stopped; meanwhile the sweep shows why.
            _ = try? await database.execute("UPDATE retention_sweeps SET error = \("\(error)") WHERE id = \(id)")
            throw error
        }
        try await database.withTransaction { db in
            try await db.execute("UPDATE retention_sweeps SET status = 'completed', finished_at = now(), error = NULL WHERE id = \(id)")
            var details = ["dry_run": "\(dryRun)"]
            for (type, counts) in results {
                details[type] = "eligible \(counts.eligible), held \(counts.held), archived \(counts.archived), deleted \(counts.deleted)"
            }
            _ = try await AuditTrail.append(AuditEvent(actor: "retention-worker", action: "retention.sweep",
                                                       resource: "retention/sweeps/\(id.uuidString.lowercased())", outcome: .success,
                                                       details: details),
                                            component: "retention-worker", on: db)
        }
        return results
    }

    /// Sweeps one data type (resuming what an earlier run left); returns its counts.
    func sweep(_ target: RetentionTarget, action: String, sweep id: UUID, dryRun: Bool) async throws -> Counts {
        let started = ContinuousClock.now
        let existing = try await database.query("""
            INSERT INTO retention_sweep_results (sweep_id, data_type, action) VALUES (\(id), \(target.dataType), \(action))
            ON CONFLICT (sweep_id, data_type) DO UPDATE SET action = EXCLUDED.action
            RETURNING eligible, held, archived, deleted, bytes, finished, duration_ms
            """)[0]
        var counts = Counts(eligible: try existing.decode(Int64.self, at: 0), held: try existing.decode(Int64.self, at: 1),
                            archived: try existing.decode(Int64.self, at: 2), deleted: try existing.decode(Int64.self, at: 3),
                            bytes: try existing.decode(Int64.self, at: 4))
        if try existing.decode(Bool.self, at: 5) { return counts }
        let previousMilliseconds = try existing.decode(Int64.self, at: 6)

        let due = Self.dueCondition(target)
        let census = try await database.query("""
            SELECT count(*), count(*) FILTER (WHERE NOT (\(unescaped: target.notHeld)))
            FROM \(identifier: target.table) t WHERE \(unescaped: due)
            """)[0]
        if counts.eligible == 0 && counts.held == 0 {
            counts.eligible = try census.decode(Int64.self, at: 0)
            counts.held = try census.decode(Int64.self, at: 1)
        }
        if !dryRun {
            switch action {
            case "archive_then_delete" where target.dataType == RetentionTarget.auditEvent.dataType:
                try await AuditTrailSweep(sweeper: self, sweep: id).run(counts: &counts)
            case "archive_then_delete":
                try await archiveThenDelete(target, sweep: id, counts: &counts, started: started, before: previousMilliseconds)
                // Exact from the ledger, whatever an interrupted run had counted.
                let ledger = try await database.query("""
                    SELECT COALESCE(sum(rows), 0)::bigint, COALESCE(sum(deleted), 0)::bigint, COALESCE(sum(bytes), 0)::bigint
                    FROM retention_archive_batches WHERE sweep_id = \(id) AND data_type = \(target.dataType)
                    """)[0]
                counts.archived = try ledger.decode(Int64.self, at: 0)
                counts.deleted = try ledger.decode(Int64.self, at: 1)
                counts.bytes = try ledger.decode(Int64.self, at: 2)
            case "delete" where target.dataType == RetentionTarget.logLine.dataType:
                counts.deleted += try await dropLogPartitions()
            case "delete":
                try await deleteOnly(target, sweep: id, counts: &counts, started: started, before: previousMilliseconds)
            default:
                throw RetentionError("the \(action) action is not available for \(target.dataType)")
            }
        }
        try await record(counts, sweep: id, target: target, started: started, before: previousMilliseconds, finished: true)
        return counts
    }

    private func record(_ counts: Counts, sweep id: UUID, target: RetentionTarget, started: ContinuousClock.Instant, before: Int64,
                        finished: Bool) async throws {
        let elapsed = ContinuousClock.now - started
        let milliseconds = before + elapsed.inMilliseconds
        try await database.execute("""
            UPDATE retention_sweep_results SET eligible = \(counts.eligible), held = \(counts.held), archived = \(counts.archived),
                deleted = \(counts.deleted), bytes = \(counts.bytes), duration_ms = \(milliseconds), finished = \(finished)
            WHERE sweep_id = \(id) AND data_type = \(target.dataType)
            """)
    }

    static func dueCondition(_ target: RetentionTarget) -> String {
        target.due.replacingOccurrences(of: "$policy", with: "(SELECT retention FROM retention_policies WHERE data_type = '\(target.dataType)')")
    }

    // MARK: - Archive, then delete

    private func archiveThenDelete(_ target: RetentionTarget, sweep id: UUID, counts: inout Counts,
                                   started: ContinuousClock.Instant, before: Int64) async throws {
        // First what an earlier run left unfinished.
        let open = try await database.query("""
            SELECT id FROM retention_archive_batches WHERE data_type = \(target.dataType) AND status <> 'deleted' ORDER BY created_at
            """).map { try $0.decode(UUID.self, at: 0) }
        for batch in open {
            try await finish(batch, target, counts: &counts)
        }
        // Claims walk the key order from where the last one ended (no rescan of the rows just
        // deleted); an empty claim starts once more from the beginning for rows that became due or
        // ready behind the cursor, and the sweep ends when that finds nothing either. Each batch is
        // archived and deleted while the next one is claimed and read: the database works on one
        // while this process compresses and syncs the other.
        var cursor: String?
        var inFlight: Task<Counts, any Error>?
        var pace = Pace(limit: maxRowsPerSecond)
        do {
            while true {
                if let batch = try await claim(target, sweep: id, after: cursor) {
                    try await pace.wait(after: batch.rows)
                    if let previous = inFlight {
                        counts.add(try await previous.value)
                        try await record(counts, sweep: id, target: target, started: started, before: before, finished: false)
                    }
                    inFlight = Task { try await self.archiveAndDelete(batch, target) }
                    cursor = batch.last
                } else if let previous = inFlight {
                    // Rows waiting on the batch in flight (a fallback's delivery) may be ready once it is gone.
                    inFlight = nil
                    counts.add(try await previous.value)
                    try await record(counts, sweep: id, target: target, started: started, before: before, finished: false)
                } else if cursor != nil {
                    cursor = nil
                } else {
                    break
                }
            }
        } catch {
            _ = try? await inFlight?.value
            throw error
        }
        try await writeManifest(target, sweep: id)
    }

    /// A claimed batch with its archive lines, read in the claim's transaction.
    struct ClaimedBatch: Sendable {
        var id: UUID
        var first: String
        var last: String
        var rows: Int
        /// The JSON lines, each ending in a newline, in key order.
        var body: [UInt8]
    }

    /// Claims up to `batchSize` due, unheld rows no other batch holds, with keys after `after`, and
    /// reads their archive lines; nil when none is left. The keys go from the table to the ledger
    /// inside the database; only the lines come back.
    private func claim(_ target: RetentionTarget, sweep id: UUID, after: String?) async throws -> ClaimedBatch? {
        let due = Self.dueCondition(target)
        let batchSize = self.batchSize
        let batch = UUID()
        return try await database.withTransaction { db in
            // One claimer per data type at a time: each sees the batches committed before it. Rows
            // are not locked: the deletion checks again that each is due and unheld.
            // The batch's lines are read three times from the claimed set: kept in memory, not in temporary files.
            try await db.execute("SET LOCAL work_mem = '64MB'")
            try await db.execute("SELECT pg_advisory_xact_lock(hashtext(\("mingus.retention." + target.dataType)))")
            let row = try await db.query("""
                WITH picked AS MATERIALIZED (
                    SELECT t.\(unescaped: target.key) AS key, \(unescaped: target.archiveLine) AS line FROM \(identifier: target.table) t
                    WHERE \(unescaped: due) AND \(unescaped: target.notHeld) AND \(unescaped: target.ready ?? "true")
                      AND t.\(unescaped: target.key) NOT IN (SELECT unnest(b.keys)::\(unescaped: target.keyType) FROM retention_archive_batches b
                                                             WHERE b.data_type = \(target.dataType) AND b.status <> 'deleted')
                      AND t.\(unescaped: target.key) > \(after ?? target.lowestKey)::\(unescaped: target.keyType)
                    ORDER BY t.\(unescaped: target.key) LIMIT \(batchSize)
                ), ledger AS (
                    INSERT INTO retention_archive_batches (id, sweep_id, data_type, keys)
                    SELECT \(batch), \(id), \(target.dataType), array_agg(key::text ORDER BY key) FROM picked HAVING count(*) > 0
                    RETURNING keys[1] AS first, keys[cardinality(keys)] AS last
                )
                SELECT first, last, (SELECT count(*) FROM picked)::int, (SELECT string_agg(line, E'\\n' ORDER BY key) || E'\\n' FROM picked)
                FROM ledger
                """).first
            guard let row else { return nil }
            return ClaimedBatch(id: batch, first: try row.decode(String.self, at: 0), last: try row.decode(String.self, at: 1),
                                rows: try row.decode(Int.self, at: 2), body: Array(try row.decode(String.self, at: 3).utf8))
        }
    }

    /// Writes a claimed batch's file, then deletes its rows; returns what it did.
    private func archiveAndDelete(_ batch: ClaimedBatch, _ target: RetentionTarget) async throws -> Counts {
        var counts = Counts()
        counts.bytes = try await archiveFile(batch.id, target, body: batch.body, rows: batch.rows, range: (batch.first, batch.last))
        counts.archived = Int64(batch.rows)
        counts.deleted = try await deleteArchived(batch.id, target, keys: batch.rows)
        return counts
    }

    /// Archives a batch an earlier run claimed (if it is not yet) and deletes its rows.
    private func finish(_ batch: UUID, _ target: RetentionTarget, counts: inout Counts) async throws {
        let row = try await database.query("""
            SELECT status, keys[1], keys[cardinality(keys)], cardinality(keys) FROM retention_archive_batches WHERE id = \(batch)
            """)[0]
        let status = try row.decode(String.self, at: 0)
        if status == "claimed" {
            let lines = try await database.query("""
                SELECT count(*)::int, COALESCE(string_agg(\(unescaped: target.archiveLine), E'\\n' ORDER BY t.\(unescaped: target.key)) || E'\\n', '')
                FROM \(identifier: target.table) t
                WHERE t.\(unescaped: target.key) = ANY((SELECT keys FROM retention_archive_batches WHERE id = \(batch))::\(unescaped: target.keyType)[])
                """)[0]
            let rows = try lines.decode(Int.self, at: 0)
            counts.bytes += try await archiveFile(batch, target, body: Array(try lines.decode(String.self, at: 1).utf8), rows: rows,
                                                  range: (try row.decode(String.self, at: 1), try row.decode(String.self, at: 2)))
            counts.archived += Int64(rows)
        } else if status != "archived" {
            return
        }
        counts.deleted += try await deleteArchived(batch, target, keys: try row.decode(Int.self, at: 3))
    }

    /// Rows one deleting transaction removes at most. A batch's rows go in several such
    /// transactions, so each commit flushes a small piece of WAL: a writer committing meanwhile
    /// waits for that piece, not for the whole batch's.
    static let deletionChunk = 500

    /// Deletes an archived batch's rows that are still due and unheld (with their children), a
    /// chunk of keys per transaction, each adding its count to the batch's; the last marks the
    /// batch deleted. Returns the rows deleted. A run stopped between chunks leaves the batch
    /// archived; the next one deletes what is left. `size` is the batch's key count.
    private func deleteArchived(_ batch: UUID, _ target: RetentionTarget, keys size: Int) async throws -> Int64 {
        let due = Self.dueCondition(target)
        var total: Int64 = 0
        var low = 1
        repeat {
            let high = min(low + Self.deletionChunk - 1, size)
            let keys = "(SELECT keys[\(low):\(high)] FROM retention_archive_batches WHERE id = '\(batch.uuidString)')::\(target.keyType)[]"
            let rows = "t.\(target.key) = ANY(\(keys)) AND \(due) AND \(target.notHeld)"
            let last = high >= size
            total += try await database.withTransaction { db in
                for child in target.children {
                    try await db.execute("""
                        DELETE FROM \(identifier: child.table) c WHERE c.\(unescaped: child.column) IN (
                            SELECT t.\(unescaped: target.key) FROM \(identifier: target.table) t WHERE \(unescaped: rows))
                        """)
                }
                let deleted = try await db.execute("DELETE FROM \(identifier: target.table) t WHERE \(unescaped: rows)")
                if last {
                    try await db.execute("""
                        UPDATE retention_archive_batches SET status = 'deleted', deleted = COALESCE(deleted, 0) + \(deleted), deleted_at = now() WHERE id = \(batch)
                        """)
                } else if deleted > 0 {
                    try await db.execute("UPDATE retention_archive_batches SET deleted = COALESCE(deleted, 0) + \(deleted) WHERE id = \(batch)")
                }
                return Int64(deleted)
            }
            low = high + 1
        } while low <= size
        return total
    }

    /// Writes a batch's lines as one gzip file, synced and read back against its SHA-256, and
    /// records it in the ledger; returns the file's size.
    func archiveFile(_ batch: UUID, _ target: RetentionTarget, body: [UInt8], rows: Int, range: (from: String, to: String)) async throws -> Int64 {
        let compressed = try Gzip.compress(body, level: Self.compressionLevel)
        let name = "\(target.dataType)-\(batch.uuidString.lowercased()).jsonl.gz"
        let digest = try archive.writeVerified(name, compressed)
        try await database.execute("""
            UPDATE retention_archive_batches SET status = 'archived', file = \(name), sha256 = \(digest), rows = \(rows),
                bytes = \(compressed.count), key_from = \(range.from), key_to = \(range.to), archived_at = now()
            WHERE id = \(batch)
            """)
        return Int64(compressed.count)
    }

    /// zlib's level for archive files: the fastest. A sweep shares the machine with live writers,
    /// and level 6 took about a sixth of a sweep's CPU (a perf profile) for files only 14 % smaller.
    static let compressionLevel: Int32 = 1

    // MARK: - Delete only

    private func deleteOnly(_ target: RetentionTarget, sweep id: UUID, counts: inout Counts,
                            started: ContinuousClock.Instant, before: Int64) async throws {
        let due = Self.dueCondition(target)
        // Nothing to archive: each transaction is at most a deletion chunk.
        let batchSize = min(self.batchSize, Self.deletionChunk)
        var pace = Pace(limit: maxRowsPerSecond)
        while true {
            let deleted = try await database.withTransaction { db in
                let rows = "FROM \(target.table) t WHERE \(due) AND \(target.notHeld) AND \(target.ready ?? "true")"
                guard !target.children.isEmpty else {
                    return try await db.execute("""
                        DELETE FROM \(identifier: target.table) WHERE \(unescaped: target.key) IN (
                            SELECT t.\(unescaped: target.key) \(unescaped: rows) LIMIT \(batchSize) FOR UPDATE SKIP LOCKED)
                        """)
                }
                let keys = try await db.query("SELECT t.\(unescaped: target.key)::text \(unescaped: rows) LIMIT \(batchSize) FOR UPDATE OF t SKIP LOCKED")
                    .map { try $0.decode(String.self, at: 0) }
                for child in target.children {
                    try await db.execute("DELETE FROM \(identifier: child.table) WHERE \(unescaped: child.column) = ANY(\(keys)::\(unescaped: target.keyType)[])")
                }
                _ = try await db.execute("DELETE FROM \(identifier: target.table) WHERE \(unescaped: target.key) = ANY(\(keys)::\(unescaped: target.keyType)[])")
                return keys.count
            }
            counts.deleted += Int64(deleted)
            try await record(counts, sweep: id, target: target, started: started, before: before, finished: false)
            if deleted < batchSize { return }
            try await pace.wait(after: deleted)
        }
    }

    // MARK: - Log partitions

    /// Drops the day partitions of `log_lines` that end before the policy's cutoff and that no
    /// active hold on `log_line` overlaps (by its time range); returns the rows they held.
    func dropLogPartitions() async throws -> Int64 {
        let partitions = try await database.query("""
            SELECT c.relname, lower_bound, upper_bound FROM (
                SELECT c.relname,
                       to_timestamp(substring(c.relname FROM 11), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' AS lower_bound,
                       (to_timestamp(substring(c.relname FROM 11), 'YYYYMMDD')::timestamp + interval '1 day') AT TIME ZONE 'UTC' AS upper_bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                WHERE p.relname = 'log_lines' AND c.relname ~ '^log_lines_[0-9]{8}$') c
            WHERE upper_bound <= date_trunc('day', now() - (SELECT retention FROM retention_policies WHERE data_type = 'log_line'))
              AND NOT EXISTS (SELECT 1 FROM retention_legal_holds h WHERE h.released_at IS NULL AND h.scope = 'data_type'
                              AND h.data_type = 'log_line' AND COALESCE(h.created_from, '-infinity') < upper_bound
                              AND COALESCE(h.created_to, 'infinity') > lower_bound)
            ORDER BY 1
            """).map { try $0.decode(String.self, at: 0) }
        var dropped: Int64 = 0
        for name in partitions {
            // A hold by resource (a service) on any of its lines keeps the whole partition.
            let held = try await database.query("""
                SELECT 1 FROM \(identifier: name) t WHERE NOT \(unescaped: RetentionTarget.logLine.notHeld) LIMIT 1
                """)
            guard held.isEmpty else { continue }
            dropped += try await database.withTransaction { db in
                let rows = try await db.query("SELECT count(*) FROM \(identifier: name)")[0].decode(Int64.self, at: 0)
                try await db.execute("ALTER TABLE log_lines DETACH PARTITION \(identifier: name)")
                try await db.execute("DROP TABLE \(identifier: name)")
                return rows
            }
            logger.info("log partition dropped", metadata: ["mingus.partition": "\(name)"])
        }
        return dropped
    }

    // MARK: - Manifests

    /// The signed manifest of a sweep's files of one data type (`manifest-<sweep>-<data type>.json`).
    func writeManifest(_ target: RetentionTarget, sweep id: UUID) async throws {
        let files = try await database.query("""
            SELECT file, sha256, rows, bytes, key_from, key_to FROM retention_archive_batches
            WHERE sweep_id = \(id) AND data_type = \(target.dataType) AND file IS NOT NULL ORDER BY file
            """).map { row in
            ArchiveManifest.File(name: try row.decode(String.self, at: 0), sha256: Hex.encode(try row.decode([UInt8].self, at: 1)),
                                 rows: try row.decode(Int.self, at: 2), bytes: try row.decode(Int64.self, at: 3),
                                 keyFrom: try row.decode(String.self, at: 4), keyTo: try row.decode(String.self, at: 5))
        }
        guard !files.isEmpty else { return }
        let manifest = ArchiveManifest(sweepId: id.uuidString.lowercased(), dataType: target.dataType, table: target.table, files: files)
        _ = try archive.writeVerified(manifest.fileName, try manifest.signed(by: signer))
    }
}

/// Why a sweep cannot go on.
public struct RetentionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
