import ArgumentParser
import Foundation
import MingusAMQP
import MingusCore
import MingusPostgres
import MingusRuntime

/// A dead-lettered job as `dlq` shows it.
struct DeadLetter {
    let delivery: AMQPDelivery

    var id: String { delivery.properties.messageID ?? "(no id)" }
    var type: String { delivery.properties.type ?? "(no type)" }
    private var headers: [String: AMQPFieldValue] { delivery.properties.headers }
    var reason: String {
        headers[JobEnvelope.reasonHeader]?.stringValue
            ?? (headers["x-death"] != nil ? "delivery_limit (the broker dead-lettered it after repeated redeliveries)" : "unknown")
    }
    var error: String { headers[JobEnvelope.errorHeader]?.stringValue ?? "" }
    var attempts: Int64 { headers[JobEnvelope.attemptHeader]?.intValue ?? 1 }
    var at: String { headers[JobEnvelope.deadLetteredAtHeader]?.stringValue ?? "" }
    var originalRoutingKey: String? {
        if let key = headers[JobEnvelope.originalRoutingKeyHeader]?.stringValue { return key }
        // Dead-lettered by the broker itself: the routing key is in the first x-death entry.
        if case .array(let deaths)? = headers["x-death"], case .table(let first)? = deaths.first,
           case .array(let keys)? = first["routing-keys"], let key = keys.first?.stringValue {
            return key
        }
        return nil
    }
}

/// Takes every message of a dead-letter queue without settling them, runs `body`, then closes
/// the connection: what `body` did not acknowledge goes back to the queue as it was.
func withDeadLetters<T>(
    _ options: ConnectionOptions, queue: String, _ body: (AMQPConnection, [DeadLetter]) async throws -> T
) async throws -> T {
    try await options.withBroker { broker in
        let depth = try await broker.queueInfo(queue).messageCount
        var letters: [DeadLetter] = []
        for _ in 0..<depth {
            guard let delivery = try await broker.get(queue: queue) else { break }
            letters.append(DeadLetter(delivery: delivery))
        }
        return try await body(broker, letters)
    }
}

/// `payments` → `mingus.payments.dead`; a full queue name is kept.
func deadLetterQueue(_ name: String) -> String {
    name.hasPrefix("mingus.") ? name : WorkerQueues(name: name).deadLetterQueue
}

extension Mingusctl {
    /// `mingusctl dlq …`: inspect, replay and purge dead-letter queues.
    struct DLQ: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq",
            abstract: "Inspect, replay and purge a worker's dead-letter queue.",
            subcommands: [List.self, Show.self, Replay.self, Purge.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List dead-lettered jobs: id, type, reason, attempts, when, error.")
            @OptionGroup var connection: ConnectionOptions
            @Argument(help: "Worker name (payments, alerts, …) or dead-letter queue name.") var queue: String

            func run() async throws {
                let queue = deadLetterQueue(queue)
                try await withDeadLetters(connection, queue: queue) { _, letters in
                    print("\(letters.count) dead-lettered job(s) in \(queue)")
                    for letter in letters {
                        print("\(letter.id)  \(letter.type)  reason=\(letter.reason)  attempts=\(letter.attempts)  at=\(letter.at)")
                        if !letter.error.isEmpty { print("    \(letter.error.prefix(300))") }
                    }
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show one dead-lettered job: headers and body.")
            @OptionGroup var connection: ConnectionOptions
            @Argument(help: "Worker name or dead-letter queue name.") var queue: String
            @Argument(help: "The job id.") var id: String

            func run() async throws {
                try await withDeadLetters(connection, queue: deadLetterQueue(queue)) { _, letters in
                    guard let letter = letters.first(where: { $0.id == id }) else {
                        throw ValidationError("no job with id \(id) in \(deadLetterQueue(queue))")
                    }
                    print("id: \(letter.id)\ntype: \(letter.type)\nrouting key: \(letter.originalRoutingKey ?? "?")")
                    print("reason: \(letter.reason)\nattempts: \(letter.attempts)\ndead-lettered at: \(letter.at)\nerror: \(letter.error)")
                    print("headers:")
                    for (key, value) in letter.delivery.properties.headers.sorted(by: { $0.key < $1.key }) {
                        print("  \(key): \(value.stringValue ?? "\(value)")")
                    }
                    print("body:\n\(String(decoding: letter.delivery.body, as: UTF8.self))")
                }
            }
        }

        struct Replay: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Send dead-lettered jobs back to their original queue as first attempts.")
            @OptionGroup var connection: ConnectionOptions
            @Argument(help: "Worker name or dead-letter queue name.") var queue: String
            @Option(name: .customLong("id"), help: "Replay only this job (repeatable).") var ids: [String] = []
            @Flag(help: "Replay every job in the queue.") var all = false

            func validate() throws {
                if ids.isEmpty == !all { throw ValidationError("give --all or one or more --id") }
            }

            func run() async throws {
                let replayed = try await withDeadLetters(connection, queue: deadLetterQueue(queue)) { broker, letters in
                    var replayed = 0
                    for letter in letters where all || ids.contains(letter.id) {
                        guard let routingKey = letter.originalRoutingKey else {
                            print("skipped \(letter.id): no original routing key")
                            continue
                        }
                        var properties = letter.delivery.properties
                        for key in properties.headers.keys where key.hasPrefix("x-mingus-") || key.hasPrefix("x-death")
                            || key.hasPrefix("x-first-death") || key.hasPrefix("x-last-death") || key == "x-delivery-count" {
                            properties.headers[key] = nil
                        }
                        properties.headers[JobEnvelope.attemptHeader] = 1
                        properties.expiration = nil
                        try await broker.publish(AMQPMessage(body: letter.delivery.body, properties: properties),
                                                 exchange: MingusTopology.jobsExchange, routingKey: routingKey)
                        try letter.delivery.ack()
                        replayed += 1
                    }
                    return replayed
                }
                try await connection.withDatabase { db, _ in
                    try await OperatorAudit.record("dlq.replay", resource: "queues/\(deadLetterQueue(queue))",
                                                   details: ["jobs": "\(replayed)", "ids": all ? "all" : ids.joined(separator: ",")], on: db)
                }
                print("replayed \(replayed) job(s)")
            }
        }

        struct Purge: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete every job in a dead-letter queue.")
            @OptionGroup var connection: ConnectionOptions
            @Argument(help: "Worker name or dead-letter queue name.") var queue: String

            func run() async throws {
                let queue = deadLetterQueue(queue)
                let count = try await connection.withBroker { try await $0.purgeQueue(queue) }
                try await connection.withDatabase { db, _ in
                    try await OperatorAudit.record("dlq.purge", resource: "queues/\(queue)", details: ["jobs": "\(count)"], on: db)
                }
                print("purged \(count) job(s) from \(queue)")
            }
        }
    }

    /// `mingusctl schedule list`: pending one-off jobs and cron schedules.
    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Durable schedules.", subcommands: [List.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List pending scheduled jobs and cron schedules.")
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "At most this many pending one-off jobs.") var limit = 50

            func run() async throws {
                try await connection.withDatabase { db, _ in
                    let periodic = try await db.query("""
                        SELECT name, cron, type, next_run_at, last_run_at, enabled FROM mingus_periodic_schedules ORDER BY name
                        """)
                    print("cron schedules: \(periodic.count)")
                    for row in periodic {
                        let last = try row.decode(Date?.self, at: 4).map { $0.formatted(.iso8601) } ?? "never"
                        print("  \(try row.decode(String.self, at: 0))  '\(try row.decode(String.self, at: 1))'  \(try row.decode(String.self, at: 2))  next=\(try row.decode(Date.self, at: 3).formatted(.iso8601))  last=\(last)\(try row.decode(Bool.self, at: 5) ? "" : "  DISABLED")")
                    }
                    let pending = try await db.query("SELECT count(*) FROM mingus_scheduled_jobs WHERE fired_at IS NULL")[0].decode(Int.self, at: 0)
                    print("pending one-off jobs: \(pending)")
                    for row in try await db.query("""
                        SELECT message_id, type, run_at FROM mingus_scheduled_jobs WHERE fired_at IS NULL ORDER BY run_at LIMIT \(limit)
                        """) {
                        print("  \(try row.decode(String.self, at: 0))  \(try row.decode(String.self, at: 1))  at=\(try row.decode(Date.self, at: 2).formatted(.iso8601))")
                    }
                }
            }
        }
    }
}
