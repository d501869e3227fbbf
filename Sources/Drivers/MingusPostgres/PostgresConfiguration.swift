/// How to reach PostgreSQL and how many connections a `PostgresClient` may open.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string: a `postgresql://` URL or `key=value` pairs.
    ///
    /// libpq itself handles every `PG*` environment variable, `sslmode` and the other standard
    /// parameters; an empty string means "all from the environment". Settings in the URL take
    /// precedence over `applicationName` and `connectTimeout`.
    public var url: String

    /// The most connections a `PostgresClient` opens at once.
    public var poolSize: Int

    /// The `application_name` the server shows in `pg_stat_activity`.
    public var applicationName: String

    /// How long to wait for a connection to be established (libpq `connect_timeout`, whole seconds).
    public var connectTimeout: Duration

    /// Creates a configuration from a connection URL and optional tuning.
    public init(
        url: String,
        poolSize: Int = 10,
        applicationName: String = "mingus",
        connectTimeout: Duration = .seconds(10)
    ) {
        self.url = url
        self.poolSize = poolSize
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
    }

    /// Whether `url` looks like a connection string at all. libpq would take anything else as a
    /// bare database name and quietly try the local socket, hiding a misconfiguration.
    var hasValidURLShape: Bool {
        url.isEmpty || url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") || url.contains("=")
    }

    /// The keyword/value pairs for `PQconnectdbParams` with `expand_dbname = 1`.
    ///
    /// libpq lets later entries override earlier ones, and the expanded URL sits where `dbname`
    /// is: so the URL overrides our defaults, and `client_encoding` (which decoding relies on)
    /// overrides the URL.
    var connectionParameters: [(keyword: String, value: String)] {
        let (seconds, attoseconds) = connectTimeout.components
        let wholeSeconds = max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))  // rounded up
        return [
            ("application_name", applicationName),
            ("connect_timeout", String(wholeSeconds)),
            ("dbname", url),
            ("client_encoding", "UTF8"),
        ]
    }
}
