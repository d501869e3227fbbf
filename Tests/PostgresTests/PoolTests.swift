import Foundation
@testable import MingusPostgres
import TestSupport
import Testing

/// Counts the leases in progress and the backends they used.
private actor LeaseTracker {
    private(set) var current = 0
    private(set) var peak = 0
    private(set) var backends: Set<Int32> = []

    func enter(backend: Int32) {
        current += 1
        peak = max(peak, current)
        backends.insert(backend)
    }

    func leave() {
        current -= 1
    }
}

@Suite("Connection pool")
struct PoolTests {
    @Test func twentyLeasesShareTwoConnections() async throws {
        try await TestDatabase.withClient(poolSize: 2) { client in
            let tracker = LeaseTracker()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await client.withConnection { connection in
                            let rows = try await connection.query("SELECT pg_backend_pid()")
                            await tracker.enter(backend: try rows[0].decode(Int32.self, at: 0))
                            try await connection.execute("SELECT pg_sleep(0.05)")
                            await tracker.leave()
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(await tracker.peak == 2)
            #expect(await tracker.backends.count == 2)
            #expect(await tracker.current == 0)
        }
    }

    @Test func cancelledWaiterLeavesTheQueue() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
            let (leased, leasedContinuation) = AsyncStream.makeStream(of: Void.self)
            let holder = Task {
                try await client.withConnection { _ in
                    leasedContinuation.yield()
                    for await _ in release { break }
                }
            }
            for await _ in leased { break }

            let waiter = Task { try await client.withConnection { _ in "should not get here" } }
            // Cancelled only once it is queued, so that cancelling is what takes it out.
            #expect(try await eventually { client.waitingCount == 1 })
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            #expect(client.waitingCount == 0)

            releaseContinuation.yield()
            try await holder.value
            let value = try await client.withConnection { connection in
                try await connection.query("SELECT 42")[0].decode(Int.self, at: 0)
            }
            #expect(value == 42)
        }
    }

    @Test func killedConnectionsAreDroppedAndReplaced() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let killer = try await PostgresConnection.connect(configuration: TestDatabase.configuration())
            func backend(_ connection: PostgresConnection) async throws -> Int32 {
                try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
            }

            // Killed while leased: the next statement fails, and the connection is dropped on return.
            let first = try await client.withConnection { connection in
                let pid = try await backend(connection)
                try await killer.execute("SELECT pg_terminate_backend(\(pid), 5000)")
                let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
                #expect(error?.isConnectionFailure == true)
                #expect(connection.isBroken)
                return pid
            }
            let (second, idle) = try await client.withConnection { (try await backend($0), $0) }
            #expect(second != first)

            // Killed while idle in the pool: the next lease notices and gets a new connection.
            // The server process ends (and its socket closes) just after pg_terminate_backend
            // returns, so the lease waits until the idle connection can see the close.
            #expect(await idle.serverHasClosed() == false)
            try await killer.execute("SELECT pg_terminate_backend(\(second), 5000)")
            #expect(try await eventually { await idle.serverHasClosed() })
            let third = try await client.withConnection { try await backend($0) }
            #expect(third != second)

            await killer.close()
        }
    }

    @Test("a URL with several hosts and target_session_attrs=read-write connects to the one that answers as a primary")
    func multiHostURL() async throws {
        // A port nobody listens on first, then the test server: libpq tries them in order.
        var components = try #require(URLComponents(string: TestEnvironment.databaseURL))
        let host = try #require(components.host), port = try #require(components.port)
        components.host = nil
        components.port = nil
        let path = components.percentEncodedPath
        let url = "postgresql://\(components.user.map { "\($0)@" } ?? "")127.0.0.1:1,\(host):\(port)\(path)?target_session_attrs=read-write"
        try await TestDatabase.withClient(poolSize: 1, url: url) { client in
            let rows = try await client.query("SELECT inet_server_port(), pg_is_in_recovery()")
            #expect(try rows[0].decode(Int.self, at: 0) == port)
            #expect(try rows[0].decode(Bool.self, at: 1) == false)
        }
    }
}
