import Foundation
import MingusPostgres
import TestSupport
import Testing

@Suite("Encoding and decoding")
struct CodingTests {
    static let awkwardText = "it's a \\ backslash,\ta tab,\na newline, \r\n, \"quotes\", {braces}, NULL, ünïcødé 🎷"
    /// 2026-11-23 10:00:00.123456 UTC.
    static let date = Date(timeIntervalSince1970: 1_795_428_000.123456)

    @Test func roundTripsEveryTypeThroughATable() async throws {
        let table = TestEnvironment.uniqueName("pg_types")
        try await TestDatabase.withClient { client in
            try await client.execute(
                """
                CREATE TABLE \(identifier: table) (
                    id int PRIMARY KEY, s text, i int8, i64 int8, i32 int4, i16 int2, b bool, d float8,
                    ts timestamptz, u uuid, data bytea, bytes bytea, texts text[], ints int8[])
                """
            )
            let uuid = UUID()
            let data = Data([0, 1, 0x7F, 0x80, 0xFF, 0x5C])
            let texts = ["plain", "", Self.awkwardText, "NULL", "a,b"]
            let ints = [0, -1, Int.max, Int.min]
            try await client.execute(
                """
                INSERT INTO \(identifier: table) VALUES
                    (1, \(Self.awkwardText), \(Int.max), \(Int64.min), \(Int32.max), \(Int16.min), \(true),
                     \(-1.5e-300), \(Self.date), \(uuid), \(data), \([UInt8]([1, 2, 3])), \(texts), \(ints)),
                    (2, \(String?.none), \(Int?.none), \(Int64?.none), \(Int32?.none), \(Int16?.none), \(Bool?.none),
                     \(Double?.none), \(Date?.none), \(UUID?.none), \(Data?.none), \([UInt8]?.none), \([String]?.none), \([Int]?.none))
                """
            )
            let rows = try await client.query("SELECT * FROM \(identifier: table) ORDER BY id")
            #expect(rows.count == 2)
            #expect(rows.columns == ["id", "s", "i", "i64", "i32", "i16", "b", "d", "ts", "u", "data", "bytes", "texts", "ints"])

            let row = rows[0]
            #expect(try row.decode(String.self, column: "s") == Self.awkwardText)
            #expect(try row.decode(Int.self, column: "i") == Int.max)
            #expect(try row.decode(Int64.self, column: "i64") == Int64.min)
            #expect(try row.decode(Int32.self, column: "i32") == Int32.max)
            #expect(try row.decode(Int16.self, column: "i16") == Int16.min)
            #expect(try row.decode(Bool.self, column: "b") == true)
            #expect(try row.decode(Double.self, column: "d") == -1.5e-300)
            let decodedDate = try row.decode(Date.self, column: "ts")
            #expect(abs(decodedDate.timeIntervalSince(Self.date)) < 0.000_001)
            #expect(try row.decode(UUID.self, column: "u") == uuid)
            #expect(try row.decode(Data.self, column: "data") == data)
            #expect(try row.decode([UInt8].self, column: "bytes") == [1, 2, 3])
            #expect(try row.decode([String].self, column: "texts") == texts)
            #expect(try row.decode([Int].self, column: "ints") == ints)

            let nulls = rows[1]
            for column in nulls.columns.indices.dropFirst() {
                #expect(nulls.isNull(at: column))
            }
            #expect(try nulls.decode(String?.self, column: "s") == nil)
            #expect(try nulls.decode(Int?.self, at: 2) == nil)
            #expect(try nulls.decode(Date?.self, column: "ts") == nil)
            #expect(try nulls.decode([String]?.self, column: "texts") == nil)
            #expect(try rows[0].decode(Int?.self, column: "i") == Int.max)

            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func roundTripsParametersWithoutATable() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let rows = try await client.query(
                """
                SELECT \(Self.awkwardText), \(Double.infinity)::float8, \(-Double.infinity)::float8, \(Double.nan)::float8,
                       \(false), \(Self.date)::timestamptz, '2026-11-23 10:00:00+05:30'::timestamptz,
                       '0044-03-15 12:00:00 BC'::timestamptz, \(["x\"y", "a\\b"])::text[], '{}'::int8[]
                """
            )
            let row = try #require(rows.first)
            #expect(try row.decode(String.self, at: 0) == Self.awkwardText)
            #expect(try row.decode(Double.self, at: 1) == .infinity)
            #expect(try row.decode(Double.self, at: 2) == -.infinity)
            #expect(try row.decode(Double.self, at: 3).isNaN)
            #expect(try row.decode(Bool.self, at: 4) == false)
            #expect(abs(try row.decode(Date.self, at: 5).timeIntervalSince(Self.date)) < 0.000_001)
            #expect(try row.decode(Date.self, at: 6) == Date(timeIntervalSince1970: 1_795_428_000 - 5.5 * 3600))
            // 15 March 44 BC, 12:00 UTC (proleptic Gregorian), as PostgreSQL counts it.
            let ides = try row.decode(Date.self, at: 7)
            #expect(ides.postgresText == "0044-03-15 12:00:00.000000+00 BC")
            #expect(try row.decode([String].self, at: 8) == ["x\"y", "a\\b"])
            #expect(try row.decode([Int].self, at: 9) == [])
        }
    }

    @Test func roundTripsArraysWithNullsAndByteaArrays() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let texts: [String?] = ["a", nil, "NULL", "x\"y,z", ""]
            let ints: [Int?] = [nil, 7]
            let blobs: [[UInt8]] = [[0, 1, 255], [], Array("\\".utf8)]
            let row = try #require(try await client.query("""
                SELECT \(texts)::text[], (\(texts)::text[])[2] IS NULL, \(ints)::int8[], \(blobs)::bytea[], cardinality(\(blobs)::bytea[]),
                       (\(blobs)::bytea[])[1] = '\\x0001ff'::bytea
                """).first)
            #expect(try row.decode([String?].self, at: 0) == texts)
            #expect(try row.decode(Bool.self, at: 1))
            #expect(try row.decode([Int?].self, at: 2) == ints)
            #expect(try row.decode([[UInt8]].self, at: 3) == blobs)
            #expect(try row.decode(Int.self, at: 4) == 3)
            #expect(try row.decode(Bool.self, at: 5))
        }
    }

    @Test func formatsTimestampsInUTCWithMicroseconds() async throws {
        #expect(Self.date.postgresText == "2026-11-23 10:00:00.123456+00")
        #expect(Date(timeIntervalSince1970: 0).postgresText == "1970-01-01 00:00:00.000000+00")
        #expect(Date(timeIntervalSince1970: -0.5).postgresText == "1969-12-31 23:59:59.500000+00")
        // The server prints what we send the same way.
        try await TestDatabase.withClient(poolSize: 1) { client in
            let rows = try await client.query("SELECT \(Self.date)::timestamptz::text")
            #expect(try rows[0].decode(String.self, at: 0) == "2026-11-23 10:00:00.123456+00")
        }
    }

    @Test func quotesIdentifiers() async throws {
        let table = TestEnvironment.uniqueName("weird \"table\" name")
        let query: PostgresQuery = "SELECT \(identifier: "a\"b") FROM \(identifier: "t")"
        #expect(query.sql == #"SELECT "a""b" FROM "t""#)
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (\(identifier: "select") text)")
            try await client.execute("INSERT INTO \(identifier: table) (\(identifier: "select")) VALUES (\("ok"))")
            let rows = try await client.query("SELECT \(identifier: "select") FROM \(identifier: table)")
            #expect(try rows[0].decode(String.self, column: "select") == "ok")
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func interpolatedValuesAreBindsNotSQL() {
        let secret = "4111111111111111"
        let query: PostgresQuery = "SELECT \(secret), \(unescaped: "now()"), \(String?.none)"
        #expect(query.sql == "SELECT $1, now(), $2")
        #expect(query.bindCount == 2)
        #expect(!"\(query)".contains(secret))
        #expect(!String(reflecting: query).contains(secret))
        var dumped = ""
        dump(query, to: &dumped)
        #expect(!dumped.contains(secret))
    }

    @Test func decodingFailuresNameTheColumnAndTypeButNotTheValue() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let rows = try await client.query("SELECT 'secret-value'::text AS label, NULL::int4 AS missing")
            let row = try #require(rows.first)

            let wrongType = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "label") }
            #expect(wrongType?.kind == .decoding)
            #expect(wrongType?.description.contains("label") == true)
            #expect(wrongType?.description.contains("Int") == true)
            #expect(wrongType?.description.contains("text") == true)
            #expect(wrongType?.description.contains("secret-value") == false)

            let null = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "missing") }
            #expect(null?.kind == .decoding)
            #expect(null?.description.contains("NULL") == true)

            let noColumn = #expect(throws: PostgresError.self) { try row.decode(Int.self, column: "nope") }
            #expect(noColumn?.kind == .decoding)
        }
    }

    @Test func rejectsNULCharactersInBindsInsteadOfTruncating() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let error = await #expect(throws: PostgresError.self) {
                try await client.query("SELECT \("before\u{0}after")")
            }
            #expect(error?.kind == .encoding)
            #expect(error?.description.contains("before") == false)
        }
    }
}
