import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MingusDashboard
import MingusHTTP
import MingusPostgres
import MingusSecurity
import NIOCore
import Synchronization
import TestSupport

/// A clock the tests move.
final class TestClock: Sendable {
    private let value: Mutex<Date>
    init(_ start: Date = Date()) { value = Mutex(start) }
    var now: Date { value.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A database of its own (migrated, with a `dashboard-totp` key), and the gateway's API key check,
/// audit and dashboard routes on a router served over a real socket.
final class DashboardHarness: Sendable {
    let databaseName: String
    let databaseURL: String
    let keyPath: URL
    let database: PostgresClient
    let kek: KeyEncryptingKey
    let keys: KeyringCache
    let audit: AuditBatcher
    let clock: TestClock

    /// Cheap scrypt parameters for the many users the tests make (one test uses the real ones).
    static let fastHashing = PasswordHash.Parameters(n: 1 << 10, r: 8, p: 1)

    private init(databaseName: String, databaseURL: String, keyPath: URL, database: PostgresClient, kek: KeyEncryptingKey, clock: TestClock) {
        self.databaseName = databaseName
        self.databaseURL = databaseURL
        self.keyPath = keyPath
        self.database = database
        self.kek = kek
        self.keys = KeyringCache(kek: kek, database: database)
        self.audit = AuditBatcher(database: database, component: "gateway", logger: Logger(label: "dashboard-test"))
        self.clock = clock
    }

    static func start(clock: TestClock = TestClock()) async throws -> DashboardHarness {
        let (name, url) = try await TestEnvironment.createDatabase()
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 4))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let keyPath = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("keys")).appendingPathComponent("financial.key")
        let kek = try KeyEncryptingKey.create(at: keyPath)
        try await Keyring.rotate(.dashboardTOTP, kek: kek, database: database)
        return DashboardHarness(databaseName: name, databaseURL: url, keyPath: keyPath, database: database, kek: kek, clock: clock)
    }

    func stop() async throws {
        await database.shutdown()
        try await TestEnvironment.dropDatabase(databaseName)
    }

    /// Runs `body` with the harness, stopping it afterwards whatever happens.
    static func with(clock: TestClock = TestClock(), _ body: (DashboardHarness) async throws -> Void) async throws {
        let harness = try await start(clock: clock)
        do {
            try await body(harness)
        } catch {
            try? await harness.stop()
            throw error
        }
        try await harness.stop()
    }

    var policy: DashboardPolicy {
        var policy = DashboardPolicy()
        let clock = self.clock
        policy.clock = { clock.now }
        return policy
    }

    func application(figuresLifetime: Duration = .seconds(1)) -> some ApplicationProtocol {
        let logger = Logger(label: "dashboard-test")
        var policy = self.policy
        policy.figuresLifetime = figuresLifetime
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: APIAccessMiddleware(database: database, keyCacheLifetime: .zero, audit: audit, logger: logger))
        let authenticator = DashboardAuthenticator(database: database, keys: keys, audit: audit, policy: policy, logger: logger)
        DashboardRoutes(database: database, authenticator: authenticator).mount(on: router)
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    struct Account {
        var username: String
        var password: String
        var secret: [UInt8]
        var recoveryCodes: [String]
    }

    func createUser(_ username: String = TestEnvironment.uniqueName("user").lowercased(), roles: Set<Role> = [Role("compliance:read")]) async throws -> Account {
        let password = "correct horse battery staple"
        let keyring = try await Keyring.load(kek: kek, database: database)
        let (_, enrollment) = try await DashboardUsers(database: database).create(
            username: username, roles: roles, password: password, keyring: keyring, createdBy: "operator:test@host", parameters: Self.fastHashing)
        return Account(username: username, password: password, secret: Base32.decode(enrollment.totpSecret)!, recoveryCodes: enrollment.recoveryCodes)
    }

    func code(_ account: Account) -> String {
        TOTP(secret: account.secret).code(at: clock.now)
    }

    /// Audit events of `action`, oldest first: (actor, outcome, details as text).
    func auditEvents(_ action: String) async throws -> [(actor: String, outcome: String, details: String)] {
        try await database.query("""
            SELECT actor, outcome, details::text FROM audit_events WHERE action = \(action) ORDER BY occurred_at, stream, seq
            """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(String.self, at: 2)) }
    }
}

/// A form body.
func form(_ fields: [String: String]) -> ByteBuffer {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    let text = fields.sorted { $0.key < $1.key }
        .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
    return ByteBuffer(string: text)
}

let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

extension TestClientProtocol {
    /// Signs in; returns the response.
    func signIn(_ username: String, _ password: String, _ code: String, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = formHeaders
        headers.append(contentsOf: extra)
        return try await execute(uri: "/dashboard/login", method: .post, headers: headers,
                                 body: form(["username": username, "password": password, "code": code]))
    }

    func get(_ uri: String, cookie: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = extra
        if let cookie { headers[.cookie] = "\(DashboardRoutes.cookieName)=\(cookie)" }
        return try await execute(uri: uri, method: .get, headers: headers)
    }
}

/// The session token of a sign-in answer's `Set-Cookie`.
func sessionToken(_ response: TestResponse) -> String? {
    guard let header = response.headers[.setCookie], header.hasPrefix("\(DashboardRoutes.cookieName)=") else { return nil }
    let value = header.dropFirst(DashboardRoutes.cookieName.count + 1).prefix { $0 != ";" }
    return value.isEmpty ? nil : String(value)
}

/// The `csrf_token` hidden field of a page.
func csrfToken(_ html: String) -> String? {
    guard let range = html.range(of: #"name="csrf_token" value=""#) else { return nil }
    return String(html[range.upperBound...].prefix { $0 != "\"" })
}
