import ArgumentParser
import Foundation
import MingusAMQP
import MingusCore
import MingusGateway
import MingusPayments
import MingusPostgres
import MingusRuntime
import MingusSecurity

extension Mingusctl {
    /// `mingusctl keys …`: the key-encrypting key and the versioned data keys it wraps.
    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the key-encrypting key (a file) and the data keys it wraps (in the database).",
            subcommands: [Init.self, Check.self, Rotate.self, Rewrap.self, List.self, EraseSubject.self])

        struct Init: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create the key-encrypting key file (mode 0600) if missing, and a first data key for every purpose that has none.")
            @OptionGroup var connection: ConnectionOptions

            func run() async throws {
                let configuration = try connection.configuration()
                let url = URL(fileURLWithPath: configuration.financialKeyPath)
                let kek: KeyEncryptingKey
                let createdKEK: Bool
                if FileManager.default.fileExists(atPath: url.path) {
                    kek = try KeyEncryptingKey(contentsOf: url)
                    createdKEK = false
                    print("key-encrypting key \(kek.id) already at \(url.path)")
                } else {
                    kek = try KeyEncryptingKey.create(at: url)
                    createdKEK = true
                    print("created key-encrypting key \(kek.id) at \(url.path) (mode 0600); back it up: without it no data key opens")
                }
                try await connection.withDatabase { db, _ in
                    if createdKEK {
                        try await OperatorAudit.record("keys.kek.create", resource: "keys/kek/\(kek.id)", details: ["path": url.path], on: db)
                    }
                    let keyring = try await Keyring.load(kek: kek, database: db)
                    for purpose in declaredPurposes where keyring.versions(purpose).isEmpty {
                        let version = try await Keyring.rotate(purpose, kek: kek, database: db)
                        try await OperatorAudit.record("keys.datakey.create", resource: "keys/\(purpose.rawValue)/v\(version)",
                                                       details: ["kek": kek.id], on: db)
                        print("created data key \(purpose.rawValue) v\(version)")
                    }
                }
            }
        }

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Unwrap every data key with the key-encrypting key file: prints OK, or why one does not open (exit 1). Changes nothing.")
            @OptionGroup var connection: ConnectionOptions

            func run() async throws {
                let configuration = try connection.configuration()
                let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: configuration.financialKeyPath))
                let keyring = try await connection.withDatabase { db, _ in try await Keyring.load(kek: kek, database: db) }
                let purposes = declaredPurposes.filter { !keyring.versions($0).isEmpty }
                let count = purposes.reduce(0) { $0 + keyring.versions($1).count }
                print("OK \(count) data keys of \(purposes.count) purposes open with key-encrypting key \(kek.id)")
            }
        }

        struct EraseSubject: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "erase-subject",
                abstract: "Destroy a data subject's key (cryptographic erase): everything sealed under it becomes unreadable, for good. Audited.")
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "The subject (user id).") var subject: String
            @Option(help: "Why, for the audit trail (e.g. the erasure request).") var reason: String
            @Option(help: "Who asks, for the audit trail (default: operator:USER@HOST).") var actor: String = OperatorAudit.actor

            func run() async throws {
                guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must not be blank") }
                let configuration = try connection.configuration()
                let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: configuration.financialKeyPath))
                try await connection.withDatabase { db, _ in
                    switch try await SubjectKeys(kek: kek, database: db).erase(subject, actor: actor, reason: reason) {
                    case .erased(let at): print("erased the key of \(subject) at \(at)")
                    case .alreadyErased(let at): print("the key of \(subject) was already erased at \(at)")
                    case .noKey: print("\(subject) had no key; none will ever be made")
                    }
                }
            }
        }

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a new data key version: new values are sealed with it, older versions still open theirs.")
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "A data key purpose, such as pan (repeatable); default: every purpose but fingerprint.")
            var purpose: [String] = []

            func run() async throws {
                // Fingerprint keys are rotated only when asked: every version is tried on each card lookup.
                let requested: [KeyPurpose] = purpose.isEmpty ? declaredPurposes.filter { $0 != .fingerprint } : purpose.map { KeyPurpose($0) }
                for unknown in requested where !declaredPurposes.contains(unknown) {
                    throw ValidationError("unknown purpose '\(unknown)' (\(declaredPurposes.map(\.rawValue).joined(separator: ", ")))")
                }
                let purposes = requested
                let configuration = try connection.configuration()
                let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: configuration.financialKeyPath))
                try await connection.withDatabase { db, _ in
                    for purpose in purposes {
                        let version = try await Keyring.rotate(purpose, kek: kek, database: db)
                        try await OperatorAudit.record("keys.datakey.rotate", resource: "keys/\(purpose.rawValue)/v\(version)",
                                                       details: ["kek": kek.id], on: db)
                        print("data key \(purpose.rawValue) is now at v\(version)")
                    }
                }
            }
        }

        struct Rewrap: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Ask the payments workers to move stored ciphertext to the newest data key version.",
                discussion: """
                    Publishes a payments.rewrap job; a payments worker rewraps one batch per job (in its own \
                    transaction, plaintext never leaving the worker) and publishes the next job until no row is \
                    left on an older version. `keys list` and the audit trail (action keys.rewrap) show progress.
                    """)
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "pan (the token vault, fingerprints included) or records (financial record contents).")
            var purpose: String
            @Option(help: "Rows per job (1-10000).")
            var batchSize: Int = 500

            func run() async throws {
                guard ["pan", "records"].contains(purpose) else { throw ValidationError("purpose must be pan or records") }
                guard (1...10_000).contains(batchSize) else { throw ValidationError("batch-size must be 1-10000") }
                let id = "rewrap-\(purpose)-\(UUID().uuidString.lowercased())"
                let envelope = JobEnvelope(id: id, type: RewrapJob.type, source: "/mingus/mingusctl",
                                           body: Array(try JSONEncoder.mingus.encode(RewrapJob(purpose: purpose, batchSize: batchSize))))
                try await connection.withBroker { broker in
                    try await broker.declare(declaredTopology)
                    try await broker.publish(envelope.message(), exchange: MingusTopology.jobsExchange, routingKey: RewrapJob.type,
                                             mandatory: true)
                }
                try await connection.withDatabase { db, _ in
                    try await OperatorAudit.record("keys.rewrap.request", resource: "keys/\(purpose)", details: ["job": id, "batch_size": "\(batchSize)"], on: db)
                }
                print("published \(RewrapJob.type) \(id) for \(purpose)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List data key versions (never the keys).")
            @OptionGroup var connection: ConnectionOptions

            func run() async throws {
                try await connection.withDatabase { db, _ in
                    for row in try await db.query(
                        "SELECT purpose, version, kek_id, created_at, retired_at FROM mingus_data_keys ORDER BY purpose, version") {
                        let retired = try row.decode(Date?.self, at: 4).map { "  retired \($0.formatted(.iso8601))" } ?? ""
                        print("\(try row.decode(String.self, at: 0)) v\(try row.decode(Int.self, at: 1))  kek \(try row.decode(String.self, at: 2))  created \(try row.decode(Date.self, at: 3).formatted(.iso8601))\(retired)")
                    }
                }
            }
        }
    }
}
