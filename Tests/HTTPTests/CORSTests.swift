import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MingusCore
import MingusHTTP
import Testing

/// A router shaped like the gateway's: CORS (when on) before a key check that answers 401.
private func application(_ policy: CORSPolicy) -> some ApplicationProtocol {
    let router = Router()
    if policy.isEnabled {
        router.add(middleware: CORSPolicyMiddleware(policy: policy))
    }
    router.add(middleware: RequireKey())
    router.get("api/things") { _, _ in "things\n" }
    router.post("api/things") { _, _ in Response(status: .created) }
    return Application(router: router)
}

/// Answers 401 to a request without `Authorization`, like the gateway's API key check.
private struct RequireKey<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] != nil else { throw HTTPError(.unauthorized) }
        return try await next(request, context)
    }
}

private let app = "https://app.example.com"
private let policy = CORSPolicy(allowedOrigins: [app, "http://localhost:3000"], allowCredentials: true, maxAge: 900)

private func preflight(from origin: String, method: String = "POST") -> HTTPFields {
    [.origin: origin, .accessControlRequestMethod: method, .accessControlRequestHeaders: "authorization, content-type"]
}

/// The `Access-Control-*` headers of an answer.
private func corsHeaders(_ headers: HTTPFields) -> [String] {
    headers.map(\.name.canonicalName).filter { $0.hasPrefix("access-control-") }
}

@Suite("CORS")
struct CORSTests {
    @Test("a preflight from a listed origin is answered 204 with origin, methods, headers, max age and credentials, without a key")
    func preflightAllowed() async throws {
        try await application(policy).test(.router) { client in
            let response = try await client.execute(uri: "/api/things", method: .options, headers: preflight(from: app))
            #expect(response.status == .noContent)
            #expect(response.headers[.accessControlAllowOrigin] == app)
            #expect(response.headers[.accessControlAllowMethods] == "GET, POST, PUT, DELETE")
            #expect(response.headers[.accessControlAllowHeaders] == "Authorization, Content-Type, Idempotency-Key")
            #expect(response.headers[.accessControlMaxAge] == "900")
            #expect(response.headers[.accessControlAllowCredentials] == "true")
            #expect(response.headers[values: .vary].contains("Origin"))
            // A path without routes is answered the same: the preflight never reaches routing.
            let unknown = try await client.execute(uri: "/api/nowhere", method: .options, headers: preflight(from: "http://localhost:3000"))
            #expect(unknown.status == .noContent)
            #expect(unknown.headers[.accessControlAllowOrigin] == "http://localhost:3000")
        }
    }

    @Test("credentials are allowed only when configured")
    func credentialsOff() async throws {
        try await application(CORSPolicy(allowedOrigins: [app])).test(.router) { client in
            let response = try await client.execute(uri: "/api/things", method: .options, headers: preflight(from: app))
            #expect(response.status == .noContent)
            #expect(response.headers[.accessControlAllowOrigin] == app)
            #expect(response.headers[.accessControlAllowCredentials] == nil)
            #expect(response.headers[.accessControlMaxAge] == "600")
        }
    }

    @Test("a preflight from an unlisted origin is refused with 403 and no CORS header")
    func preflightRefused() async throws {
        try await application(policy).test(.router) { client in
            for origin in ["https://evil.example.com", "https://app.example.com.evil.example", "null", "http://app.example.com"] {
                let response = try await client.execute(uri: "/api/things", method: .options, headers: preflight(from: origin))
                #expect(response.status == .forbidden, "\(origin)")
                #expect(corsHeaders(response.headers).isEmpty, "\(origin): \(response.headers)")
            }
        }
    }

    @Test("answers to a listed origin carry the CORS headers, errors such as 401 included")
    func simpleRequestAllowed() async throws {
        try await application(policy).test(.router) { client in
            let ok = try await client.execute(uri: "/api/things", method: .get, headers: [.origin: app, .authorization: "Bearer k"])
            #expect(ok.status == .ok)
            #expect(ok.headers[.accessControlAllowOrigin] == app)
            #expect(ok.headers[.accessControlAllowCredentials] == "true")
            #expect(ok.headers[values: .vary].contains("Origin"))
            #expect(ok.headers[.accessControlAllowMethods] == nil)
            let denied = try await client.execute(uri: "/api/things", method: .post, headers: [.origin: "HTTPS://APP.example.com"])
            #expect(denied.status == .unauthorized)
            #expect(denied.headers[.accessControlAllowOrigin] == "HTTPS://APP.example.com")
            #expect(denied.headers[.accessControlAllowCredentials] == "true")
            let missing = try await client.execute(uri: "/api/nowhere", method: .get, headers: [.origin: app, .authorization: "Bearer k"])
            #expect(missing.status == .notFound)
            #expect(missing.headers[.accessControlAllowOrigin] == app)
        }
    }

    @Test("answers to an unlisted origin carry no CORS header, and neither do answers without an Origin")
    func simpleRequestRefused() async throws {
        try await application(policy).test(.router) { client in
            let ok = try await client.execute(uri: "/api/things", method: .get, headers: [.origin: "https://evil.example.com", .authorization: "Bearer k"])
            #expect(ok.status == .ok)
            #expect(corsHeaders(ok.headers).isEmpty, "\(ok.headers)")
            #expect(ok.headers[values: .vary].contains("Origin"))
            let denied = try await client.execute(uri: "/api/things", method: .get, headers: [.origin: "https://evil.example.com"])
            #expect(denied.status == .unauthorized)
            #expect(corsHeaders(denied.headers).isEmpty, "\(denied.headers)")
            let plain = try await client.execute(uri: "/api/things", method: .get, headers: [.authorization: "Bearer k"])
            #expect(plain.status == .ok)
            #expect(corsHeaders(plain.headers).isEmpty)
        }
    }

    @Test("CORS is off by default: no header at all, and a preflight goes to the key check like any request")
    func offByDefault() async throws {
        let configuration = try MingusConfiguration(environment: [:])
        let policy = CORSPolicy(configuration: configuration)
        #expect(!policy.isEnabled)
        #expect(policy == .disabled)
        try await application(policy).test(.router) { client in
            let response = try await client.execute(uri: "/api/things", method: .options, headers: preflight(from: app))
            #expect(response.status == .unauthorized)
            #expect(corsHeaders(response.headers).isEmpty)
            let ok = try await client.execute(uri: "/api/things", method: .get, headers: [.origin: app, .authorization: "Bearer k"])
            #expect(ok.status == .ok)
            #expect(corsHeaders(ok.headers).isEmpty)
            #expect(ok.headers[.vary] == nil)
        }
    }
}

@Suite("HTTP configuration")
struct HTTPConfigurationTests {
    @Test("MINGUS_CORS_* are read, with defaults for methods, headers, credentials and max age")
    func corsVariables() throws {
        let defaults = try MingusConfiguration(environment: ["MINGUS_CORS_ALLOWED_ORIGINS": " https://App.example.com , http://localhost:3000,"])
        #expect(defaults.corsAllowedOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(defaults.corsAllowedMethods == ["GET", "POST", "PUT", "DELETE"])
        #expect(defaults.corsAllowedHeaders == ["Authorization", "Content-Type", "Idempotency-Key"])
        #expect(defaults.corsAllowCredentials == false)
        #expect(defaults.corsMaxAge == 600)
        let set = try MingusConfiguration(environment: [
            "MINGUS_CORS_ALLOWED_ORIGINS": "https://app.example.com", "MINGUS_CORS_ALLOWED_METHODS": "get, patch",
            "MINGUS_CORS_ALLOWED_HEADERS": "Authorization, X-Request-Id", "MINGUS_CORS_ALLOW_CREDENTIALS": "true",
            "MINGUS_CORS_MAX_AGE": "0",
        ])
        #expect(set.corsAllowedMethods == ["GET", "PATCH"])
        #expect(set.corsAllowedHeaders == ["Authorization", "X-Request-Id"])
        #expect(set.corsAllowCredentials)
        #expect(set.corsMaxAge == 0)
    }

    @Test("an unusable MINGUS_CORS_* value is an error naming the variable")
    func corsErrors() {
        let cases: [(String, String)] = [
            ("MINGUS_CORS_ALLOWED_ORIGINS", "https://app.example.com/"),
            ("MINGUS_CORS_ALLOWED_ORIGINS", "*"),
            ("MINGUS_CORS_ALLOWED_ORIGINS", "app.example.com"),
            ("MINGUS_CORS_ALLOWED_METHODS", "GET, NOT A METHOD"),
            ("MINGUS_CORS_ALLOWED_HEADERS", "Authorization, Bad:Header"),
            ("MINGUS_CORS_ALLOW_CREDENTIALS", "maybe"),
            ("MINGUS_CORS_MAX_AGE", "-1"),
            ("MINGUS_CORS_MAX_AGE", "86401"),
        ]
        for (variable, value) in cases {
            let error = #expect(throws: ConfigurationError.self, "\(variable)=\(value)") {
                try MingusConfiguration(environment: [variable: value])
            }
            #expect(error?.variable == variable)
        }
    }

    @Test("MINGUS_TLS_CERT_FILE and MINGUS_TLS_KEY_FILE go together")
    func tlsBothOrNeither() throws {
        let neither = try MingusConfiguration(environment: [:])
        #expect(neither.tlsCertificateFile == nil && neither.tlsKeyFile == nil)
        let both = try MingusConfiguration(environment: ["MINGUS_TLS_CERT_FILE": "/tls/cert.pem", "MINGUS_TLS_KEY_FILE": "/tls/key.pem"])
        #expect(both.tlsCertificateFile == "/tls/cert.pem" && both.tlsKeyFile == "/tls/key.pem")
        let certificateOnly = #expect(throws: ConfigurationError.self) {
            try MingusConfiguration(environment: ["MINGUS_TLS_CERT_FILE": "/tls/cert.pem"])
        }
        #expect(certificateOnly?.variable == "MINGUS_TLS_KEY_FILE")
        #expect(certificateOnly?.description.contains("MINGUS_TLS_CERT_FILE") == true)
        let keyOnly = #expect(throws: ConfigurationError.self) {
            try MingusConfiguration(environment: ["MINGUS_TLS_KEY_FILE": "/tls/key.pem"])
        }
        #expect(keyOnly?.variable == "MINGUS_TLS_CERT_FILE")
    }
}
