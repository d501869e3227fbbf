import MingusPostgres
import TestSupport
import Testing

@Suite("COPY FROM STDIN")
struct CopyTests {
    static let escaped = "tab\there, newline\nhere, cr\rhere, backslash\\here, \\N is not NULL, 'q' \"dq\" ünï 🎷"

    @Test func copiesOneHundredThousandRows() async throws {
        let table = TestEnvironment.uniqueName("pg_copy")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY, name text NOT NULL, note text, amount int8)")
            let rowCount = 100_000
            let rows = (0..<rowCount).lazy.map { id -> [(any PostgresEncodable)?] in
                let name = id % 25_000 == 7 ? Self.escaped : "row \(id)"
                let note: String? = id % 10_000 == 0 ? nil : "note \(id)"
                return [id, name, note, id * 1_000_000]
            }
            let copied = try await client.withConnection { connection in
                try await connection.copyFrom(table: table, columns: ["id", "name", "note", "amount"], rows: rows)
            }
            #expect(copied == rowCount)
            #expect(try await TestDatabase.count(table, on: client) == rowCount)

            let spot = try await client.query("SELECT name, note, amount FROM \(identifier: table) WHERE id = 25007")
            #expect(try spot[0].decode(String.self, at: 0) == Self.escaped)
            #expect(try spot[0].decode(String.self, at: 1) == "note 25007")
            #expect(try spot[0].decode(Int.self, at: 2) == 25_007_000_000)

            let escapedCount = try await client.query("SELECT count(*) FROM \(identifier: table) WHERE name = \(Self.escaped)")
            #expect(try escapedCount[0].decode(Int.self, at: 0) == 4)
            let nullNotes = try await client.query("SELECT count(*) FROM \(identifier: table) WHERE note IS NULL")
            #expect(try nullNotes[0].decode(Int.self, at: 0) == 10)

            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func failedCopyLeavesTheConnectionUsable() async throws {
        let table = TestEnvironment.uniqueName("pg_copy_fail")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY)")
            try await client.withConnection { connection in
                // Duplicate keys: the server rejects the COPY as a whole.
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.copyFrom(table: table, columns: ["id"], rows: [[1], [2], [1]])
                }
                #expect(error?.sqlState == "23505")

                // A row with the wrong number of values is refused before it is sent.
                let shape = await #expect(throws: PostgresError.self) {
                    try await connection.copyFrom(table: table, columns: ["id"], rows: [[1, 2]])
                }
                #expect(shape?.kind == .encoding)

                let rows = try await connection.query("SELECT count(*) FROM \(identifier: table)")
                #expect(try rows[0].decode(Int.self, at: 0) == 0)
                #expect(try await connection.copyFrom(table: table, columns: ["id"], rows: [[1], [2]]) == 2)
            }
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test("rows written field by field: escaped text, whole numbers of every sign, booleans, NULL; a row with too few fields is refused")
    func rowWriter() async throws {
        let table = TestEnvironment.uniqueName("pg_copy_writer")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int8 PRIMARY KEY, name text, flag boolean, tags text[])")
            let ids: [Int64] = [0, 7, -42, Int64.max, Int64.min]
            try await client.withConnection { connection in
                let copied = try await connection.copyFrom(table: table, columns: ["id", "name", "flag", "tags"], rows: ids) { id, row in
                    row.integer(id)
                    if id == 0 { row.null() } else { row.text(Self.escaped) }
                    row.bool(id > 0)
                    row.text(#"{"a\\b","c\"d"}"#)
                }
                #expect(copied == ids.count)
                let short = await #expect(throws: PostgresError.self) {
                    try await connection.copyFrom(table: table, columns: ["id", "name", "flag", "tags"], rows: [Int64(1)]) { id, row in
                        row.integer(id)
                    }
                }
                #expect(short?.kind == .encoding)
            }
            let stored = try await client.query("SELECT id, name, flag, tags[1], tags[2] FROM \(identifier: table) ORDER BY id")
            #expect(try stored.map { try $0.decode(Int64.self, at: 0) } == ids.sorted())
            #expect(try stored.map { try $0.decode(String?.self, at: 1) } == ids.sorted().map { $0 == 0 ? nil : Self.escaped })
            #expect(try stored.map { try $0.decode(Bool.self, at: 2) } == ids.sorted().map { $0 > 0 })
            #expect(try stored.allSatisfy { try $0.decode(String.self, at: 3) == #"a\b"# && $0.decode(String.self, at: 4) == #"c"d"# })
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }
}
