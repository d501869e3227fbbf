import Foundation
import MingusCore
import MingusPostgres

/// Rate limits per channel target, shared by every alerts worker through PostgreSQL, so that N
/// processes together keep to a provider's limit rather than N times it. It is the generic cell
/// rate algorithm (a token bucket kept as one timestamp per target): a request reserves its slot
/// in one autocommitted statement and then waits until the slot is due; a 429 pushes every later
/// slot past the provider's `Retry-After`. Statements run outside the job's transaction: a row
/// lock held until the job commits would serialize deliveries across the provider call.
struct RateLimiter: Sendable {
    let database: PostgresClient

    /// Reserves one request to `target`; returns how long to wait before sending it.
    func reserve(_ target: String, _ limit: RateLimit) async throws -> Duration {
        let interval = 1 / limit.perSecond
        let rows = try await database.query("""
            INSERT INTO alert_rate_limits AS l (target, tat)
            VALUES (\(target), statement_timestamp() + make_interval(secs => \(interval)::double precision))
            ON CONFLICT (target) DO UPDATE
                SET tat = GREATEST(l.tat, statement_timestamp()) + make_interval(secs => \(interval)::double precision)
            RETURNING extract(epoch FROM l.tat - statement_timestamp())::double precision
            """)
        // The slot is due when tat, less the burst's worth of intervals, has come.
        let ahead = try rows[0].decode(Double.self, at: 0) - interval * Double(limit.burst)
        return ahead > 0 ? .milliseconds(Int64((ahead * 1000).rounded(.up))) : .zero
    }

    /// Holds every request to `target` back for `duration` from now.
    func pause(_ target: String, _ limit: RateLimit, for duration: Duration) async throws {
        // A slot is due once tat - (burst - 1) intervals has come; move it to now + duration.
        let tolerance = Double(limit.burst - 1) / limit.perSecond
        let until = duration.inSeconds + tolerance
        try await database.execute("""
            INSERT INTO alert_rate_limits AS l (target, tat)
            VALUES (\(target), statement_timestamp() + make_interval(secs => \(until)::double precision))
            ON CONFLICT (target) DO UPDATE
                SET tat = GREATEST(l.tat, statement_timestamp() + make_interval(secs => \(until)::double precision))
            """)
    }
}
