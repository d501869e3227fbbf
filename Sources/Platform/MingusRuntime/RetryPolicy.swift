public import MingusCore

/// How failed jobs are retried: through the shared retry tiers, with a delay that grows with
/// each attempt and a jitter, until `maxAttempts`; then the dead-letter queue.
///
/// Retry tiers are queues with a fixed TTL that dead-letter back to the jobs exchange. Attempt n
/// waits in tier n (the last tier once they run out). Jitter: the message's own expiration is the
/// tier's delay times a random factor in 1.0…1.25, and the tier queue's TTL is 1.25 × its delay;
/// since per-message TTLs expire at the head of a queue, the jitter can hold a message back by at
/// most a quarter of the tier's delay, and delays still grow from tier to tier.
public struct RetryPolicy: Sendable, Equatable {
    /// Total deliveries allowed, the first included.
    public var maxAttempts: Int
    /// Delay of each retry tier, shortest first.
    public var delays: [Duration]

    public init(maxAttempts: Int = 5, delays: [Duration] = MingusTopology.retryDelays) {
        precondition(maxAttempts >= 1 && !delays.isEmpty)
        self.maxAttempts = maxAttempts
        self.delays = delays
    }

    /// The retry tier for a job whose `attempt`-th delivery failed.
    public func tier(afterAttempt attempt: Int) -> Duration {
        delays[min(max(attempt - 1, 0), delays.count - 1)]
    }

    /// The message expiration in milliseconds for that tier, with jitter.
    public func expirationMilliseconds(afterAttempt attempt: Int) -> Int {
        let milliseconds = Self.milliseconds(tier(afterAttempt: attempt))
        return milliseconds + Int.random(in: 0...(milliseconds / 4))
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.inMilliseconds)
    }
}
