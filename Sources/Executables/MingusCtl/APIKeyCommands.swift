import ArgumentParser
import Foundation
import MingusGateway
import MingusSecurity

extension Mingusctl {
    /// `mingusctl apikey …`: API keys of upstream services.
    struct APIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apikey", abstract: "Create, list and revoke gateway API keys (stored only as hashes).",
            subcommands: [Create.self, List.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a key; the key is printed once, as the last line.")
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "Who the key is for (shown in the audit trail as apikey:NAME).") var name: String
            @Option(help: "A role some route checks, such as payments:write or admin (repeatable; an unknown one lists them all).")
            var role: [String]

            func validate() throws {
                if role.isEmpty { throw ValidationError("give at least one --role") }
                let known = Set(GatewayApplication.roles)
                for name in role where !known.contains(Role(name)) {
                    throw ValidationError("unknown role '\(name)' (\(known.sorted().map(\.rawValue).joined(separator: ", ")))")
                }
            }

            func run() async throws {
                let roles = Set(role.map(Role.init(rawValue:)))
                let (identity, key) = try await connection.withDatabase { db, _ in
                    let created = try await APIKeyStore(database: db).create(name: name, roles: roles)
                    try await OperatorAudit.record("apikey.create", resource: "apikeys/\(created.0.id)",
                                                   details: ["name": name, "roles": roles.map(\.rawValue).sorted().joined(separator: ",")], on: db)
                    return created
                }
                print("created API key \(identity.id) for \(identity.name) with \(roles.map(\.rawValue).sorted().joined(separator: ", "))")
                print(key)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")
            @OptionGroup var connection: ConnectionOptions

            func run() async throws {
                try await connection.withDatabase { db, _ in
                    for key in try await APIKeyStore(database: db).list() {
                        let state = key.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
                        let used = key.lastUsedAt.map { $0.formatted(.iso8601) } ?? "never"
                        print("\(key.identity.id)  \(key.identity.name)  \(key.identity.roles.map(\.rawValue).sorted().joined(separator: ","))  \(state)  last used \(used)")
                    }
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a key by id or name.")
            @OptionGroup var connection: ConnectionOptions
            @Argument(help: "The key's id or name.") var key: String

            func run() async throws {
                let count = try await connection.withDatabase { db, _ in
                    let count = try await APIKeyStore(database: db).revoke(key)
                    if count > 0 {
                        try await OperatorAudit.record("apikey.revoke", resource: "apikeys/\(key)", details: ["keys": "\(count)"], on: db)
                    }
                    return count
                }
                guard count > 0 else { throw ValidationError("no active key with id or name '\(key)'") }
                print("revoked \(count) key(s)")
            }
        }
    }
}
