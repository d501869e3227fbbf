import AsyncHTTPClient
import Foundation
import MingusPostgres
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Sends `method` to `url` with `headers`; status, headers and body text.
private func send(_ client: HTTPClient, _ url: String, method: HTTPMethod, headers: [(String, String)] = [])
    async throws -> (status: Int, headers: HTTPHeaders, body: String) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    request.headers.add(contentsOf: headers)
    let response = try await client.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), response.headers, String(buffer: body))
}

@Suite("HTTPS and CORS in the processes")
struct ProcessTLSTests {
    @Test("a worker's health server answers HTTPS only, reloads its certificate on SIGHUP and keeps it when the new one is bad")
    func workerHealthServer() async throws {
        let files = try await TLSFiles.make()
        defer { files.ca.remove() }
        let worker = try await TestWorker.make("tls")
        let process = try worker.start(files.environment)
        let client = try httpsClient(trusting: files.ca)
        do {
            let port = try #require(try await loggedPort(process, message: "health and metrics server listening"), "\(process.output)")
            #expect(process.output.contains(#""mingus.http.scheme":"https""#))
            let health = try await get(client, "https://127.0.0.1:\(port)/healthz")
            #expect(health.status == 200)
            #expect(health.body == "ok\n")
            #expect(try await eventually { try await get(client, "https://127.0.0.1:\(port)/readyz").status == 200 })
            await #expect(throws: (any Error).self, "plain HTTP to the HTTPS port") {
                try await get(client, "http://127.0.0.1:\(port)/healthz")
            }
            #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1001")

            #expect(try await eventually { process.output.contains("TLS certificate reloads on SIGHUP") })
            try await files.issue(serial: "1002")
            process.signal(SIGHUP)
            #expect(try await eventually { process.output.contains("TLS certificate reloaded") }, "\(process.output.suffix(3000))")
            #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")

            try Data("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n".utf8).write(to: files.keyFile)
            process.signal(SIGHUP)
            #expect(try await eventually { process.output.contains("TLS certificate reload failed; keeping the previous one") })
            #expect(process.output.contains("TLS file \(files.keyFile.path) holds no readable"))
            #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")
            #expect(try await get(client, "https://127.0.0.1:\(port)/healthz").status == 200)
        } catch {
            Issue.record("\(error)\n\(process.output.suffix(3000))")
        }
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(40)) == 0, "\(process.output.suffix(3000))")
        try await client.shutdown()
        await worker.cleanUp()
    }

    @Test("SIGHUP does not stop a worker that has nothing to reload; SIGTERM still does, with status 0")
    func hangupWithNothingToReload() async throws {
        let worker = try await TestWorker.make("hup")
        let process = try worker.start([:])
        do {
            let port = try #require(try await loggedPort(process, message: "health and metrics server listening"), "\(process.output)")
            process.signal(SIGHUP)
            #expect(try await eventually { process.output.contains("SIGHUP received") }, "\(process.output.suffix(3000))")
            #expect(try await httpRequest("http://127.0.0.1:\(port)/healthz").status == 200)
        } catch {
            Issue.record("\(error)\n\(process.output.suffix(3000))")
        }
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(40)) == 0, "\(process.output.suffix(3000))")
        await worker.cleanUp()
    }

    @Test("a worker or gateway whose TLS file cannot be used stops at start, status 78, with a message naming the file")
    func badFileAtStart() async throws {
        let files = try await TLSFiles.make()
        defer { files.ca.remove() }
        let missing = files.ca.folder.appendingPathComponent("nowhere.key").path
        let worker = try await TestWorker.make("tls")
        let process = try worker.start(["MINGUS_TLS_CERT_FILE": files.certificateFile.path, "MINGUS_TLS_KEY_FILE": missing])
        #expect(try await process.wait(timeout: .seconds(60)) == 78, "\(process.output.suffix(3000))")
        let output = process.output
        #expect(output.contains("cannot start: the configuration must be fixed"), "\(output.suffix(3000))")
        #expect(output.contains("TLS file \(missing) cannot be read"), "\(output.suffix(3000))")
        await worker.cleanUp()

        let gateway = try WorkerProcess("mingus-gateway", environment: [
            "MINGUS_HTTP_PORT": "0", "MINGUS_TLS_CERT_FILE": files.keyFile.path, "MINGUS_TLS_KEY_FILE": files.keyFile.path,
        ])
        #expect(try await gateway.wait(timeout: .seconds(60)) == 78, "\(gateway.output.suffix(3000))")
        #expect(gateway.output.contains("TLS file \(files.keyFile.path) holds no readable PEM certificate"),
                "\(gateway.output.suffix(3000))")
        let halfSet = try WorkerProcess("mingus-gateway", environment: ["MINGUS_HTTP_PORT": "0", "MINGUS_TLS_CERT_FILE": files.certificateFile.path])
        #expect(try await halfSet.wait(timeout: .seconds(60)) == 78, "\(halfSet.output.suffix(3000))")
        #expect(halfSet.output.contains("MINGUS_TLS_KEY_FILE must be set together with MINGUS_TLS_CERT_FILE"), "\(halfSet.output.suffix(3000))")
    }

    @Test("the gateway over HTTPS with CORS: preflights answered without a key and not audited, 401s carry the headers, SIGHUP reloads")
    func gateway() async throws {
        let files = try await TLSFiles.make()
        defer { files.ca.remove() }
        let app = "https://app.example.com"
        var environment = files.environment
        environment["MINGUS_CORS_ALLOWED_ORIGINS"] = "\(app), http://localhost:3000"
        environment["MINGUS_CORS_ALLOW_CREDENTIALS"] = "true"
        environment["MINGUS_CORS_MAX_AGE"] = "120"
        let cluster = try await Cluster.start(environment: environment, waitUntilReady: false)
        let base = cluster.base.replacingOccurrences(of: "http://", with: "https://")
        let port = try #require(URLComponents(string: base)?.port)
        let client = try httpsClient(trusting: files.ca)
        do {
            #expect(try await eventually(timeout: .seconds(60)) { (try? await get(client, base + "/readyz").status) == 200 })
            await #expect(throws: (any Error).self, "plain HTTP to the HTTPS port") {
                try await get(client, cluster.base + "/healthz")
            }

            let preflight = try await send(client, base + "/api/financial/payment", method: .OPTIONS, headers: [
                ("Origin", app), ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key"),
            ])
            #expect(preflight.status == 204)
            #expect(preflight.headers["Access-Control-Allow-Origin"] == [app])
            #expect(preflight.headers["Access-Control-Allow-Methods"] == ["GET, POST, PUT, DELETE"])
            #expect(preflight.headers["Access-Control-Allow-Headers"] == ["Authorization, Content-Type, Idempotency-Key"])
            #expect(preflight.headers["Access-Control-Max-Age"] == ["120"])
            #expect(preflight.headers["Access-Control-Allow-Credentials"] == ["true"])

            let refusedPreflight = try await send(client, base + "/api/financial/payment", method: .OPTIONS, headers: [
                ("Origin", "https://evil.example.com"), ("Access-Control-Request-Method", "POST"),
            ])
            #expect(refusedPreflight.status == 403)
            #expect(!refusedPreflight.headers.contains { $0.name.lowercased().hasPrefix("access-control-") })

            let unauthorized = try await get(client, base + "/api/financial/audit", headers: [("Origin", app)])
            #expect(unauthorized.status == 401)
            #expect(unauthorized.body.contains("unauthorized"))
            #expect(unauthorized.headers["Access-Control-Allow-Origin"] == [app])
            #expect(unauthorized.headers["Access-Control-Allow-Credentials"] == ["true"])
            #expect(unauthorized.headers["Vary"].contains("Origin"))
            let refused = try await get(client, base + "/api/financial/audit", headers: [("Origin", "https://evil.example.com")])
            #expect(refused.status == 401)
            #expect(!refused.headers.contains { $0.name.lowercased().hasPrefix("access-control-") })

            // The two 401s are audited; the preflights are not.
            let actions = try await cluster.database.query("SELECT action, outcome FROM audit_events WHERE resource LIKE '/api/%'")
                .map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
            #expect(actions.filter { $0.0 == "http.get" && $0.1 == "denied" }.count == 2, "\(actions)")
            #expect(!actions.contains { $0.0 == "http.options" }, "\(actions)")

            #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1001")
            #expect(try await eventually { cluster.gateway.output.contains("TLS certificate reloads on SIGHUP") })
            try await files.issue(serial: "1002")
            cluster.gateway.signal(SIGHUP)
            #expect(try await eventually { cluster.gateway.output.contains("TLS certificate reloaded") })
            #expect(try await tlsHandshake(port: port, trusting: files.ca).serial == "1002")
            #expect(try await get(client, base + "/healthz").status == 200)
        } catch {
            Issue.record("\(error)\n\(cluster.output)")
        }
        try await client.shutdown()
        let codes = try await cluster.stop()
        #expect(codes.allSatisfy { $0 == 0 }, "exit codes \(codes)")
    }
}
