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
        let ahead = try await advance(target, by: interval, toAtLeast: interval)
        // The slot is due when tat, less the burst's worth of intervals, has come.
        let wait = ahead - interval * Double(limit.burst)
        return wait > 0 ? .milliseconds(Int64((wait * 1000).rounded(.up))) : .zero
    }

    /// Holds every request to `target` back for `duration` from now.
    func pause(_ target: String, _ limit: RateLimit, for duration: Duration) async throws {
        // A slot is due once tat - (burst - 1) intervals has come; so tat moves to at least
        // now + duration + (burst - 1) intervals.
        _ = try await advance(target, by: 0, toAtLeast: duration.inSeconds + Double(limit.burst - 1) / limit.perSecond)
    }

    /// Moves the target's tat to `max(tat + step, now + floor)` (a new target starts at
    /// `now + floor`) in one statement; returns the new tat in seconds from now.
    private func advance(_ target: String, by step: Double, toAtLeast floor: Double) async throws -> Double {
        let rows = try await database.query("""
            INSERT INTO alert_rate_limits AS l (target, tat)
            VALUES (\(target), statement_timestamp() + make_interval(secs => \(floor)::double precision))
            ON CONFLICT (target) DO UPDATE
                SET tat = GREATEST(l.tat + make_interval(secs => \(step)::double precision),
                                   statement_timestamp() + make_interval(secs => \(floor)::double precision))
            RETURNING extract(epoch FROM l.tat - statement_timestamp())::double precision
            """)
        return try rows[0].decode(Double.self, at: 0)
    }
}
