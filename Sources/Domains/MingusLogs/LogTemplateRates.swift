import Foundation
import MingusAlerts
import MingusCore
import MingusPostgres
import MingusRuntime

/// `logs.rates`: evaluates the minutes closed since the last evaluation (scheduled every minute).
public struct LogsRatesJob: Codable, Sendable, Equatable {
    public static let type = "logs.rates"

    public init() {}
}

/// Each template's rate per service against its recent baseline: an exponentially weighted mean
/// and variance of its lines per minute (`alpha` per minute), brought forward one closed minute at
/// a time from the counts every logs worker wrote (`log_template_minutes`), so the baseline is
/// the cluster's, whichever worker took the lines.
///
/// A minute is far from the baseline when it is more than `deviations` standard deviations away,
/// the deviation being at least the square root of the mean (lines arrive like a Poisson
/// process, so a steady template still varies by that much): above it with at least
/// `minimumLines` lines (a spike), or below it where the baseline is at least `minimumLines` (a
/// drop, a template that stopped). A pair is judged once it has `warmMinutes` of baseline. A
/// minute is closed `lag` after it ends; lines that arrive later count in the stored minutes but
/// not in the baseline. Baselines that decayed to almost nothing are dropped.
public struct LogTemplateRates: Sendable {
    public var minimumLines: Int
    public var alpha = 0.1
    public var deviations = 4.0
    public var warmMinutes = 10
    public var lag: Duration = .seconds(120)
    /// The most minutes one evaluation brings forward; older ones are skipped.
    public var maximumMinutes = 120

    public init(minimumLines: Int = 20) {
        self.minimumLines = minimumLines
    }

    /// Brings every baseline forward over the minutes closed since the last evaluation, reporting
    /// the minutes far from their baseline as `template_rate` anomalies, in the job's transaction.
    func evaluate(_ context: JobContext, metrics: MetricHandles) async throws {
        let db = context.database
        let now = Int64(Date().timeIntervalSince1970)
        let lastClosed = (now - lag.inMilliseconds / 1000) / 60 - 1
        let cursor = try await db.query("SELECT (extract(epoch FROM minute) / 60)::bigint FROM log_rate_cursor FOR UPDATE")
            .first.map { try $0.decode(Int64.self, at: 0) }
        var first: Int64
        if let cursor {
            first = cursor + 1
        } else {
            // The first evaluation starts at the oldest counted minute within reach.
            let oldest = try await db.query("SELECT (extract(epoch FROM min(minute)) / 60)::bigint FROM log_template_minutes")
                .first.flatMap { try $0.decode(Int64?.self, at: 0) }
            first = oldest ?? lastClosed
        }
        first = max(first, lastClosed - Int64(maximumMinutes) + 1)
        guard first <= lastClosed else { return }
        var findings: [LogsWorker.Finding] = []
        for minute in first...lastClosed {
            findings += try await step(minute, on: db)
        }
        try await db.execute("""
            INSERT INTO log_rate_cursor (minute) VALUES (to_timestamp(\(lastClosed * 60)))
            ON CONFLICT (only_row) DO UPDATE SET minute = EXCLUDED.minute
            """)
        try await db.execute("DELETE FROM log_template_rates WHERE mean < 0.01 AND minutes >= \(warmMinutes)")
        try await LogsWorker.report(findings, context: context, metrics: metrics)
    }

    /// One minute: the pairs far from their baseline (judged against the baseline before the
    /// minute), then every baseline moved by the minute's count (zero for pairs without lines).
    func step(_ minute: Int64, on db: PostgresConnection) async throws -> [LogsWorker.Finding] {
        let rows = try await db.query("""
            WITH counts AS (
                SELECT template_id, service, lines::float8 AS n FROM log_template_minutes WHERE minute = to_timestamp(\(minute * 60))
            ), pairs AS (
                SELECT coalesce(c.template_id, r.template_id) AS template_id, coalesce(c.service, r.service) AS service,
                       coalesce(c.n, 0) AS n, r.mean, r.variance, coalesce(r.minutes, 0) AS minutes
                FROM counts AS c FULL JOIN log_template_rates AS r ON r.template_id = c.template_id AND r.service = c.service
            ), moved AS (
                INSERT INTO log_template_rates (template_id, service, mean, variance, minutes, last_minute)
                SELECT template_id, service,
                       CASE WHEN mean IS NULL THEN n ELSE mean + \(alpha)::float8 * (n - mean) END,
                       CASE WHEN mean IS NULL THEN 0 ELSE (1 - \(alpha)::float8) * (variance + \(alpha)::float8 * (n - mean) ^ 2) END,
                       minutes + 1, to_timestamp(\(minute * 60))
                FROM pairs
                ON CONFLICT (template_id, service) DO UPDATE SET mean = EXCLUDED.mean, variance = EXCLUDED.variance,
                    minutes = EXCLUDED.minutes, last_minute = EXCLUDED.last_minute
            )
            SELECT template_id, service, n::bigint, mean FROM pairs
            WHERE mean IS NOT NULL AND minutes >= \(warmMinutes)::int
              AND ((n >= \(Double(minimumLines))::float8 AND n > mean + \(deviations)::float8 * greatest(sqrt(variance), sqrt(mean), 1))
                OR (mean >= \(Double(minimumLines))::float8 AND n < mean - \(deviations)::float8 * greatest(sqrt(variance), sqrt(mean), 1)))
            ORDER BY template_id, service
            """)
        return try rows.map { row in
            let template = try row.decode(Int64.self, at: 0)
            let service = try row.decode(String.self, at: 1)
            let lines = try row.decode(Int64.self, at: 2)
            let mean = try row.decode(Double.self, at: 3)
            let direction = Double(lines) > mean ? "above" : "below"
            return LogsWorker.Finding(
                kind: "template_rate", service: service, template: template, minute: minute, lines: lines,
                summary: "Template \(template) of \(service): \(lines) lines in the minute of \(JobEnvelope.formatTime(Date(timeIntervalSince1970: Double(minute * 60)))), \(direction) its baseline of \(String(format: "%.1f", mean)) a minute",
                severity: direction == "above" ? .medium : .high)
        }
    }
}
