public import Foundation
import MingusPostgres
import Synchronization

/// Payments posted without pause by concurrent clients, for fault tests and benchmarks that
/// restart services under load: which payments the gateway accepted (202) and when, and how
/// often it answered anything else.
public final class PaymentLoad: Sendable {
    /// A payment the gateway accepted.
    public struct Accepted: Sendable {
        public let id: String
        /// When the 202 arrived.
        public let at: Date
    }

    private struct State {
        var accepted: [Accepted] = []
        var refused: [Int: Int] = [:]
        var refusedAt: [Date] = []
        var stopped = false
        var paused = false
        /// Clients waiting for ``resume()``.
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    private init() {}

    /// Every payment accepted so far, in the order the answers arrived.
    public var accepted: [Accepted] { state.withLock { $0.accepted } }

    /// Answers other than 202 so far, by status (0: no answer, e.g. the connection failed).
    public var refused: [Int: Int] { state.withLock { $0.refused } }

    /// When each answer other than 202 arrived.
    public var refusedAt: [Date] { state.withLock { $0.refusedAt } }

    /// How many payments were accepted at or after `date`.
    public func acceptedCount(since date: Date) -> Int {
        state.withLock { $0.accepted.reduce(0) { $0 + ($1.at >= date ? 1 : 0) } }
    }

    /// Runs `clients` clients, each posting one payment after another to `cluster` with `key`
    /// (pausing 50 ms after an answer other than 202), for as long as `body` runs; returns once
    /// every client has had its last answer.
    public static func run<T>(on cluster: Cluster, key: String, clients: Int,
                              _ body: (PaymentLoad) async throws -> T) async throws -> T {
        let load = PaymentLoad()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask { await load.post(to: cluster, key: key, client: client) }
            }
            do {
                let value = try await body(load)
                load.stop()
                try await group.waitForAll()
                return value
            } catch {
                load.stop()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    private func stop() {
        let waiting = state.withLock { state in
            state.stopped = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for client in waiting { client.resume() }
    }

    /// Clients post nothing new until ``resume()`` (an answer they wait for still arrives).
    public func pause() {
        state.withLock { $0.paused = true }
    }

    /// Clients post again.
    public func resume() {
        let waiting = state.withLock { state in
            state.paused = false
            defer { state.waiting = [] }
            return state.waiting
        }
        for client in waiting { client.resume() }
    }

    /// Returns at once unless paused; then once resumed or stopped.
    private func whilePaused() async {
        await withCheckedContinuation { (client: CheckedContinuation<Void, Never>) in
            let goOn = state.withLock { state in
                guard state.paused && !state.stopped else { return true }
                state.waiting.append(client)
                return false
            }
            if goOn { client.resume() }
        }
    }

    private func post(to cluster: Cluster, key: String, client: Int) async {
        let year = Calendar.current.component(.year, from: Date()) + 2
        let headers = ["Authorization": "Bearer \(key)", "Content-Type": "application/json"]
        var sequence = 0
        while !state.withLock({ $0.stopped }) {
            await whilePaused()
            if state.withLock({ $0.stopped }) { break }
            sequence += 1
            let body = #"{"card_number":"4242424242424242","expiry_month":12,"expiry_year":\#(year),"cvv":"123","cardholder_name":"Load Client","amount":\#(100 + sequence),"currency":"EUR","merchant_id":"load-\#(client)"}"#
            var status = 0
            var id: String?
            if let answer = try? await httpRequest(cluster.base + "/api/financial/payment/process", method: "POST",
                                                   headers: headers, body: Data(body.utf8)) {
                status = answer.status
                id = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["transaction_id"] as? String
            }
            if status == 202, let id {
                let accepted = Accepted(id: id, at: Date())
                state.withLock { $0.accepted.append(accepted) }
            } else {
                let now = Date()
                state.withLock {
                    $0.refused[status, default: 0] += 1
                    $0.refusedAt.append(now)
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// How many of the accepted payments the cluster's database has as decided (a cheap poll).
    public func decidedCount(in cluster: Cluster) async throws -> Int {
        let ids = accepted.map(\.id)
        return try await cluster.database.query("""
            SELECT count(*) FROM payment_data WHERE status <> 'pending' AND transaction_id::text = ANY(\(ids)::text[])
            """)[0].decode(Int.self, at: 0)
    }

    /// How the accepted payments stand in the cluster's database.
    public func decisions(in cluster: Cluster) async throws -> Decisions {
        let ids = accepted.map(\.id)
        let row = try await cluster.database.query("""
            SELECT count(*) FILTER (WHERE status <> 'pending'),
                   (SELECT count(*) FROM audit_events
                     WHERE action LIKE 'payment.%' AND resource = ANY(SELECT 'payment/' || id FROM unnest(\(ids)::text[]) AS id)),
                   (SELECT count(*) FROM (SELECT resource FROM audit_events
                     WHERE action LIKE 'payment.%' AND resource = ANY(SELECT 'payment/' || id FROM unnest(\(ids)::text[]) AS id)
                     GROUP BY resource HAVING count(*) > 1) AS repeated)
            FROM payment_data WHERE transaction_id::text = ANY(\(ids)::text[])
            """)[0]
        return Decisions(accepted: ids.count, decided: try row.decode(Int.self, at: 0), auditEvents: try row.decode(Int.self, at: 1),
                         auditedTwice: try row.decode(Int.self, at: 2))
    }

    /// The accepted payments as the database has them.
    public struct Decisions: Sendable, CustomStringConvertible {
        /// Payments the gateway accepted.
        public var accepted: Int
        /// Of those, payments no longer pending.
        public var decided: Int
        /// `payment.*` audit events of those payments.
        public var auditEvents: Int
        /// Payments with more than one `payment.*` audit event.
        public var auditedTwice: Int

        public var description: String {
            "\(accepted) accepted, \(decided) decided, \(auditEvents) payment audit events, \(auditedTwice) payments audited more than once"
        }
    }
}
