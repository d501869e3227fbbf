public import Foundation
public import Logging
import MingusCore
public import MingusRuntime
import Synchronization

/// Turns the gateway's own authentication failures into detections: every `limit`-th 401 answered
/// to one client address within `window` publishes a `security.detection` of kind
/// `auth_failures` naming the address (severity high). The security worker keys such detections
/// by kind and address, so one ongoing attack is one incident however many gateway processes see
/// it; each further `limit` failures are one more detection of that incident.
///
/// Each gateway process counts the failures it answers, in memory (at most `maxAddresses`
/// addresses; past that, windows that have ended are dropped, then all of them). Loopback
/// addresses and the `ignored` ones (the trusted proxies) are never counted: blocking them would
/// lock out local tools or everyone behind the load balancer.
public final class AuthFailureDetector: Sendable {
    /// How many failures in how long make a detection.
    public struct Policy: Sendable, Equatable {
        /// Failures from one address that make a detection; 0 turns detection off.
        public var limit: Int
        public var window: Duration
        public var maxAddresses: Int

        public init(limit: Int = 10, window: Duration = .seconds(300), maxAddresses: Int = 100_000) {
            self.limit = limit
            self.window = window
            self.maxAddresses = maxAddresses
        }

        /// `MINGUS_AUTH_FAILURE_LIMIT` (default 10, 0 for off) and `MINGUS_AUTH_FAILURE_WINDOW`
        /// (a duration such as `5m`, default 5 minutes).
        public init(environment: [String: String]) throws {
            self.init()
            if let text = environment["MINGUS_AUTH_FAILURE_LIMIT"], !text.isEmpty {
                guard let limit = Int(text), limit >= 0 else {
                    throw ConfigurationError(variable: "MINGUS_AUTH_FAILURE_LIMIT", message: "must be a whole number ≥ 0, got '\(text)'")
                }
                self.limit = limit
            }
            if let text = environment["MINGUS_AUTH_FAILURE_WINDOW"], !text.isEmpty {
                guard let window = DurationText.parse(text), window > .zero else {
                    throw ConfigurationError(variable: "MINGUS_AUTH_FAILURE_WINDOW", message: "must be a duration such as 30s or 5m, got '\(text)'")
                }
                self.window = window
            }
        }
    }

    struct Count {
        var start: Date
        var failures: Int
    }

    public let policy: Policy
    private let publish: @Sendable (SecurityDetectionJob) async throws -> Void
    private let logger: Logger
    private let counts = Mutex<[String: Count]>([:])
    private let ignored: Set<String>

    /// Publishes its detections through `publisher`.
    public convenience init(policy: Policy, ignoring ignored: Set<String> = [], publisher: JobPublisher, logger: Logger) {
        self.init(policy: policy, ignoring: ignored, logger: logger) { job in
            try await publisher.publish(type: SecurityDetectionJob.type, id: "gateway/auth-failures/\(UUID().uuidString.lowercased())",
                                        body: job, traceID: nil)
        }
    }

    /// Hands its detections to `publish`.
    public init(policy: Policy, ignoring ignored: Set<String> = [], logger: Logger,
                publish: @escaping @Sendable (SecurityDetectionJob) async throws -> Void) {
        self.policy = policy
        self.ignored = ignored
        self.logger = logger
        self.publish = publish
    }

    /// Counts one 401 answered to `address`; returns the detection when this failure reaches the limit.
    @discardableResult
    public func failed(address: String, at now: Date = Date()) -> SecurityDetectionJob? {
        guard policy.limit > 0, IncidentEngine.isAddress(address), !ignored.contains(address), !Self.isLoopback(address) else { return nil }
        let window = policy.window.inSeconds
        let reached: Date? = counts.withLock { counts in
            if counts.count >= policy.maxAddresses, counts[address] == nil {
                counts = counts.filter { now.timeIntervalSince($0.value.start) <= window }
                if counts.count >= policy.maxAddresses { counts.removeAll(keepingCapacity: true) }
            }
            var count = counts[address] ?? Count(start: now, failures: 0)
            if now.timeIntervalSince(count.start) > window { count = Count(start: now, failures: 0) }
            count.failures += 1
            guard count.failures >= policy.limit else {
                counts[address] = count
                return nil
            }
            counts[address] = nil
            return count.start
        }
        guard let since = reached else { return nil }
        let detection = SecurityDetectionJob(
            kind: "auth_failures", severity: .high, dedupKey: "auth_failures:gateway:\(address)",
            title: "Repeated authentication failures at the gateway",
            summary: "\(policy.limit) requests without a valid API key from \(address) within \(DurationText.format(.seconds(max(1, now.timeIntervalSince(since).rounded(.up))))) (limit \(policy.limit) in \(DurationText.format(policy.window)))",
            service: "gateway", sourceAddress: address, detectedAt: now, reportedBy: "gateway")
        let publish = self.publish, logger = self.logger
        Task {
            do {
                try await publish(detection)
            } catch {
                logger.error("cannot publish an auth_failures detection", metadata: ["mingus.client": "\(address)", "mingus.error": "\(error)"])
            }
        }
        return detection
    }

    static func isLoopback(_ address: String) -> Bool {
        address.hasPrefix("127.") || address == "::1" || address.lowercased().hasPrefix("::ffff:127.")
    }
}
