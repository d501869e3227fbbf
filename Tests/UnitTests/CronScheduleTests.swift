import Foundation
@testable import MingusRuntime
import Testing

/// A UTC date.
private func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = .gmt
    return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
}

/// The next firing of an expression after a date.
private func next(_ expression: String, after date: Date) throws -> Date? {
    try CronSchedule(expression).next(after: date)
}

/// The first `count` firings of an expression after a date.
private func firings(_ expression: String, after date: Date, count: Int) throws -> [Date] {
    let schedule = try CronSchedule(expression)
    var dates: [Date] = []
    var current = date
    while dates.count < count, let found = schedule.next(after: current) {
        dates.append(found)
        current = found
    }
    return dates
}

/// The message of the error an expression throws, if any.
private func errorMessage(_ expression: String) -> String? {
    do {
        _ = try CronSchedule(expression)
        return nil
    } catch let error as CronError {
        return error.message
    } catch {
        return "unexpected \(error)"
    }
}

@Suite("Cron: syntax")
struct CronSyntaxTests {
    @Test("every minute, strictly after the date, seconds dropped")
    func everyMinute() throws {
        #expect(try next("* * * * *", after: utc(2026, 3, 1, 10, 0, 30)) == utc(2026, 3, 1, 10, 1))
        #expect(try next("* * * * *", after: utc(2026, 3, 1, 10, 0)) == utc(2026, 3, 1, 10, 1))
        #expect(try next("0 * * * *", after: utc(2026, 3, 1, 10, 0)) == utc(2026, 3, 1, 11, 0))
    }

    @Test("single values")
    func singleValues() throws {
        #expect(try next("30 9 * * *", after: utc(2026, 3, 1, 9, 30)) == utc(2026, 3, 2, 9, 30))
        #expect(try next("30 9 * * *", after: utc(2026, 3, 1, 8, 59)) == utc(2026, 3, 1, 9, 30))
    }

    @Test("*/15 fires on the quarter hours")
    func everyFifteenMinutes() throws {
        #expect(try firings("*/15 * * * *", after: utc(2026, 3, 1, 10, 7), count: 4)
            == [utc(2026, 3, 1, 10, 15), utc(2026, 3, 1, 10, 30), utc(2026, 3, 1, 10, 45), utc(2026, 3, 1, 11, 0)])
    }

    @Test("ranges, ranges with steps and n/s")
    func rangesAndSteps() throws {
        #expect(try firings("10-30/10 * * * *", after: utc(2026, 3, 1, 10, 25), count: 3)
            == [utc(2026, 3, 1, 10, 30), utc(2026, 3, 1, 11, 10), utc(2026, 3, 1, 11, 20)])
        #expect(try firings("5/20 * * * *", after: utc(2026, 3, 1, 10, 0), count: 4)
            == [utc(2026, 3, 1, 10, 5), utc(2026, 3, 1, 10, 25), utc(2026, 3, 1, 10, 45), utc(2026, 3, 1, 11, 5)])
        #expect(try firings("0 22-23,1 * * *", after: utc(2026, 3, 1, 12, 0), count: 3)
            == [utc(2026, 3, 1, 22, 0), utc(2026, 3, 1, 23, 0), utc(2026, 3, 2, 1, 0)])
    }

    @Test("lists mixing the forms")
    func lists() throws {
        #expect(try CronSchedule("0,30 9-17/4,20 * * *") == CronSchedule("0,30 9,13,17,20 * * *"))
        #expect(try firings("0,30 9-17/4,20 * * *", after: utc(2026, 3, 1, 17, 15), count: 3)
            == [utc(2026, 3, 1, 17, 30), utc(2026, 3, 1, 20, 0), utc(2026, 3, 1, 20, 30)])
    }

    @Test("month and weekday names in any case")
    func names() throws {
        #expect(try CronSchedule("0 0 1 jan,Jul *") == CronSchedule("0 0 1 1,7 *"))
        #expect(try CronSchedule("0 9 * * MON-fri") == CronSchedule("0 9 * * 1-5"))
        #expect(try CronSchedule("0 0 * FEB-apr/2 SUN,sat") == CronSchedule("0 0 * 2,4 0,6"))
        #expect(try next("0 0 1 jan,Jul *", after: utc(2026, 1, 1)) == utc(2026, 7, 1))
    }

    @Test("both 0 and 7 mean Sunday")
    func sunday() throws {
        #expect(try CronSchedule("0 0 * * 7") == CronSchedule("0 0 * * 0"))
        #expect(try CronSchedule("0 0 * * 5-7") == CronSchedule("0 0 * * 0,5,6"))
        #expect(try next("0 0 * * 7", after: utc(2026, 3, 1)) == utc(2026, 3, 8))
        #expect(try CronSchedule("0 0 * * */2") == CronSchedule("0 0 * * 0,2,4,6"))
    }

    @Test("extra whitespace between fields is allowed")
    func whitespace() throws {
        #expect(try CronSchedule("  0\t0  * *   * \n") == CronSchedule("0 0 * * *"))
    }

    @Test("description is the expression as written; equality compares firings")
    func descriptionAndEquality() throws {
        #expect(try CronSchedule("*/5 * * * *").description == "*/5 * * * *")
        #expect(try CronSchedule(" @daily ").description == "@daily")
        #expect(try CronSchedule("@daily") == CronSchedule("0 0 * * *"))
        #expect(try CronSchedule("0 0 * * *") != CronSchedule("0 1 * * *"))
        // Restricting day-of-month changes the day rule even if it lists every day.
        #expect(try CronSchedule("0 0 1-31 * 1") != CronSchedule("0 0 * * 1"))
    }
}

@Suite("Cron: macros")
struct CronMacroTests {
    @Test("each macro equals its expansion", arguments: [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@DAILY", "0 0 * * *"),
    ])
    func expansion(macro: String, expansion: String) throws {
        #expect(try CronSchedule(macro) == CronSchedule(expansion))
    }

    @Test("each macro fires when expected")
    func firings() throws {
        let start = utc(2026, 3, 1, 10, 30)
        #expect(try next("@yearly", after: start) == utc(2027, 1, 1))
        #expect(try next("@annually", after: start) == utc(2027, 1, 1))
        #expect(try next("@monthly", after: start) == utc(2026, 4, 1))
        #expect(try next("@weekly", after: start) == utc(2026, 3, 8))
        #expect(try next("@daily", after: start) == utc(2026, 3, 2))
        #expect(try next("@midnight", after: start) == utc(2026, 3, 2))
        #expect(try next("@hourly", after: start) == utc(2026, 3, 1, 11, 0))
    }
}

@Suite("Cron: days and calendar")
struct CronCalendarTests {
    @Test("day-of-month and day-of-week both restricted: either matches")
    func dayRuleOr() throws {
        // 2026-01-01 is a Thursday; the 2nd a Friday; the 13th a Tuesday.
        #expect(try firings("0 0 13 * FRI", after: utc(2026, 1, 1), count: 4)
            == [utc(2026, 1, 2), utc(2026, 1, 9), utc(2026, 1, 13), utc(2026, 1, 16)])
    }

    @Test("only one of them restricted: it alone decides")
    func dayRuleAnd() throws {
        #expect(try next("0 0 13 * *", after: utc(2026, 1, 1)) == utc(2026, 1, 13))
        #expect(try next("0 0 * * FRI", after: utc(2026, 1, 12)) == utc(2026, 1, 16))
        // A day of the month within a given month.
        #expect(try next("0 0 13 3 *", after: utc(2026, 1, 1)) == utc(2026, 3, 13))
    }

    @Test("29 February waits for the next leap year")
    func leapDay() throws {
        #expect(try next("0 0 29 2 *", after: utc(2027, 3, 1)) == utc(2028, 2, 29))
        #expect(try next("0 0 29 2 *", after: utc(2028, 2, 28, 23, 59)) == utc(2028, 2, 29))
        // 2100 is not a leap year: eight years between 29ths of February.
        #expect(try next("0 0 29 2 *", after: utc(2097, 3, 1)) == utc(2104, 2, 29))
    }

    @Test("month and year rollover")
    func rollover() throws {
        #expect(try next("0 0 1 * *", after: utc(2026, 12, 15)) == utc(2027, 1, 1))
        #expect(try next("59 23 31 12 *", after: utc(2026, 12, 31, 23, 59)) == utc(2027, 12, 31, 23, 59))
        #expect(try next("* * * * *", after: utc(2026, 12, 31, 23, 59, 59)) == utc(2027, 1, 1))
        #expect(try next("0 0 31 * *", after: utc(2026, 4, 1)) == utc(2026, 5, 31))
        #expect(try next("30 * * * *", after: utc(2026, 1, 31, 23, 45)) == utc(2026, 2, 1, 0, 30))
    }

    @Test("impossible dates never fire")
    func impossible() throws {
        #expect(try next("0 0 30 2 *", after: utc(2026, 1, 1)) == nil)
        #expect(try next("0 0 31 4,6,9,11 *", after: utc(2026, 1, 1)) == nil)
    }

    @Test("the search skips ahead instead of walking minute by minute")
    func efficiency() throws {
        // Eight years without a 30 February: minute by minute that is over 4 million candidates;
        // skipping whole months and days, at most 9 years × (12 months + 31 days).
        let never = try CronSchedule("0 0 30 2 *").search(after: utc(2026, 1, 1))
        #expect(never.next == nil)
        #expect(never.steps <= 9 * (12 + 31), "\(never.steps) candidates")
        // The last minute of the year, from its first: months, then days, then the hour and minute.
        let last = try CronSchedule("59 23 31 12 *").search(after: utc(2026, 1, 1))
        #expect(last.next == utc(2026, 12, 31, 23, 59))
        #expect(last.steps <= 11 + 31 + 3, "\(last.steps) candidates")
    }
}

@Suite("Cron: errors")
struct CronErrorTests {
    @Test("invalid expressions name the field and the problem", arguments: [
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month field: 32 is out of range 1-31"),
        ("* * * 13 *", "month field: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("* * * FOO *", "month field: 'FOO' is not a number or a name"),
        ("* * * * MONDAY", "day-of-week field: 'MONDAY' is not a number or a name"),
        ("x * * * *", "minute field: 'x' is not a number"),
        ("30-10 * * * *", "minute field: range 30-10 goes backwards"),
        ("*/0 * * * *", "minute field: step '0' must be a positive number"),
        ("*/x * * * *", "minute field: step 'x' must be a positive number"),
        ("1/2/3 * * * *", "minute field: '1/2/3' has more than one step"),
        ("1,,2 * * * *", "minute field: empty list element in '1,,2'"),
        ("-5 * * * *", "minute field: '-5' is not a valid range"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"),
        ("* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), found 0"),
        ("@reboot", "unknown macro @reboot (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"),
    ])
    func invalid(expression: String, message: String) {
        #expect(errorMessage(expression) == message)
    }

    @Test("the error's description is its message")
    func description() {
        #expect(CronError("minute field: bad").description == "minute field: bad")
    }
}
