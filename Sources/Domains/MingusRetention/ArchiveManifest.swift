import Foundation
public import Crypto
import MingusHTTP
import MingusCore
import MingusSecurity

/// The list of a sweep's archive files of one data type — each file's SHA-256, rows and key
/// range — signed with the audit checkpoint key (Ed25519), so that neither a file nor the list can
/// change unnoticed.
public struct ArchiveManifest: Codable, Sendable, Equatable {
    /// One archive file.
    public struct File: Codable, Sendable, Equatable {
        public var name: String
        public var sha256: String
        public var rows: Int
        public var bytes: Int64
        public var keyFrom: String
        public var keyTo: String
    }

    public var sweepId: String
    public var dataType: String
    public var table: String
    public var files: [File]

    public var fileName: String { "manifest-\(sweepId)-\(dataType).json" }

    /// What is stored: `{"manifest": …, "key_id": …, "signature": <base64 over the manifest's canonical JSON>}`.
    struct Signed: Codable {
        var manifest: ArchiveManifest
        var keyId: String
        var signature: String
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    func canonical() throws -> [UInt8] { Array(try Self.encoder.encode(self)) }

    func signed(by signer: AuditSigner) throws -> [UInt8] {
        let signature = try signer.sign(try canonical())
        return Array(try Self.encoder.encode(Signed(manifest: self, keyId: AuditSigner.keyID(signer.publicKey),
                                                    signature: Data(signature).base64EncodedString())))
    }
}

/// What `mingusctl retention verify-archive` found.
public struct ArchiveVerification: Sendable {
    public var manifests = 0
    public var files = 0
    public var rows = 0
    /// Every problem, one line each: a bad signature, a digest or row count that does not match,
    /// a missing file, a file no manifest lists.
    public var problems: [String] = []
    public var isIntact: Bool { problems.isEmpty }

    /// Checks every manifest's signature against `publicKeys` and every file it lists.
    public static func verify(_ store: any ArchiveStore, publicKeys: [Curve25519.Signing.PublicKey]) throws -> ArchiveVerification {
        var result = ArchiveVerification()
        let names = try store.list()
        var listed: Set<String> = []
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        for name in names where name.hasPrefix("manifest-") {
            result.manifests += 1
            listed.insert(name)
            guard let signed = try? decoder.decode(ArchiveManifest.Signed.self, from: Data(try store.read(name))),
                  let signature = Data(base64Encoded: signed.signature) else {
                result.problems.append("\(name): not a signed manifest")
                continue
            }
            let canonical = try signed.manifest.canonical()
            guard publicKeys.contains(where: { $0.isValidSignature(signature, for: canonical) }) else {
                result.problems.append("\(name): the signature does not verify with any trusted key (key id \(signed.keyId))")
                continue
            }
            for file in signed.manifest.files {
                listed.insert(file.name)
                result.files += 1
                guard names.contains(file.name) else {
                    result.problems.append("\(file.name): listed in \(name) but missing")
                    continue
                }
                let bytes = try store.read(file.name)
                guard Hex.encode(SHA256.hash(data: bytes)) == file.sha256 else {
                    result.problems.append("\(file.name): SHA-256 differs from the manifest's")
                    continue
                }
                let lines = (try? Gzip.decompress(bytes))?.split(separator: 0x0A).count
                guard lines == file.rows else {
                    result.problems.append("\(file.name): \(lines.map(String.init) ?? "unreadable") rows, the manifest says \(file.rows)")
                    continue
                }
                result.rows += file.rows
            }
        }
        for name in names where !listed.contains(name) {
            result.problems.append("\(name): no manifest lists it (a sweep still running, or a file put there by hand)")
        }
        return result
    }
}
