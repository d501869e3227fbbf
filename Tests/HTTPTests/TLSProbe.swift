import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// What one TLS handshake with a server gave.
struct Handshake {
    var version: TLSVersion?
    /// The serial number of the server's certificate, upper-case hex as `openssl x509 -serial`
    /// prints it.
    var serial: String
}

/// Opens a new connection to `127.0.0.1:port`, completes a TLS handshake for `localhost`
/// trusting only `ca`, offering TLS versions up to `maximumVersion`, and closes it. Throws the
/// handshake's error when the server refuses.
func tlsHandshake(port: Int, trusting ca: LocalCertificateAuthority, maximumVersion: TLSVersion? = nil) async throws -> Handshake {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca.certificateFile.path))
    if let maximumVersion {
        configuration.minimumTLSVersion = .tlsv1
        configuration.maximumTLSVersion = maximumVersion
    }
    let context = try NIOSSLContext(configuration: configuration)
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let handshake = loop.makePromise(of: Void.self)
    let channel = try await ClientBootstrap(group: loop)
        .connectTimeout(.seconds(10))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                try channel.pipeline.syncOperations.addHandler(HandshakeObserver(done: handshake))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    do {
        try await handshake.futureResult.get()
        let version = try await channel.nioSSL_tlsVersion().get()
        let certificate = try await channel.nioSSL_peerCertificate().get()
        try? await channel.close()
        let serial = (certificate?.serialNumber ?? []).drop { $0 == 0 }.map { String(format: "%02X", $0) }.joined()
        return Handshake(version: version, serial: serial)
    } catch {
        try? await channel.close()
        throw error
    }
}

/// Completes `done` when the TLS handshake completes, fails it when the connection fails first.
private final class HandshakeObserver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let done: EventLoopPromise<Void>
    private var completed = false

    init(done: EventLoopPromise<Void>) {
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, !completed {
            completed = true
            done.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !completed {
            completed = true
            done.fail(error)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !completed {
            completed = true
            done.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }
}
