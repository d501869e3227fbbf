public import Foundation
public import MingusPostgres
public import MingusHTTP

/// Payments decided in a window, as the dashboard shows them: counts, rates, volumes per
/// currency, latency and an hourly series. Read from `payment_hourly_rollups` (kept by a
/// trigger on `payment_data` in the writing transaction), so the cost does not grow with the
/// number of payments.
public struct PaymentActivity: Encodable, Sendable {
    /// Authorized, declined and failed payments of one currency.
    public struct Volume: Encodable, Sendable, Equatable {
        public var currency: String
        public var payments: Int64
        /// Minor units of the authorized payments.
        public var authorizedAmount: Int64
        /// Minor units of every decided payment.
        public var totalAmount: Int64
    }

    /// Decided payments of one hour (the hour they were requested in).
    public struct Hour: Encodable, Sendable, Equatable {
        public var hour: Date
        public var authorized: Int64
        public var declined: Int64
        public var failed: Int64
    }

    /// Milliseconds from request to decision. Percentiles are the upper bound of the rollup's
    /// latency bucket they fall in (50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60 s), null when
    /// beyond the last bound or when nothing was decided.
    public struct Latency: Encodable, Sendable {
        @Nullable public var mean: Double?
        @Nullable public var p50: Int64?
        @Nullable public var p95: Int64?
        @Nullable public var p99: Int64?
        @Nullable public var max: Int64?
    }

    public var windowHours: Int
    /// Start of the first hour counted.
    public var since: Date
    public var decided: Int64
    public var authorized: Int64
    public var declined: Int64
    public var failed: Int64
    /// Payments waiting for the worker now, whenever they were requested.
    public var pending: Int64
    /// authorized ÷ decided; null when nothing was decided.
    @Nullable public var authorizationRate: Double?
    /// declined ÷ decided; null when nothing was decided.
    @Nullable public var declineRate: Double?
    public var volumes: [Volume]
    public var latencyMs: Latency
    /// One entry per hour of the window, oldest first, hours without payments included.
    public var hourly: [Hour]
}

extension PaymentStore {
    /// Upper bounds of the latency buckets, as `mingus_payment_latency_bounds()` (0023) has them.
    static let latencyBounds: [Int64] = [50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]

    /// Payments requested in the `hours` hours up to `now` (the current hour included).
    public static func activity(hours: Int, now: Date = Date(), on database: PostgresClient) async throws -> PaymentActivity {
        let seconds = (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600
        let currentHour = Date(timeIntervalSince1970: seconds)
        let since = currentHour.addingTimeInterval(-Double(hours - 1) * 3600)
        // Three small groupings in one statement, so only a few dozen rows come back whatever the
        // number of shards and buckets: per hour and status, per currency and status, per bucket.
        let rows = try await database.query("""
            SELECT hour, status, currency, latency_bucket, sum(payments)::bigint, sum(amount)::bigint,
                   sum(latency_ms_sum)::bigint, max(latency_ms_max)::bigint, GROUPING(hour, currency, latency_bucket)
            FROM payment_hourly_rollups WHERE hour >= \(since)::timestamptz
            GROUP BY GROUPING SETS ((hour, status), (currency, status), (latency_bucket))
            """)
        let pending = try await database.query("SELECT count(*) FROM payment_data WHERE status = 'pending'")[0].decode(Int64.self, at: 0)

        var byHour: [Date: PaymentActivity.Hour] = [:]
        var volumes: [String: PaymentActivity.Volume] = [:]
        var buckets = [Int64](repeating: 0, count: latencyBounds.count + 1)
        var counts: [String: Int64] = [:]
        var latencySum: Int64 = 0
        var latencyMax: Int64?
        for row in rows {
            let payments = try row.decode(Int64.self, at: 4)
            // GROUPING bits, hour first: 0b011 per hour and status, 0b101 per currency and status, 0b110 per bucket.
            switch try row.decode(Int.self, at: 8) {
            case 0b011:
                let hour = try row.decode(Date.self, at: 0)
                let status = try row.decode(String.self, at: 1)
                var entry = byHour[hour] ?? .init(hour: hour, authorized: 0, declined: 0, failed: 0)
                switch status {
                case "authorized": entry.authorized += payments
                case "declined": entry.declined += payments
                default: entry.failed += payments
                }
                byHour[hour] = entry
            case 0b101:
                let status = try row.decode(String.self, at: 1)
                let currency = try row.decode(String.self, at: 2)
                let amount = try row.decode(Int64.self, at: 5)
                counts[status, default: 0] += payments
                var volume = volumes[currency] ?? .init(currency: currency, payments: 0, authorizedAmount: 0, totalAmount: 0)
                volume.payments += payments
                volume.totalAmount += amount
                if status == "authorized" { volume.authorizedAmount += amount }
                volumes[currency] = volume
            default:
                let bucket = Int(try row.decode(Int16.self, at: 3))
                if buckets.indices.contains(bucket) { buckets[bucket] += payments }
                latencySum += try row.decode(Int64.self, at: 6)
                let rowMax = try row.decode(Int64.self, at: 7)
                latencyMax = Swift.max(latencyMax ?? rowMax, rowMax)
            }
        }
        let decided = counts.values.reduce(0, +)
        func percentile(_ fraction: Double) -> Int64? {
            guard decided > 0 else { return nil }
            let rank = Int64((Double(decided) * fraction).rounded(.up))
            var seen: Int64 = 0
            for (index, count) in buckets.enumerated() {
                seen += count
                if seen >= rank { return index < latencyBounds.count ? latencyBounds[index] : nil }
            }
            return nil
        }
        let hourly = (0..<hours).map { offset in
            let hour = since.addingTimeInterval(Double(offset) * 3600)
            return byHour[hour] ?? .init(hour: hour, authorized: 0, declined: 0, failed: 0)
        }
        let authorized = counts["authorized"] ?? 0
        let declined = counts["declined"] ?? 0
        return PaymentActivity(
            windowHours: hours, since: since, decided: decided, authorized: authorized, declined: declined,
            failed: counts["failed"] ?? 0, pending: pending,
            authorizationRate: decided > 0 ? Double(authorized) / Double(decided) : nil,
            declineRate: decided > 0 ? Double(declined) / Double(decided) : nil,
            volumes: volumes.values.sorted { $0.currency < $1.currency },
            latencyMs: .init(mean: decided > 0 ? Double(latencySum) / Double(decided) : nil, p50: percentile(0.5), p95: percentile(0.95),
                             p99: percentile(0.99), max: latencyMax),
            hourly: hourly)
    }
}
