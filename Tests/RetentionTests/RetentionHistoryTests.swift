import Foundation
@testable import MingusRetention
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

@Suite("Retention of the audit trail, alert history and idempotency keys", .serialized)
struct RetentionHistoryTests {
    /// Appends `count` events to `stream` as if they had happened `age` ago, one second apart,
    /// chained exactly as mingus_audit_append chains them.
    static func appendOldEvents(_ db: PostgresClient, stream: String, count: Int, age: String = "8 years", resources: String? = nil) async throws {
        try await db.execute("""
            CREATE OR REPLACE FUNCTION test_audit_append_at(p_stream text, p_at timestamptz, p_resource text) RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE v_seq bigint; v_prev bytea; v_hash bytea; v_at timestamptz := date_trunc('microseconds', p_at);
            BEGIN
                INSERT INTO audit_streams VALUES (p_stream, 0, '\\x0000000000000000000000000000000000000000000000000000000000000000')
                ON CONFLICT (stream) DO NOTHING;
                SELECT head_seq + 1, head_hash INTO v_seq, v_prev FROM audit_streams WHERE stream = p_stream FOR UPDATE;
                v_hash := sha256(v_prev || convert_to(jsonb_build_array(p_stream, v_seq,
                    to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'test', 'test.old', p_resource, 'success', '',
                    '{}'::jsonb)::text, 'UTF8'));
                INSERT INTO audit_events (stream, seq, occurred_at, actor, action, resource, outcome, origin, details, prev_hash, hash)
                VALUES (p_stream, v_seq, v_at, 'test', 'test.old', p_resource, 'success', '', '{}', v_prev, v_hash);
                UPDATE audit_streams SET head_seq = v_seq, head_hash = v_hash WHERE stream = p_stream;
                RETURN v_seq;
            END $$
            """)
        try await db.execute(PostgresQuery(unsafeSQL: """
            SELECT test_audit_append_at('\(stream)', now() - interval '\(age)' + n * interval '1 second', '\(resources ?? stream)/' || n)
            FROM generate_series(1, \(count)) AS n
            """))
    }

    static func appendRecentEvents(_ db: PostgresClient, stream: String, count: Int) async throws {
        try await db.execute("""
            SELECT mingus_audit_append(\(stream), 'test', 'test.recent', \(stream) || '/recent', 'success', '', '{}')
            FROM generate_series(1, \(count))
            """)
    }

    @Test("an audit sweep archives whole checkpointed prefixes of streams; verify passes after it and still finds tampering")
    func auditTrail() async throws {
        try await RetentionCluster.with { retention in
            let db = retention.database
            let signer = try AuditSigner(contentsOf: retention.signingKey)
            let verifier = AuditVerifier(database: db, publicKeys: [signer.publicKey])
            // "old": every entry old. "mixed": 500 old entries, a checkpoint, 300 recent ones.
            // "held": 200 old entries, a checkpoint at 100, a hold on entry 150.
            try await Self.appendOldEvents(db, stream: "test-old", count: 1200)
            try await Self.appendOldEvents(db, stream: "test-mixed", count: 500)
            try await Self.appendOldEvents(db, stream: "test-held", count: 100)
            _ = try await signer.checkpoint(db)
            try await Self.appendOldEvents(db, stream: "test-held", count: 100, age: "7 years 6 months", resources: "late")
            try await Self.appendRecentEvents(db, stream: "test-mixed", count: 300)
            let hold = try await retention.request("POST", "/holds", ["scope": "resource", "resource_id": "late/50", "reason": "subpoena"])
            #expect(hold.status == 201, "\(hold.body)")
            #expect(try await db.query("SELECT resource FROM audit_events WHERE stream = 'test-held' AND seq = 150")[0]
                .decode(String.self, at: 0) == "late/50")

            let dry = try await retention.sweep(["data_types": ["audit_event"], "dry_run": true])
            #expect(dry["audit_event"]?["eligible"] as? Int == 1200 + 500 + 200)
            #expect(dry["audit_event"]?["held"] as? Int == 1)
            #expect(try await retention.count("SELECT count(*) FROM audit_events WHERE stream LIKE 'test-%'") == 2200)

            let results = try await retention.sweep(["data_types": ["audit_event"]])
            #expect(results["audit_event"]?["archived"] as? Int == 1200 + 500 + 100, "\(results)")
            #expect(results["audit_event"]?["deleted"] as? Int == 1200 + 500 + 100)
            #expect(try await retention.count("SELECT count(*) FROM audit_events WHERE stream = 'test-old'") == 0)
            #expect(try await retention.count("SELECT min(seq) FROM audit_events WHERE stream = 'test-mixed'") == 501)
            #expect(try await retention.count("SELECT min(seq) FROM audit_events WHERE stream = 'test-held'") == 101)
            #expect(try await retention.count("SELECT count(*) FROM audit_stream_bases WHERE stream LIKE 'test-%'") == 3)

            // The archive holds each removed entry once, with its hashes.
            let archived = try retention.archivedRows("audit_event")
            #expect(archived.count == 1800)
            #expect(Set(archived.map { "\($0["stream"]!)/\($0["seq"]!)" }).count == 1800)
            #expect(try retention.verifyArchive().isIntact)

            // The remaining trail verifies, each cut stream starting at its checkpointed base.
            let after = try await verifier.verify()
            #expect(after.isIntact, "\(String(describing: after.firstBreak))")
            #expect(after.rebasedStreams == 3)

            // Entries above the base still cannot be deleted.
            await #expect(throws: (any Error).self) {
                try await db.execute("DELETE FROM audit_events WHERE stream = 'test-mixed' AND seq = 600")
            }
            // A base moved to an entry no checkpoint names is found.
            try await db.execute("""
                UPDATE audit_stream_bases SET base_seq = 550,
                    base_hash = (SELECT hash FROM audit_events WHERE stream = 'test-mixed' AND seq = 550)
                WHERE stream = 'test-mixed'
                """)
            let moved = try await verifier.verify()
            #expect(moved.firstBreak?.stream == "test-mixed" && moved.firstBreak?.reason.contains("does not vouch") == true,
                    "\(String(describing: moved.firstBreak))")
            try await db.execute("""
                UPDATE audit_stream_bases SET base_seq = 500, base_hash = sha256('forged')
                WHERE stream = 'test-mixed'
                """)
            #expect(try await verifier.verify().firstBreak?.stream == "test-mixed")
            try await db.execute("""
                UPDATE audit_stream_bases SET base_hash = (SELECT prev_hash FROM audit_events WHERE stream = 'test-mixed' AND seq = 501)
                WHERE stream = 'test-mixed'
                """)
            #expect(try await verifier.verify().isIntact)
            // An entry edited in what remains is found (the trigger is switched off, as an intruder would).
            try await db.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            try await db.execute("UPDATE audit_events SET details = '{\"x\": 1}' WHERE stream = 'test-mixed' AND seq = 600")
            try await db.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
            let edited = try await verifier.verify()
            #expect(edited.firstBreak?.stream == "test-mixed" && edited.firstBreak?.seq == 600, "\(String(describing: edited.firstBreak))")
        }
    }

    @Test("alert history goes with its events and attempts, a replaced delivery after its fallback; idempotency keys are deleted unarchived")
    func alertsAndIdempotencyKeys() async throws {
        try await RetentionCluster.with(batchSize: 7) { retention in
            let db = retention.database
            // 20 alerts resolved two years ago (3 events each), 1 resolved yesterday, 1 firing; all in one group.
            try await db.execute("""
                INSERT INTO alerts (id, fingerprint, status, severity, title, labels, source, starts_at, ends_at, last_received_at, created_at)
                SELECT gen_random_uuid(), 'fp-' || n, CASE WHEN n = 22 THEN 'firing' ELSE 'resolved' END, 'high', 'disk full ' || n, '{}', 'test',
                       now() - interval '3 years',
                       CASE WHEN n = 22 THEN NULL WHEN n = 21 THEN now() - interval '1 day' ELSE now() - interval '2 years' END,
                       now() - interval '2 years', now() - interval '3 years'
                FROM generate_series(1, 22) AS n
                """)
            try await db.execute("""
                INSERT INTO alert_events (id, alert_id, status, outcome, received_at)
                SELECT gen_random_uuid(), a.id, 'firing', 'new', now() - interval '3 years' FROM alerts a, generate_series(1, 3)
                """)
            let group = UUID()
            try await db.execute("""
                INSERT INTO alert_groups (id, route, group_key, receiver, group_labels) VALUES (\(group), 'root', 'k', 'ops', '{}')
                """)
            try await db.execute("INSERT INTO alert_group_members (group_id, alert_id) SELECT \(group), id FROM alerts")
            // 30 finished deliveries two years old (2 attempts each); 10 of them replaced by a fallback of the same age; one
            // pending delivery; one finished yesterday.
            try await db.execute("""
                INSERT INTO alert_deliveries (id, group_id, alert_ids, kind, receiver, target, channel, status, attempts, created_at)
                SELECT gen_random_uuid(), \(group), '{}', 'firing', 'ops', 'slack-' || n, 'slack',
                       CASE WHEN n = 31 THEN 'pending' ELSE 'failed' END, 2,
                       CASE WHEN n = 32 THEN now() - interval '1 day' ELSE now() - interval '2 years' END
                FROM generate_series(1, 32) AS n
                """)
            try await db.execute("""
                INSERT INTO alert_deliveries (id, group_id, alert_ids, kind, receiver, target, channel, status, attempts, fallback_of, created_at)
                SELECT gen_random_uuid(), \(group), '{}', 'firing', 'ops', 'email', 'email', 'delivered', 1, d.id, now() - interval '2 years'
                FROM alert_deliveries d WHERE d.target IN ('slack-1', 'slack-2', 'slack-3', 'slack-4', 'slack-5', 'slack-6', 'slack-7',
                                                          'slack-8', 'slack-9', 'slack-10')
                """)
            try await db.execute("""
                INSERT INTO alert_delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, http_status)
                SELECT d.id, n, d.created_at, 12.5, 'retryable', 503 FROM alert_deliveries d, generate_series(1, 2) AS n
                """)
            // Idempotency keys: 12 from two days ago (expired), 1 fresh.
            try await db.execute("""
                INSERT INTO gateway_idempotency_keys (api_key_id, idempotency_key, request_hash, resource_id, created_at, expires_at)
                SELECT 'key-1', 'idem-' || n, '\\x00', gen_random_uuid(),
                       now() - CASE WHEN n = 13 THEN interval '1 minute' ELSE interval '2 days' END,
                       now() + CASE WHEN n = 13 THEN interval '1 day' ELSE interval '-1 day' END
                FROM generate_series(1, 13) AS n
                """)

            let results = try await retention.sweep(["data_types": ["alert", "alert_delivery", "idempotency_key"]])
            #expect(results["alert"]?["eligible"] as? Int == 20 && results["alert"]?["deleted"] as? Int == 20, "\(results)")
            #expect(results["alert_delivery"]?["eligible"] as? Int == 40 && results["alert_delivery"]?["archived"] as? Int == 40, "\(results)")
            #expect(results["alert_delivery"]?["deleted"] as? Int == 40)
            #expect(results["idempotency_key"]?["deleted"] as? Int == 12 && results["idempotency_key"]?["archived"] as? Int == 0)

            #expect(try await retention.count("SELECT count(*) FROM alerts") == 2)
            #expect(try await retention.count("SELECT count(*) FROM alert_events") == 6)
            #expect(try await retention.count("SELECT count(*) FROM alert_group_members") == 2)
            #expect(try await retention.count("SELECT count(*) FROM alert_deliveries") == 2)
            #expect(try await retention.count("SELECT count(*) FROM alert_delivery_attempts") == 4)
            #expect(try await retention.count("SELECT count(*) FROM gateway_idempotency_keys") == 1)

            // Each archived alert carries its events, each delivery its attempts; fallbacks keep the delivery they replaced.
            let alerts = try retention.archivedRows("alert")
            #expect(alerts.count == 20 && alerts.allSatisfy { ($0["events"] as? [Any])?.count == 3 })
            let deliveries = try retention.archivedRows("alert_delivery")
            #expect(deliveries.count == 40 && deliveries.allSatisfy { ($0["attempts"] as? [Any])?.count == 2 })
            #expect(deliveries.filter { $0["fallback_of"] is String }.count == 10)
            #expect(try DirectoryArchiveStore(directory: retention.archive).list().allSatisfy { !$0.hasPrefix("idempotency_key") })
            #expect(try retention.verifyArchive().isIntact)
        }
    }
}
