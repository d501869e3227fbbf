import Foundation

/// A certificate authority made for one test with the `openssl` command line tool, in a
/// temporary folder: it issues server certificates for `localhost` and `127.0.0.1`.
struct LocalCertificateAuthority {
    /// The folder holding the CA's files and the certificates it issues.
    let folder: URL

    /// The CA certificate (PEM), the only root a test's client trusts.
    var certificateFile: URL { folder.appendingPathComponent("ca.pem") }
    private var keyFile: URL { folder.appendingPathComponent("ca.key") }

    /// Makes a new CA (EC P-256, valid two days).
    init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mingus-ca-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try await openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyFile.path, "-out", certificateFile.path, "-days", "2", "-subj", "/CN=Mingus Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    /// Issues a server certificate for `localhost` and `127.0.0.1` with `serial` (hex digits)
    /// into `certificateFile` (followed by the CA certificate, as a chain) and its key into
    /// `keyFile`, replacing both files at once.
    func issue(serial: String, commonName: String, certificateFile: URL, keyFile: URL) async throws {
        let base = folder.appendingPathComponent("issue-\(UUID().uuidString.prefix(8))")
        let extensions = base.appendingPathExtension("ext")
        try """
            subjectAltName=DNS:localhost,IP:127.0.0.1
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth
            """.write(to: extensions, atomically: true, encoding: .utf8)
        try await openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", base.appendingPathExtension("key").path, "-out", base.appendingPathExtension("csr").path,
            "-subj", "/CN=\(commonName)",
        ])
        try await openssl([
            "x509", "-req", "-in", base.appendingPathExtension("csr").path, "-CA", self.certificateFile.path, "-CAkey", self.keyFile.path,
            "-set_serial", "0x\(serial)", "-days", "2", "-extfile", extensions.path, "-out", base.appendingPathExtension("pem").path,
        ])
        let chain = try Data(contentsOf: base.appendingPathExtension("pem")) + Data(contentsOf: self.certificateFile)
        try chain.write(to: certificateFile, options: .atomic)
        try Data(contentsOf: base.appendingPathExtension("key")).write(to: keyFile, options: .atomic)
    }

    /// Deletes the folder.
    func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Runs `openssl` with `arguments` (standard input empty); returns what it wrote. Throws when it
/// exits non-zero.
@discardableResult
func openssl(_ arguments: [String]) async throws -> String {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("openssl-\(UUID().uuidString.prefix(8)).txt")
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    let handle = try FileHandle(forWritingTo: file)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = handle
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: file)
    if status != 0 {
        throw OpenSSLFailure(arguments: arguments, status: status, output: text)
    }
    return text
}

/// `openssl` exited with a failure.
struct OpenSSLFailure: Error, CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var output: String

    var description: String { "openssl \(arguments.joined(separator: " ")) exited \(status): \(output)" }
}
