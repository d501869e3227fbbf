import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MingusHTTP
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// An HTTPS client that trusts only `ca`'s certificate.
func httpsClient(trusting ca: LocalCertificateAuthority) throws -> HTTPClient {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca.certificateFile.path))
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(10))
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}

/// Status and body text of a GET.
func get(_ client: HTTPClient, _ url: String, headers: [(String, String)] = []) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
    var request = HTTPClientRequest(url: url)
    request.headers.add(contentsOf: headers)
    let response = try await client.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), response.headers, String(buffer: body))
}

/// A test's certificate and key files, issued by its own CA.
struct TLSFiles {
    let ca: LocalCertificateAuthority
    var certificateFile: URL { ca.folder.appendingPathComponent("server.pem") }
    var keyFile: URL { ca.folder.appendingPathComponent("server.key") }

    /// A new CA with a first server certificate, serial `1001`.
    static func make() async throws -> TLSFiles {
        let files = TLSFiles(ca: try await LocalCertificateAuthority())
        try await files.issue(serial: "1001")
        return files
    }

    /// Replaces the files with a new certificate and key, serial `serial`.
    func issue(serial: String) async throws {
        try await ca.issue(serial: serial, commonName: "localhost \(serial)", certificateFile: certificateFile, keyFile: keyFile)
    }

    /// The environment that turns HTTPS on for a Mingus process.
    var environment: [String: String] {
        ["MINGUS_TLS_CERT_FILE": certificateFile.path, "MINGUS_TLS_KEY_FILE": keyFile.path]
    }
}

@Suite("HTTPS")
struct TLSTests {
    @Test("a server with a certificate answers HTTPS to a client trusting the CA, refuses plain HTTP and TLS 1.1, and reloads for new connections")
    func serveAndReload() async throws {
        let files = try await TLSFiles.make()
        defer { files.ca.remove() }
        let certificate = try ServerCertificate(certificateFile: files.certificateFile.path, keyFile: files.keyFile.path)
        #expect(certificate.pair.serial == "1001")
        #expect(certificate.pair.chain.count == 2)
        let reloader = ServerCertificateReloader(certificate: certificate, logger: Logger(label: "test"))
        let router = Router()
        router.get("hello") { _, _ in "hello\n" }
        let application = Application(router: router, server: try certificate.serverBuilder(),
                                      configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let client = try httpsClient(trusting: files.ca)
        do {
            try await application.test(.ahc(.https)) { testClient in
                let port = try #require(testClient.port)
                let answer = try await get(client, "https://127.0.0.1:\(port)/hello")
                #expect(answer.status == 200)
                #expect(answer.body == "hello\n")
                #expect(try await get(client, "https://localhost:\(port)/hello").status == 200)

                await #expect(throws: (any Error).self, "plain HTTP to the HTTPS port") {
                    try await get(client, "http://127.0.0.1:\(port)/hello")
                }
                // TLS 1.2 and 1.3 are accepted, TLS 1.1 is not.
                #expect(try await tlsHandshake(port: port, trusting: files.ca).version == .tlsv13)
                #expect(try await tlsHandshake(port: port, trusting: files.ca, maximumVersion: .tlsv12).version == .tlsv12)
                let refused = await #expect(throws: NIOSSLError.self, "a client offering TLS 1.1 at most") {
                    try await tlsHandshake(port: port, trusting: files.ca, maximumVersion: .tlsv11)
                }
                #expect("\(refused.map { "\($0)" } ?? "")".contains("PROTOCOL_VERSION"), "\(String(describing: refused))")
                #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1001")

                // New files, then what SIGHUP does: new connections get the new certificate.
                try await files.issue(serial: "1002")
                reloader.reload()
                #expect(certificate.pair.serial == "1002")
                #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")
                let fresh = try httpsClient(trusting: files.ca)
                #expect(try await get(fresh, "https://127.0.0.1:\(port)/hello").status == 200)
                try await fresh.shutdown()

                // A file that cannot be used is refused and the pair in use kept.
                try Data("not a key".utf8).write(to: files.keyFile)
                #expect(throws: TLSFileError.self) { try certificate.reload() }
                reloader.reload()
                #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")
                // So is a key that belongs to another certificate.
                let other = try await TLSFiles.make()
                defer { other.ca.remove() }
                try FileManager.default.removeItem(at: files.keyFile)
                try FileManager.default.copyItem(at: other.keyFile, to: files.keyFile)
                let mismatch = #expect(throws: TLSFileError.self) { try certificate.reload() }
                #expect(mismatch?.file == files.keyFile.path)
                #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")
                #expect(try await get(client, "https://127.0.0.1:\(port)/hello").status == 200)
            }
        } catch {
            Issue.record(error)
        }
        try await client.shutdown()
    }

    @Test("a file that cannot be used at start is an error naming it")
    func badFilesAtStart() async throws {
        let files = try await TLSFiles.make()
        defer { files.ca.remove() }
        let missing = files.ca.folder.appendingPathComponent("missing.pem").path
        let noFile = #expect(throws: TLSFileError.self) {
            try ServerCertificate(certificateFile: missing, keyFile: files.keyFile.path)
        }
        #expect(noFile?.file == missing)
        #expect(noFile?.description.contains(missing) == true)

        let garbage = files.ca.folder.appendingPathComponent("garbage.pem")
        try Data("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".utf8).write(to: garbage)
        let notPEM = #expect(throws: TLSFileError.self) {
            try ServerCertificate(certificateFile: garbage.path, keyFile: files.keyFile.path)
        }
        #expect(notPEM?.file == garbage.path)

        let notKey = #expect(throws: TLSFileError.self) {
            try ServerCertificate(certificateFile: files.certificateFile.path, keyFile: files.certificateFile.path)
        }
        #expect(notKey?.file == files.certificateFile.path)
    }

    @Test("several SIGHUP watchers in one process each get the signal", .timeLimit(.minutes(1)))
    func sighupWatchersCoexist() async throws {
        // Both sequences are registered (their initialisers wait for it) before the signal is
        // sent, so Dispatch's handler is installed and SIGHUP cannot end the test process.
        let first = await UnixSignalsSequence(trapping: .sighup)
        let second = await UnixSignalsSequence(trapping: .sighup)
        kill(getpid(), SIGHUP)
        var firstIterator = first.makeAsyncIterator()
        var secondIterator = second.makeAsyncIterator()
        #expect(await firstIterator.next() == .sighup)
        #expect(await secondIterator.next() == .sighup)
    }
}
