/// How to reach PostgreSQL and how many connections a `PostgresClient` may open.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string: a `postgresql://` URL or `key=value` pairs.
    ///
    /// libpq itself handles every `PG*` environment variable, `sslmode` and the other standard
    /// parameters. Settings in the URL take precedence over `applicationName` and `connectTimeout`.
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

    /// The keyword/value pairs for `PQconnectdbParams` with `expand_dbname = 1`.
    ///
    /// libpq lets later entries override earlier ones, and the expanded URL sits where `dbname`
    /// is: so the URL overrides our defaults, and `client_encoding` (which decoding relies on)
    /// overrides the URL.
    var connectionParameters: [(keyword: String, value: String)] {
        let seconds = max(1, Int(connectTimeout.components.seconds) + (connectTimeout.components.attoseconds > 0 ? 1 : 0))
        return [
            ("application_name", applicationName),
            ("connect_timeout", String(seconds)),
            ("dbname", url),
            ("client_encoding", "UTF8"),
        ]
    }
}
