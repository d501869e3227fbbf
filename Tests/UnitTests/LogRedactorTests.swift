@testable import MingusLogs
import MingusPostgres
import Testing

@Suite("Log redaction")
struct LogRedactorTests {
    let redactor = LogRedactor()

    @Test("card numbers that pass Luhn are replaced, with spaces or hyphens, inside longer runs too; other numbers stay", arguments: [
        ("charge 4111111111111111 ok", "charge <card> ok", 1),
        ("pan=4111 1111 1111 1111;", "pan=<card>;", 1),
        ("card 5500-0000-0000-0004 declined", "card <card> declined", 1),
        ("amex 378282246310005.", "amex <card>.", 1),
        ("order 1234 4111 1111 1111 1111", "order 1234 <card>", 1),
        ("two 4012888888881881 and 6011111111111117", "two <card> and <card>", 1 + 1),
        ("not luhn 4111111111111112", "not luhn 4111111111111112", 0),
        ("epoch millis 1732662000123 passes no network prefix", "epoch millis 1732662000123 passes no network prefix", 0),
        ("too short 411111111111", "too short 411111111111", 0),
        ("id 41111111111111110000000 is too long", "id 41111111111111110000000 is too long", 0),
        ("trace abc4111111111111111 is glued to letters", "trace abc4111111111111111 is glued to letters", 0),
    ])
    func cards(line: String, expected: String, count: Int) {
        let (text, found) = redactor.redact(line)
        #expect(text == expected)
        #expect(found.card == count)
    }

    @Test("e-mail addresses, bearer tokens, JWTs, API keys, key=value secrets and SSNs get typed placeholders", arguments: [
        ("mail from jane.doe+tag@example.co.uk.", "mail from <email>.", "email"),
        ("Authorization: Bearer abc.DEF-123_xyz~", "Authorization: Bearer <token>", "token"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x done", "token <token> done", "token"),
        ("key mgk_0123456789ab_Zx9-secretPart used", "key <api_key> used", "apiKey"),
        ("login user=bob password=hunter2 ok", "login user=bob password=<secret> ok", "secret"),
        (#"{"db_password": "p@ss word", "user": "x"}"#, #"{"db_password": "<secret>", "user": "x"}"#, "secret"),
        ("client_secret: s3cr3t, next", "client_secret: <secret>, next", "secret"),
        ("ssn 123-45-6789 on file", "ssn <ssn> on file", "ssn"),
    ])
    func others(line: String, expected: String, kind: String) {
        let (text, found) = redactor.redact(line)
        #expect(text == expected)
        let counts = Dictionary(uniqueKeysWithValues: found.counts.map { ($0.kind, $0.count) })
        let key = ["apiKey": "api_key"][kind] ?? kind
        #expect(counts == [key: 1], "\(found)")
    }

    @Test("look-alikes are left alone", arguments: [
        "GET /index.html 200 1043",
        "ssn-like 000-12-3456 and 666-12-3456 and 123-00-4567 and 123-45-0000",
        "version 1.2.3-4 at 10.0.0.1:8080",
        "user@localhost has no domain",
        "passwords reset: 3",
        "Bearer short",
    ])
    func lookAlikes(line: String) {
        let (text, found) = redactor.redact(line)
        #expect(text == line && found.total == 0, "\(text)")
    }
}

@Suite("Log storage helpers")
struct LogStorageFormatTests {
    @Test("COPY times are UTC with microseconds, before 1970 too", arguments: [
        (Int64(0), "1970-01-01 00:00:00.000000+00"),
        (Int64(1_764_158_400_123_456), "2025-11-26 12:00:00.123456+00"),
        (Int64(-1_500_000), "1969-12-31 23:59:58.500000+00"),
        (Int64(951_782_400_000_001), "2000-02-29 00:00:00.000001+00"),
    ])
    func timestamps(micros: Int64, expected: String) {
        #expect(LogsWorker.timestamp(micros) == expected)
    }

    @Test("variables are the words where the template has <*>; array literals escape quotes and backslashes")
    func variablesAndArrays() {
        #expect(LogsWorker.variables("job 42 finished in 7 ms", template: "job <*> finished in <*> ms") == ["42", "7"])
        #expect(LogsWorker.variables("a b", template: "a <*> <*>") == [])
        #expect(PostgresArrayLiteral.encode([]) == "{}")
        #expect(PostgresArrayLiteral.encode(["a\"b", "c\\d"]) == #"{"a\"b","c\\d"}"#)
    }
}
