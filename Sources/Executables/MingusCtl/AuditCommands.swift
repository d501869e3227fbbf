import ArgumentParser
import Foundation
import MingusCore
import MingusSecurity
import MingusRuntime

extension Mingusctl {
    /// `mingusctl audit …`: the tamper-evident audit trail.
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify and checkpoint the tamper-evident audit trail.",
            subcommands: [Verify.self, Checkpoint.self, Keygen.self])

        struct KeyOption: ParsableArguments {
            @Option(name: .customLong("signing-key"),
                    help: "Ed25519 checkpoint key file (default: MINGUS_AUDIT_SIGNING_KEY_PATH or .services/keys/audit-signing.key); its public key is the same path + .pub.")
            var path: String?

            var url: URL {
                URL(fileURLWithPath: path ?? ProcessInfo.processInfo.environment["MINGUS_AUDIT_SIGNING_KEY_PATH"]
                    ?? ".services/keys/audit-signing.key")
            }
        }

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Recompute every hash chain and check stream heads and signed checkpoints; prints OK or the first broken entry (exit 1).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var key: KeyOption
            @Option(help: "Only streams whose name starts with this.") var streamPrefix: String?

            func run() async throws {
                let publicKeyURL = key.url.appendingPathExtension("pub")
                let publicKey = FileManager.default.fileExists(atPath: publicKeyURL.path)
                    ? try AuditSigner.publicKey(contentsOf: publicKeyURL) : nil
                let result = try await connection.withDatabase { db, _ in
                    try await AuditVerifier(database: db, publicKeys: publicKey.map { [$0] } ?? []).verify(streamPrefix: streamPrefix)
                }
                if let broken = result.firstBreak {
                    print("BROKEN \(broken)")
                    throw ExitCode(1)
                }
                let untrusted = result.untrustedCheckpoints == 0 ? ""
                    : "; \(result.untrustedCheckpoints) checkpoints signed by other keys not checked"
                    + (publicKey == nil ? " (no public key at \(publicKeyURL.path))" : "")
                let rebased = result.rebasedStreams == 0 ? "" : "; \(result.rebasedStreams) streams start after archived entries a checkpoint vouches for"
                print("OK \(result.events) events in \(result.streams) streams; \(result.checkpoints) signed checkpoints verified\(untrusted)\(rebased)")
            }
        }

        struct Checkpoint: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Sign the current head of every stream.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var key: KeyOption

            func run() async throws {
                let signer = try AuditSigner(contentsOf: key.url)
                let (id, streams) = try await connection.withDatabase { db, _ in
                    let signed = try await signer.checkpoint(db)
                    try await OperatorAudit.record("audit.checkpoint", resource: "audit/checkpoints/\(signed.0)",
                                                   details: ["streams": "\(signed.1)", "key": AuditSigner.keyID(signer.publicKey)], on: db)
                    return signed
                }
                print("checkpoint \(id) signs \(streams) stream heads with key \(AuditSigner.keyID(signer.publicKey))")
            }
        }

        struct Keygen: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create the checkpoint signing key (mode 0600) and its .pub; never overwrites.")
            @OptionGroup var key: KeyOption

            func run() async throws {
                let signer = try AuditSigner.createKey(at: key.url)
                print("created \(key.url.path) and \(key.url.path).pub (key \(AuditSigner.keyID(signer.publicKey)))")
            }
        }
    }
}
