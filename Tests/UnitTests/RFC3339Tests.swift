import Foundation
import MingusCore
import Testing

@Suite("RFC 3339")
struct RFC3339Tests {
    /// Instants spread over four centuries, both sides of 1970, leap days and month ends included.
    static let instants: [Date] = {
        var generator = SystemRandomNumberGenerator()
        var dates = (0..<5_000).map { _ in
            Date(timeIntervalSince1970: Double(Int64.random(in: -5_000_000_000_000...7_000_000_000_000, using: &generator)) / 1000)
        }
        dates += ["2024-02-29T23:59:59.999Z", "2000-03-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z",
                  "1970-01-01T00:00:00.000Z", "2100-02-28T12:00:00.001Z"].map { RFC3339.date($0)! }
        return dates
    }()

    @Test("writes what Foundation's ISO 8601 style with fractional seconds writes")
    func formatsLikeFoundation() {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for date in Self.instants {
            #expect(RFC3339.format(date) == date.formatted(style), "\(date.timeIntervalSince1970)")
        }
    }

    @Test("reads back what it writes, to the millisecond, and agrees with Foundation's parser to the microsecond")
    func readsWhatItWrites() throws {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for date in Self.instants {
            let text = RFC3339.format(date)
            let parsed = try #require(RFC3339.date(text))
            let foundation = try Date(text, strategy: style)
            #expect(abs(parsed.timeIntervalSince(foundation)) < 0.000_001, "\(text)")
            // Written truncated to the millisecond (a microsecond of slack for the arithmetic).
            #expect((-0.000_001..<0.001_001).contains(date.timeIntervalSince(parsed)), "\(text)")
        }
    }

    @Test("reads offsets, lower-case separators and microseconds; refuses what is not a date-time")
    func readsVariants() {
        #expect(RFC3339.micros("2026-11-27T13:00:00+01:00") == RFC3339.micros("2026-11-27T12:00:00Z"))
        #expect(RFC3339.micros("2026-11-27t12:00:00.000001z") == RFC3339.micros("2026-11-27T12:00:00Z")! + 1)
        #expect(RFC3339.micros("2026-11-27T12:00:00.1234567Z") == RFC3339.micros("2026-11-27T12:00:00Z")! + 123_456)
        for text in ["", "2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T12:00:00+0100",
                     "2026-11-27T12:00:00Zjunk", "２０２６-11-27T12:00:00Z"] {
            #expect(RFC3339.micros(text) == nil, "\(text)")
        }
    }
}
