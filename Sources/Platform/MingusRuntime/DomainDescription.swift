public import Hummingbird
public import Logging
public import MingusCore
public import MingusHTTP
public import MingusPostgres
public import MingusSecurity

/// What the gateway shares with every domain's routes.
public struct GatewayServices: Sendable {
    /// The gateway's connection pool.
    public var database: PostgresClient
    /// Publishes jobs with confirms (503 when the broker cannot take them).
    public var publisher: JobPublisher
    /// The data keys, for sealing what crosses the broker and opening what is read back.
    public var keys: KeyringCache
    /// `Idempotency-Key` handling for routes that create things.
    public var idempotency: IdempotencyStore
    /// The gateway's audit events, committed in batches (run it as one of the gateway's services).
    public var audit: AuditBatcher
    public var logger: Logger

    public init(database: PostgresClient, publisher: JobPublisher, keys: KeyringCache, idempotency: IdempotencyStore,
                audit: AuditBatcher, logger: Logger) {
        self.database = database
        self.publisher = publisher
        self.keys = keys
        self.idempotency = idempotency
        self.audit = audit
        self.logger = logger
    }
}

/// One business domain as the platform sees it: the roles its routes check, the data key
/// purposes it seals with, the queues its worker consumes, its providers of a data subject's
/// data, and its HTTP routes.
///
/// The gateway mounts the routes of every domain in its list; `mingusctl` reads the same list to
/// declare the topology, create the data keys and check role names.
public struct DomainDescription: Sendable {
    /// Mounts a domain's routes on the gateway's router.
    public typealias Mount = @Sendable (Router<APIRequestContext>, GatewayServices) -> Void

    /// A short name (`payments`).
    public var name: String
    public var roles: [Role]
    public var keyPurposes: [KeyPurpose]
    /// The queues of the domain's worker (its own and any extra ones).
    public var queues: [WorkerQueues]
    /// The domain's providers of a data subject's data, for GDPR access and portability exports.
    public var subjectData: [any SubjectDataProvider]
    /// The tables the domain owns, each column classified (``DataInventory``).
    public var dataInventory: [DataTable]
    public var mount: Mount

    public init(name: String, roles: [Role], keyPurposes: [KeyPurpose] = [], queues: [WorkerQueues],
                subjectData: [any SubjectDataProvider] = [], dataInventory: [DataTable] = [], mount: @escaping Mount) {
        self.name = name
        self.roles = roles
        self.keyPurposes = keyPurposes
        self.queues = queues
        self.subjectData = subjectData
        self.dataInventory = dataInventory
        self.mount = mount
    }
}
