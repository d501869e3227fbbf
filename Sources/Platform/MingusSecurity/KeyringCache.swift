public import MingusPostgres

/// A process's data keys: loaded once, reloaded when older than `maxAge` (so a rotation reaches
/// running processes) or when a sealed value names a version this process has not seen yet.
public actor KeyringCache {
    private let kek: KeyEncryptingKey
    private let database: PostgresClient
    private let maxAge: Duration
    private var keyring: Keyring?
    private var loadedAt = ContinuousClock.now

    public init(kek: KeyEncryptingKey, database: PostgresClient, maxAge: Duration = .seconds(60)) {
        self.kek = kek
        self.database = database
        self.maxAge = maxAge
    }

    /// The key-encrypting key the data keys are wrapped with (it also wraps per-subject keys).
    public nonisolated var keyEncryptingKey: KeyEncryptingKey { kek }

    /// The keyring, reloaded first when stale.
    public func current() async throws -> Keyring {
        if let keyring, ContinuousClock.now - loadedAt < maxAge { return keyring }
        return try await reload()
    }

    /// The keyring, reloaded first when it lacks `version` of `purpose`.
    public func current(having version: Int, of purpose: KeyPurpose) async throws -> Keyring {
        let keyring = try await current()
        if keyring.versions(purpose).contains(version) { return keyring }
        return try await reload()
    }

    /// Reads every data key again.
    @discardableResult
    public func reload() async throws -> Keyring {
        let fresh = try await Keyring.load(kek: kek, database: database)
        keyring = fresh
        loadedAt = .now
        return fresh
    }
}
