public import Foundation

/// A periodic schedule written as a standard five-field cron expression, evaluated in UTC.
///
/// The fields are `minute hour day-of-month month day-of-week`. Each is a comma-separated list
/// of `*`, `n`, `a-b`, `*/s`, `a-b/s` or `n/s` (from `n` to the end of the field's range, every
/// `s`). Months may be written `JAN`-`DEC` and weekdays `SUN`-`SAT`, in any case; in the
/// day-of-week field both `0` and `7` mean Sunday. The macros `@yearly` (or `@annually`),
/// `@monthly`, `@weekly`, `@daily` (or `@midnight`) and `@hourly` stand for their usual
/// expressions.
///
/// Days follow Vixie cron: when both day-of-month and day-of-week are restricted (written as
/// anything but a bare `*`), a day matches if either field matches; otherwise it must match both.
/// Unlike Vixie cron, a field such as `*/2` counts as restricted.
///
/// Two schedules are equal when they fire at the same times, however they are written
/// (`@daily` equals `0 0 * * *`); `description` gives the expression as written.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The expression as given, without surrounding whitespace.
    public let expression: String

    private let minutes: FieldSet
    private let hours: FieldSet
    private let daysOfMonth: FieldSet
    private let months: FieldSet
    /// Sunday is 0, Saturday 6 (a 7 in the expression is stored as 0).
    private let daysOfWeek: FieldSet
    private let daysOfMonthRestricted: Bool
    private let daysOfWeekRestricted: Bool

    /// How far ahead `next(after:)` looks: eight years, the longest gap between two 29ths of
    /// February (2096 to 2104).
    private static let searchYears = 8

    /// Parses a five-field cron expression or a macro such as `@daily`.
    ///
    /// - Throws: `CronError` naming the field and the problem, such as
    ///   `minute field: 61 is out of range 0-59`.
    public init(_ expression: String) throws {
        let trimmed = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        var fields = trimmed.split(whereSeparator: \.isWhitespace).map(String.init)
        if fields.count == 1, let macro = fields.first, macro.hasPrefix("@") {
            guard let expansion = Self.macros[macro.lowercased()] else {
                throw CronError("unknown macro \(macro) (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")
            }
            fields = expansion.split(separator: " ").map(String.init)
        }
        guard fields.count == 5 else {
            throw CronError("expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        self.expression = trimmed
        minutes = try Field.minute.parse(fields[0])
        hours = try Field.hour.parse(fields[1])
        daysOfMonth = try Field.dayOfMonth.parse(fields[2])
        months = try Field.month.parse(fields[3])
        daysOfWeek = try Field.dayOfWeek.parse(fields[4])
        daysOfMonthRestricted = fields[2] != "*"
        daysOfWeekRestricted = fields[4] != "*"
    }

    /// The expression as written.
    public var description: String {
        expression
    }

    /// Whether two schedules fire at the same times.
    public static func == (lhs: CronSchedule, rhs: CronSchedule) -> Bool {
        lhs.minutes == rhs.minutes && lhs.hours == rhs.hours && lhs.daysOfMonth == rhs.daysOfMonth
            && lhs.months == rhs.months && lhs.daysOfWeek == rhs.daysOfWeek
            && lhs.daysOfMonthRestricted == rhs.daysOfMonthRestricted
            && lhs.daysOfWeekRestricted == rhs.daysOfWeekRestricted
    }

    /// The first matching minute strictly after `date` (whose seconds are dropped), in UTC.
    ///
    /// Returns nil when nothing matches within the next eight years, as for `0 0 30 2 *`.
    /// The search skips whole months, days and hours that cannot match.
    public func next(after date: Date) -> Date? {
        search(after: date).next
    }

    /// ``next(after:)`` with the number of candidates the search looked at before it answered
    /// (each skip to the next month, day, hour or minute that might match counts one), so that
    /// tests can check that it skips instead of walking minute by minute.
    func search(after date: Date) -> (next: Date?, steps: Int) {
        let calendar = Self.calendar
        guard let start = calendar.date(byAdding: .minute, value: 1, to: date) else { return (nil, 0) }
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: start)
        guard var year = parts.year, var month = parts.month, var day = parts.day,
              var hour = parts.hour, var minute = parts.minute
        else { return (nil, 0) }
        let lastYear = year + Self.searchYears
        var steps = 0

        while year <= lastYear {
            steps += 1
            guard months.contains(month) else {
                (year, month) = month == 12 ? (year + 1, 1) : (year, month + 1)
                (day, hour, minute) = (1, 0, 0)
                continue
            }
            guard day <= Self.daysInMonth(month, year: year) else {
                (year, month) = month == 12 ? (year + 1, 1) : (year, month + 1)
                (day, hour, minute) = (1, 0, 0)
                continue
            }
            guard matchesDay(year: year, month: month, day: day) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            guard let matchingHour = hours.first(atLeast: hour) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            if matchingHour != hour {
                (hour, minute) = (matchingHour, 0)
            }
            guard let matchingMinute = minutes.first(atLeast: minute) else {
                (hour, minute) = (hour + 1, 0)
                if hour == 24 {
                    (day, hour) = (day + 1, 0)
                }
                continue
            }
            let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: matchingMinute)
            return (calendar.date(from: components), steps)
        }
        return (nil, steps)
    }

    private func matchesDay(year: Int, month: Int, day: Int) -> Bool {
        let dayOfMonthMatches = daysOfMonth.contains(day)
        let dayOfWeekMatches = daysOfWeek.contains(Self.weekday(year: year, month: month, day: day))
        if daysOfMonthRestricted && daysOfWeekRestricted {
            return dayOfMonthMatches || dayOfWeekMatches
        }
        return dayOfMonthMatches && dayOfWeekMatches
    }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar
    }()

    private static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The day of the week of a Gregorian date, Sunday being 0 (Sakamoto's method).
    private static func weekday(year: Int, month: Int, day: Int) -> Int {
        let offsets = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]
        let shiftedYear = month < 3 ? year - 1 : year
        let count = shiftedYear + shiftedYear / 4 - shiftedYear / 100 + shiftedYear / 400 + offsets[month - 1] + day
        return (count % 7 + 7) % 7
    }
}

/// Why a cron expression could not be parsed.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line naming the field and the problem, such as `minute field: 61 is out of range 0-59`.
    public let message: String

    /// Creates an error with its message.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String {
        message
    }
}

/// The values one field allows, as bits (bit `n` set means `n` is allowed).
private struct FieldSet: Sendable, Equatable {
    var bits: UInt64 = 0

    func contains(_ value: Int) -> Bool {
        bits & (1 << UInt64(value)) != 0
    }

    mutating func insert(_ value: Int) {
        bits |= 1 << UInt64(value)
    }

    /// The smallest allowed value that is at least `value`, if any.
    func first(atLeast value: Int) -> Int? {
        guard value < 64 else { return nil }
        let remaining = bits >> UInt64(value)
        return remaining == 0 ? nil : value + remaining.trailingZeroBitCount
    }
}

/// The five fields of a cron expression, with their ranges and names.
private enum Field {
    case minute, hour, dayOfMonth, month, dayOfWeek

    var name: String {
        switch self {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day-of-month"
        case .month: "month"
        case .dayOfWeek: "day-of-week"
        }
    }

    /// The values a number may take; day-of-week accepts 7 as a second Sunday.
    var range: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    /// The range `*` stands for (day-of-week stops at Saturday so that `*/2` means 0, 2, 4, 6).
    var starRange: ClosedRange<Int> {
        self == .dayOfWeek ? 0...6 : range
    }

    var names: [String] {
        switch self {
        case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        default: []
        }
    }

    /// Parses a comma-separated list of `*`, `n`, `a-b`, `*/s`, `a-b/s` and `n/s`.
    func parse(_ text: String) throws(CronError) -> FieldSet {
        var set = FieldSet()
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !element.isEmpty else { throw error("empty list element in '\(text)'") }
            let parts = element.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw error("'\(element)' has more than one step") }
            let rangeText = parts[0]
            var step = 1
            if parts.count == 2 {
                guard parts[1].allSatisfy(\.isASCIIDigit), let value = Int(parts[1]), value > 0 else {
                    throw error("step '\(parts[1])' must be a positive number")
                }
                step = value
            }

            let bounds: ClosedRange<Int>
            if rangeText == "*" {
                bounds = starRange
            } else if let dash = rangeText.firstIndex(of: "-") {
                let lowText = rangeText[..<dash]
                let highText = rangeText[rangeText.index(after: dash)...]
                guard !lowText.isEmpty, !highText.isEmpty else { throw error("'\(rangeText)' is not a valid range") }
                let low = try value(lowText)
                let high = try value(highText)
                guard low <= high else { throw error("range \(rangeText) goes backwards") }
                bounds = low...high
            } else {
                let low = try value(rangeText)
                // `n/s` runs from n to the end of the field; a bare `n` is that value alone.
                bounds = parts.count == 2 ? low...range.upperBound : low...low
            }
            for value in stride(from: bounds.lowerBound, through: bounds.upperBound, by: step) {
                set.insert(self == .dayOfWeek && value == 7 ? 0 : value)
            }
        }
        return set
    }

    /// A number within the field's range, or a month or weekday name.
    private func value(_ text: Substring) throws(CronError) -> Int {
        if let index = names.firstIndex(of: text.uppercased()) {
            return index + (self == .month ? 1 : 0)
        }
        guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit), let number = Int(text) else {
            throw error("'\(text)' is not a number\(names.isEmpty ? "" : " or a name")")
        }
        guard range.contains(number) else {
            throw error("\(number) is out of range \(range.lowerBound)-\(range.upperBound)")
        }
        return number
    }

    private func error(_ problem: String) -> CronError {
        CronError("\(name) field: \(problem)")
    }
}

extension Character {
    /// Whether the character is one of the ASCII digits 0-9.
    fileprivate var isASCIIDigit: Bool {
        isASCII && isWholeNumber
    }
}
