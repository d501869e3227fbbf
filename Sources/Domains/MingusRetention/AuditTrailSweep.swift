import Foundation
import Logging
import MingusPostgres
import MingusSecurity

/// Retention of the audit trail without breaking its verification.
///
/// A stream is only ever cut at an entry a signed checkpoint names, so that whoever verifies can
/// trust where the remaining chain starts. A sweep first signs a checkpoint of every head; then,
/// per stream, it picks the newest checkpointed entry that is past the policy's period with no
/// held entry at or below it, records that cut (`retention_audit_cuts`) and claims the entries
/// after the stream's base up to it in archive batches. Once every batch is archived (written,
/// synced, read back against its digest), `mingus_audit_rebase` moves the stream's base to the cut
/// — the database checks that the checkpoint names that entry and its hash — and only then are
/// the batches' entries deleted, which the append-only trigger allows at or below the base. A
/// sweep that dies resumes its open cuts first. A hold placed on an entry of an open cut keeps
/// the whole cut waiting until it is released.
struct AuditTrailSweep {
    let sweeper: RetentionSweeper
    let sweep: UUID
    var database: PostgresClient { sweeper.database }
    let target = RetentionTarget.auditEvent

    func run(counts: inout RetentionSweeper.Counts) async throws {
        _ = try await sweeper.signer.checkpoint(database)
        try await claimCuts()
        for cut in try await openCuts() {
            try await finish(cut, counts: &counts)
        }
        try await sweeper.writeManifest(target, sweep: sweep)
    }

    struct Cut {
        var stream: String
        var seq: Int64
        var checkpoint: Int64
        var status: String
    }

    private func openCuts() async throws -> [Cut] {
        try await database.query("""
            SELECT stream, seq, checkpoint_id, status FROM retention_audit_cuts WHERE status <> 'deleted' ORDER BY stream
            """).map {
            Cut(stream: try $0.decode(String.self, at: 0), seq: try $0.decode(Int64.self, at: 1),
                checkpoint: try $0.decode(Int64.self, at: 2), status: try $0.decode(String.self, at: 3))
        }
    }

    /// Picks the cut of each stream without an open one and claims its batches, all in one
    /// transaction under the data type's lock (a second sweeper waits, then finds the cuts open).
    private func claimCuts() async throws {
        let due = RetentionSweeper.dueCondition(target)
        let batchSize = Int64(sweeper.batchSize)
        let sweep = self.sweep
        try await database.withTransaction { db in
            try await db.execute("SELECT pg_advisory_xact_lock(hashtext('mingus.retention.audit_event'))")
            // Per stream, the newest checkpointed entry that is due, below the first held entry.
            let cuts = try await db.query("""
                WITH named AS (
                    SELECT split_part(line, ' ', 1) AS stream, split_part(line, ' ', 2)::bigint AS seq, c.id AS checkpoint_id
                    FROM audit_checkpoints c, regexp_split_to_table(c.heads, E'\\n') AS line WHERE line <> ''
                ), held AS (
                    SELECT t.stream, min(t.seq) AS seq FROM audit_events t WHERE \(unescaped: due) AND NOT \(unescaped: target.notHeld)
                    GROUP BY t.stream
                )
                SELECT DISTINCT ON (n.stream) n.stream, n.seq, n.checkpoint_id, COALESCE(b.base_seq, 0)
                FROM named n
                JOIN audit_events t ON t.stream = n.stream AND t.seq = n.seq
                LEFT JOIN audit_stream_bases b ON b.stream = n.stream
                LEFT JOIN held h ON h.stream = n.stream
                WHERE \(unescaped: due) AND n.seq < COALESCE(h.seq, 9223372036854775807)
                  AND NOT EXISTS (SELECT 1 FROM retention_audit_cuts o WHERE o.stream = n.stream AND o.status <> 'deleted')
                ORDER BY n.stream, n.seq DESC, n.checkpoint_id
                """).map {
                (stream: try $0.decode(String.self, at: 0), seq: try $0.decode(Int64.self, at: 1),
                 checkpoint: try $0.decode(Int64.self, at: 2), base: try $0.decode(Int64.self, at: 3))
            }
            for cut in cuts {
                try await db.execute("""
                    INSERT INTO retention_audit_cuts (stream, seq, checkpoint_id, sweep_id)
                    VALUES (\(cut.stream), \(cut.seq), \(cut.checkpoint), \(sweep))
                    """)
                var from = cut.base + 1
                while from <= cut.seq {
                    let to = min(from + batchSize - 1, cut.seq)
                    try await db.execute("""
                        INSERT INTO retention_archive_batches (id, sweep_id, data_type, keys, cut_stream, cut_seq)
                        VALUES (\(UUID()), \(sweep), 'audit_event', \([String(from), String(to)]), \(cut.stream), \(cut.seq))
                        """)
                    from = to + 1
                }
            }
        }
    }

    /// Archives what is left of a cut, moves the stream's base, deletes the archived entries.
    private func finish(_ cut: Cut, counts: inout RetentionSweeper.Counts) async throws {
        var cut = cut
        let batches = try await database.query("""
            SELECT id, status, keys FROM retention_archive_batches
            WHERE cut_stream = \(cut.stream) AND cut_seq = \(cut.seq) ORDER BY (keys[1])::bigint
            """).map {
            (id: try $0.decode(UUID.self, at: 0), status: try $0.decode(String.self, at: 1), keys: try $0.decode([String].self, at: 2))
        }
        if cut.status == "claimed" {
            // A hold placed since the cut was claimed keeps the whole cut, archived or not, until released.
            let held = try await database.query("""
                SELECT 1 FROM audit_events t WHERE t.stream = \(cut.stream) AND t.seq <= \(cut.seq)
                  AND t.seq > COALESCE((SELECT base_seq FROM audit_stream_bases WHERE stream = \(cut.stream)), 0)
                  AND NOT \(unescaped: target.notHeld) LIMIT 1
                """)
            guard held.isEmpty else {
                sweeper.logger.info("an audit stream's cut waits for a legal hold", metadata: ["mingus.audit.stream": "\(cut.stream)"])
                return
            }
            for batch in batches where batch.status == "claimed" {
                let (from, to) = (Int64(batch.keys[0]) ?? 0, Int64(batch.keys[1]) ?? 0)
                let lines = try await database.query("""
                    SELECT count(*)::int, COALESCE(string_agg(row_to_json(t)::text, E'\\n' ORDER BY t.seq) || E'\\n', '')
                    FROM audit_events t WHERE t.stream = \(cut.stream) AND t.seq BETWEEN \(from) AND \(to)
                    """)[0]
                let rows = try lines.decode(Int.self, at: 0)
                counts.bytes += try await sweeper.archiveFile(batch.id, target, body: Array(try lines.decode(String.self, at: 1).utf8), rows: rows,
                                                              range: ("\(cut.stream):\(from)", "\(cut.stream):\(to)"))
                counts.archived += Int64(rows)
            }
            try await database.withTransaction { db in
                try await db.execute("SELECT mingus_audit_rebase(\(cut.stream), \(cut.seq), \(cut.checkpoint))")
                try await db.execute("UPDATE retention_audit_cuts SET status = 'rebased' WHERE stream = \(cut.stream) AND seq = \(cut.seq)")
            }
            cut.status = "rebased"
        }
        for batch in batches where batch.status != "deleted" {
            let (from, to) = (Int64(batch.keys[0]) ?? 0, Int64(batch.keys[1]) ?? 0)
            counts.deleted += Int64(try await database.withTransaction { db in
                let deleted = try await db.execute("""
                    DELETE FROM audit_events WHERE stream = \(cut.stream) AND seq BETWEEN \(from) AND \(to)
                    """)
                try await db.execute("""
                    UPDATE retention_archive_batches SET status = 'deleted', deleted = \(deleted), deleted_at = now() WHERE id = \(batch.id)
                    """)
                return deleted
            })
        }
        try await database.execute("UPDATE retention_audit_cuts SET status = 'deleted' WHERE stream = \(cut.stream) AND seq = \(cut.seq)")
    }
}
