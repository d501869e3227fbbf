import Synchronization

/// The dashboard's figures, kept for ``lifetime`` so that many people (and scripts) polling the
/// page and the JSON endpoints cost one computation per figure and period, not one per request.
/// Entries are keyed by what was asked (`api:payment-processing:24`, `panel:payments`); a
/// lifetime of zero turns the cache off. At most one second old by default.
final class DashboardCache: Sendable {
    private struct Entry: @unchecked Sendable {
        // @unchecked: `value` holds only the Sendable values `value(_:_:)` stores (its T: Sendable).
        var expires: ContinuousClock.Instant
        var value: Any
    }

    let lifetime: Duration
    private let entries = Mutex<[String: Entry]>([:])

    init(lifetime: Duration) {
        self.lifetime = lifetime
    }

    /// The value under `key` computed less than ``lifetime`` ago, or `make()`'s, kept.
    func value<T: Sendable>(_ key: String, _ make: () async throws -> T) async throws -> T {
        guard lifetime > .zero else { return try await make() }
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), entry.expires > now, let value = entry.value as? T { return value }
        let value = try await make()
        entries.withLock { $0[key] = Entry(expires: ContinuousClock.now + lifetime, value: value) }
        return value
    }
}
