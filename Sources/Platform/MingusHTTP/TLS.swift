import Foundation
public import HummingbirdCore
import HummingbirdTLS
public import Logging
public import MingusCore
import NIOCore
public import NIOSSL
public import ServiceLifecycle
import Synchronization
import UnixSignals

/// The certificate chain and private key an HTTPS server presents, read from two PEM files and
/// replaced as a whole by ``reload()``.
///
/// Servers built with ``serverBuilder()`` ask it for the pair on every new connection (through
/// swift-nio-ssl's per-handshake context callback), so a reload takes effect for the next
/// connection while established ones keep the pair they started with. A pair that cannot be
/// used — a file unreadable, not PEM, a key that does not match the certificate — is an error
/// naming the file, and a failed reload keeps the pair in use.
public final class ServerCertificate: Sendable {
    /// What one successful read of the files gave.
    public struct Pair: Sendable {
        /// Leaf first, then any intermediates, as in the file.
        public var chain: [NIOSSLCertificate]
        public var privateKey: NIOSSLPrivateKey

        /// The leaf certificate's serial number in upper-case hex (as `openssl x509 -serial`
        /// prints it), for logs.
        public var serial: String {
            let bytes = chain.first?.serialNumber.drop { $0 == 0 } ?? []
            return bytes.isEmpty ? "00" : bytes.map { String(format: "%02X", $0) }.joined()
        }
    }

    /// The PEM file with the certificate chain (leaf first).
    public let certificateFile: String
    /// The PEM file with the private key (not encrypted).
    public let keyFile: String
    private let current: Mutex<Pair>

    /// Reads both files; throws ``TLSFileError`` naming the file that cannot be used.
    public init(certificateFile: String, keyFile: String) throws {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        current = Mutex(try Self.read(certificateFile: certificateFile, keyFile: keyFile))
    }

    /// The certificate named by `MINGUS_TLS_CERT_FILE` and `MINGUS_TLS_KEY_FILE`, or nil when
    /// they are unset (plain HTTP).
    public convenience init?(configuration: MingusConfiguration) throws {
        guard let certificateFile = configuration.tlsCertificateFile, let keyFile = configuration.tlsKeyFile else { return nil }
        try self.init(certificateFile: certificateFile, keyFile: keyFile)
    }

    /// The pair new connections get.
    public var pair: Pair { current.withLock { $0 } }

    /// Reads the files again and, when they hold a usable pair, makes it the one new connections
    /// get; otherwise throws ``TLSFileError`` and keeps the pair in use. Returns the new pair.
    @discardableResult
    public func reload() throws -> Pair {
        let pair = try Self.read(certificateFile: certificateFile, keyFile: keyFile)
        current.withLock { $0 = pair }
        return pair
    }

    /// The server side TLS settings: TLS 1.2 or later, and the chain and key looked up for each
    /// handshake.
    public func tlsConfiguration() -> TLSConfiguration {
        let pair = self.pair
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: pair.chain.map { .certificate($0) }, privateKey: .privateKey(pair.privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let pair = self.pair
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain.map { .certificate($0) }
            override.privateKey = .privateKey(pair.privateKey)
            promise.succeed(override)
        }
        return configuration
    }

    /// HTTP/1.1 over TLS with this certificate, for `Application(router:server:)`.
    public func serverBuilder() throws -> HTTPServerBuilder {
        try .tls(.http1(), tlsConfiguration: tlsConfiguration())
    }

    private static func read(certificateFile: String, keyFile: String) throws -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(try bytes(of: certificateFile))
        } catch let error as TLSFileError {
            throw error
        } catch {
            throw TLSFileError(file: certificateFile, message: "holds no readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw TLSFileError(file: certificateFile, message: "holds no PEM certificate") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: try bytes(of: keyFile), format: .pem)
        } catch let error as TLSFileError {
            throw error
        } catch {
            throw TLSFileError(file: keyFile, message: "holds no readable, unencrypted PEM private key (\(error))")
        }
        // Building a context checks that the key belongs to the leaf certificate.
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey)))
        } catch {
            throw TLSFileError(file: keyFile, message: "does not hold the private key of the certificate in \(certificateFile) (\(error))")
        }
        return Pair(chain: chain, privateKey: privateKey)
    }

    private static func bytes(of file: String) throws -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw TLSFileError(file: file, message: "cannot be read (\((error as NSError).localizedDescription))")
        }
    }
}

/// A certificate or key file that cannot be used, and why.
public struct TLSFileError: ConfigurationProblem {
    /// The file's path as configured.
    public var file: String
    public var message: String

    public var description: String { "TLS file \(file) \(message)" }
}

/// Reads a ``ServerCertificate``'s files again on every SIGHUP: a usable pair is logged and
/// used for new connections; an unusable one is logged as an error and the old pair kept.
///
/// Other SIGHUP watchers of the same process (the alerts worker's routing file) each get every
/// signal too: Dispatch, which `UnixSignalsSequence` uses, hands a signal to every source
/// registered for it.
public struct ServerCertificateReloader: Service {
    let certificate: ServerCertificate
    let logger: Logger

    /// A reloader of `certificate` that logs to `logger`.
    public init(certificate: ServerCertificate, logger: Logger) {
        self.certificate = certificate
        self.logger = logger
    }

    /// Watches SIGHUP until a graceful shutdown.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        logger.info("TLS certificate reloads on SIGHUP", metadata: [
            "mingus.tls.cert_file": "\(certificate.certificateFile)", "mingus.tls.serial": "\(certificate.pair.serial)",
        ])
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// Reloads once and logs the outcome; what a SIGHUP does.
    public func reload() {
        do {
            let pair = try certificate.reload()
            logger.info("TLS certificate reloaded", metadata: [
                "mingus.tls.cert_file": "\(certificate.certificateFile)", "mingus.tls.serial": "\(pair.serial)",
            ])
        } catch {
            logger.error("TLS certificate reload failed; keeping the previous one", metadata: [
                "mingus.tls.cert_file": "\(certificate.certificateFile)", "mingus.error": "\(error)",
                "mingus.tls.serial": "\(certificate.pair.serial)",
            ])
        }
    }
}

/// Plain HTTP/1.1 when `certificate` is nil, else HTTP/1.1 over TLS with it.
public func httpServerBuilder(certificate: ServerCertificate?) throws -> HTTPServerBuilder {
    try certificate?.serverBuilder() ?? .http1()
}
