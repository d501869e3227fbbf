import AsyncHTTPClient
import Foundation
import Logging
import MingusAMQP
import MingusCore
import MingusSecurity
import MingusGateway
import MingusPayments
import MingusPostgres
import NIOCore
import NIOHTTP1
import TestSupport

/// End-to-end payment figures: HTTP POST to the gateway → `authorized` row committed by a
/// payments worker, through real processes built in release mode.
enum PaymentsBenchmarks {
    struct Figures {
        var gatewayAccepted: Double
        var endToEnd: [(workers: Int, rate: Double)]
        var latency: (rate: Double, p50: Double, p99: Double, payments: Int)
    }

    /// 100 distinct cards, so that most payments find their token and some create one.
    static let cards = (0..<100).map { index -> String in
        var digits = [4, 9, 7] + String(format: "%012d", index * 7919).compactMap { $0.wholeNumberValue }
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            let doubled = offset % 2 == 0 ? digit * 2 : digit
            sum += doubled > 9 ? doubled - 9 : doubled
        }
        digits.append((10 - sum % 10) % 10)
        return digits.map(String.init).joined()
    }

    static func run(count: Int, concurrency: Int) async throws -> Figures {
        let environment: [String: String] = [:]
        // The gateway alone: requests accepted (validated, sealed, confirmed by the broker, pending row).
        let alone = try await Cluster.start(environment: environment)
        let aloneKey = try await APIKeyStore(database: alone.database).create(name: "bench", roles: [.admin]).key
        let gatewayWall = try await post(alone, key: aloneKey, count: count, concurrency: concurrency)
        try await alone.stop()
        try await purgePayments()

        var endToEnd: [(Int, Double)] = []
        var oneWorkerRate = 0.0
        for workers in [1, 2, 4] {
            let cluster = try await Cluster.start(workers: workers, environment: environment)
            let key = try await APIKeyStore(database: cluster.database).create(name: "bench", roles: [.admin]).key
            try await waitForConsumers(workers)
            let start = Date()
            _ = try await post(cluster, key: key, count: count, concurrency: concurrency)
            let last = try await lastAuthorized(cluster, count: count)
            let rate = Double(count) / last.timeIntervalSince(start)
            endToEnd.append((workers, rate))
            if workers == 1 { oneWorkerRate = rate }
            try await cluster.stop()
        }

        // Latency at half the one-worker rate, paced (open loop), one worker.
        let cluster = try await Cluster.start(workers: 1, environment: environment)
        let key = try await APIKeyStore(database: cluster.database).create(name: "bench", roles: [.admin]).key
        try await waitForConsumers(1)
        let rate = oneWorkerRate / 2
        let paced = max(200, Int(rate * 10))
        let sent = try await pace(cluster, key: key, count: paced, rate: rate)
        _ = try await lastAuthorized(cluster, count: paced)
        var latencies: [Double] = []
        for row in try await cluster.database.query("SELECT transaction_id::text, updated_at FROM payment_data") {
            if let at = sent[try row.decode(String.self, at: 0)] {
                latencies.append(try row.decode(Date.self, at: 1).timeIntervalSince(at) * 1000)
            }
        }
        latencies.sort()
        try await cluster.stop()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return Figures(gatewayAccepted: Double(count) / gatewayWall, endToEnd: endToEnd,
                       latency: (rate, percentile(0.5), percentile(0.99), latencies.count))
    }

    /// Posts `count` payments, `concurrency` at a time; returns the wall time in seconds.
    private static func post(_ cluster: Cluster, key: String, count: Int, concurrency: Int) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    for index in stride(from: lane, to: count, by: concurrency) {
                        _ = try await send(cluster, key: key, card: cards[index % cards.count])
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        return elapsed.inSeconds
    }

    /// Sends `count` payments at `rate` per second; returns each transaction id's send time.
    private static func pace(_ cluster: Cluster, key: String, count: Int, rate: Double) async throws -> [String: Date] {
        let start = ContinuousClock.now
        return try await withThrowingTaskGroup(of: (String, Date).self) { group in
            for index in 0..<count {
                try await Task.sleep(until: start + .seconds(Double(index) / rate))
                group.addTask {
                    let at = Date()
                    return (try await send(cluster, key: key, card: cards[index % cards.count]), at)
                }
            }
            var sent: [String: Date] = [:]
            for try await (id, at) in group { sent[id] = at }
            return sent
        }
    }

    private static func send(_ cluster: Cluster, key: String, card: String) async throws -> String {
        var request = HTTPClientRequest(url: cluster.base + "/api/financial/payment/process")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.headers.add(name: "content-type", value: "application/json")
        let year = Calendar.current.component(.year, from: Date()) + 2
        let body = #"{"card_number":"\#(card)","expiry_month":12,"expiry_year":\#(year),"cvv":"123","cardholder_name":"Bench Mark","amount":1250,"currency":"USD","merchant_id":"bench"}"#
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 64 * 1024))
        guard response.status == .accepted,
              let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let id = object["transaction_id"] as? String else {
            throw WorkerProcessError(message: "the gateway answered \(response.status.code): \(text)")
        }
        return id
    }

    /// When the last of `count` payments was authorized (database clock).
    private static func lastAuthorized(_ cluster: Cluster, count: Int) async throws -> Date {
        while true {
            let row = try await cluster.database.query(
                "SELECT count(*) FILTER (WHERE status <> 'pending'), max(updated_at) FROM payment_data")[0]
            if try row.decode(Int.self, at: 0) >= count { return try row.decode(Date.self, at: 1) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private static func withBroker<T>(_ body: (AMQPConnection) async throws -> T) async throws -> T {
        let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL, connectionName: "mingus-bench"), logger: Logger(label: "mingus-bench"))
        let result = try await body(connection)
        await connection.close()
        return result
    }

    private static func waitForConsumers(_ count: Int) async throws {
        try await withBroker { broker in
            _ = try await eventually(timeout: .seconds(60)) { try await broker.queueInfo("mingus.payments").consumerCount >= count }
        }
    }

    /// Jobs the gateway-only run left for no worker.
    private static func purgePayments() async throws {
        try await withBroker { broker in _ = try await broker.purgeQueue("mingus.payments") }
    }
}
