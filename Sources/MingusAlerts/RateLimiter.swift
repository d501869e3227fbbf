import Foundation
import MingusCore
import Synchronization

/// Token buckets per channel target, in this process. A request reserves a token and waits
/// until it is due; a 429 pauses the target's bucket for the provider's `Retry-After`.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
        var pausedUntil: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// Reserves one request to `target`; returns how long to wait before sending it.
    func reserve(_ target: String, _ limit: RateLimit) -> Duration {
        let now = ContinuousClock.now
        return buckets.withLock { buckets in
            var bucket = buckets[target] ?? Bucket(tokens: Double(limit.burst), updated: now, pausedUntil: now)
            let elapsed = now - bucket.updated
            let seconds = elapsed.inSeconds
            bucket.tokens = min(Double(limit.burst), bucket.tokens + seconds * limit.perSecond)
            bucket.updated = now
            bucket.tokens -= 1
            let tokenWait = bucket.tokens < 0 ? Duration.milliseconds(Int64((-bucket.tokens / limit.perSecond * 1000).rounded(.up))) : .zero
            buckets[target] = bucket
            return max(tokenWait, bucket.pausedUntil - now)
        }
    }

    /// Holds every request to `target` back for `duration` from now.
    func pause(_ target: String, for duration: Duration) {
        let until = ContinuousClock.now + duration
        buckets.withLock { buckets in
            if var bucket = buckets[target] {
                bucket.pausedUntil = max(bucket.pausedUntil, until)
                buckets[target] = bucket
            }
        }
    }
}
