import ArgumentParser
import Foundation
import MingusRetention
import MingusSecurity

extension Mingusctl {
    /// `mingusctl retention …`: the retention archive.
    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the retention archive.", subcommands: [VerifyArchive.self])

        struct VerifyArchive: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify-archive",
                abstract: "Check every manifest's signature and every archive file's SHA-256 and row count; prints OK or each problem (exit 1).")
            @Option(help: "The archive directory (default: MINGUS_ARCHIVE_DIR or .services/archive).") var directory: String?
            @OptionGroup var key: Audit.KeyOption

            func run() async throws {
                let folder = directory ?? ProcessInfo.processInfo.environment["MINGUS_ARCHIVE_DIR"] ?? ".services/archive"
                let publicKey = try AuditSigner.publicKey(contentsOf: key.url.appendingPathExtension("pub"))
                let result = try ArchiveVerification.verify(try DirectoryArchiveStore(directory: URL(fileURLWithPath: folder)),
                                                            publicKeys: [publicKey])
                for problem in result.problems { print("PROBLEM \(problem)") }
                guard result.isIntact else { throw ExitCode(1) }
                print("OK \(result.manifests) manifests, \(result.files) files, \(result.rows) rows")
            }
        }
    }
}
