import Foundation
import MingusPostgres
import TestSupport
import Testing

@Suite("Migrator")
struct MigratorTests {
    @Test func appliesTheProjectMigrationsOnce() async throws {
        let directory = TestEnvironment.migrationsDirectory
        let fileCount = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.count
        #expect(fileCount >= 1)
        try await TestDatabase.withFreshDatabase { url in
            try await TestDatabase.withClient(url: url) { client in
                let migrator = Migrator(directory: directory, client: client)
                #expect(try await migrator.status().allSatisfy { !$0.isApplied })

                let first = try await migrator.apply()
                #expect(first.count == fileCount)
                #expect(first.first?.version == 1)
                #expect(first.first?.name == "foundation")
                #expect(first.map(\.version) == first.map(\.version).sorted())

                let second = try await migrator.apply()
                #expect(second.isEmpty)

                let status = try await migrator.status()
                #expect(status.count == fileCount)
                #expect(status.allSatisfy { $0.isApplied && !$0.checksumMismatch })

                let pgcrypto = try await client.query("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'")
                #expect(try pgcrypto[0].decode(Int.self, at: 0) == 1)
            }
        }
    }

    @Test func changedFileIsReportedByName() async throws {
        let directory = try Self.temporaryDirectory(files: [
            "0001_first.sql": "CREATE TABLE first (id int PRIMARY KEY);\nINSERT INTO first VALUES (1);",
            "0002_second.sql": "CREATE TABLE second (id int PRIMARY KEY);",
            "notes.txt": "not a migration",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestDatabase.withFreshDatabase { url in
            try await TestDatabase.withClient(url: url) { client in
                let migrator = Migrator(directory: directory, client: client)
                #expect(try await migrator.apply().map(\.version) == [1, 2])

                try "CREATE TABLE second (id int PRIMARY KEY, changed text);".write(
                    to: directory.appendingPathComponent("0002_second.sql"), atomically: true, encoding: .utf8)
                try "CREATE TABLE third (id int);".write(
                    to: directory.appendingPathComponent("0003_third.sql"), atomically: true, encoding: .utf8)

                let error = await #expect(throws: MigrationError.self) { try await migrator.apply() }
                #expect(error == .checksumMismatch(file: "0002_second.sql", version: 2))
                #expect(error?.description.contains("0002_second.sql") == true)

                let status = try await migrator.status()
                #expect(status.map(\.checksumMismatch) == [false, true, false])
                #expect(status.map(\.isApplied) == [true, true, false])
            }
        }
    }

    @Test func failedFileLeavesNothingAndConcurrentMigratorsSerialize() async throws {
        let directory = try Self.temporaryDirectory(files: [
            "0001_one.sql": "CREATE TABLE one (id int);",
            "0002_two.sql": "CREATE TABLE two (id int);",
            "0003_broken.sql": "CREATE TABLE three (id int);\nTHIS IS NOT SQL;",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestDatabase.withFreshDatabase { url in
            try await TestDatabase.withClient(url: url) { client in
                // Two migrators at once: each file is applied exactly once, then both stop at the broken one.
                async let a: Result<[AppliedMigration], any Error> = Self.result {
                    try await Migrator(directory: directory, client: client).apply()
                }
                async let b: Result<[AppliedMigration], any Error> = Self.result {
                    try await Migrator(directory: directory, client: client).apply()
                }
                let results = await [a, b]
                for result in results {
                    #expect(throws: PostgresError.self) { try result.get() }
                }
                let status = try await Migrator(directory: directory, client: client).status()
                #expect(status.map(\.isApplied) == [true, true, false])
                let three = try await client.query("SELECT to_regclass('three') IS NULL")
                #expect(try three[0].decode(Bool.self, at: 0))
            }
        }
    }

    @Test func badFileNamesAreRejected() async throws {
        let directory = try Self.temporaryDirectory(files: ["first.sql": "SELECT 1;"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestDatabase.withClient { client in
            let error = await #expect(throws: MigrationError.self) {
                try await Migrator(directory: directory, client: client).status()
            }
            #expect(error == .invalidFileName("first.sql"))
        }
    }

    private static func temporaryDirectory(files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("migrations"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, contents) in files {
            try contents.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory
    }

    private static func result<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}
