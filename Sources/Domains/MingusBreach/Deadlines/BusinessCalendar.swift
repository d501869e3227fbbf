public import Foundation
import MingusCore

/// A day on the proleptic Gregorian calendar, with no time and no zone.
public struct LocalDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(_ year: Int, _ month: Int, _ day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Days since 1970-01-01.
    public var dayNumber: Int { RFC3339.daysFromCivil(year, month, day) }

    /// The day `dayNumber` days after 1970-01-01.
    public init(dayNumber: Int) {
        (year, month, day) = RFC3339.civil(fromDays: dayNumber)
    }

    /// 1 Monday … 7 Sunday (ISO 8601).
    public var weekday: Int {
        let monday0 = (dayNumber + 3) % 7 // 1970-01-01 was a Thursday.
        return (monday0 < 0 ? monday0 + 7 : monday0) + 1
    }

    public var isWeekend: Bool { weekday >= 6 }

    public func adding(days: Int) -> LocalDate { LocalDate(dayNumber: dayNumber + days) }

    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool { lhs.dayNumber < rhs.dayNumber }

    public var description: String {
        let text = [year, month, day].map { String($0) }
        return "\(text[0])-\(text[1].count == 1 ? "0" : "")\(text[1])-\(text[2].count == 1 ? "0" : "")\(text[2])"
    }

    /// The day `instant` falls on in `zone`.
    public init(_ instant: Date, in zone: TimeZone) {
        let seconds = Int(instant.timeIntervalSince1970.rounded(.down)) + zone.secondsFromGMT(for: instant)
        self.init(dayNumber: Int((Double(seconds) / 86_400).rounded(.down)))
    }

    /// The first instant of this day in `zone`: its local midnight, or the first local time after
    /// it where a change of offset skips midnight.
    public func start(in zone: TimeZone) -> Date {
        let localMidnight = Double(dayNumber) * 86_400
        // The offsets in force around the day; the earliest instant they give that falls on this day.
        let offsets = Set([-86_400.0, 0, 86_400].map { Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: localMidnight + $0))) })
        let candidates = offsets.map { Date(timeIntervalSince1970: localMidnight - $0) }.sorted()
        return candidates.first { LocalDate($0, in: zone) == self } ?? candidates.last!
    }

    /// The last whole second of this day in `zone` (23:59:59 local time).
    public func end(in zone: TimeZone) -> Date {
        adding(days: 1).start(in: zone).addingTimeInterval(-1)
    }

    /// The `n`th weekday (1 Monday … 7 Sunday) of a month: `ordinal` 1 is the first, -1 the last.
    public static func nth(_ ordinal: Int, weekday: Int, of month: Int, _ year: Int) -> LocalDate {
        if ordinal > 0 {
            let first = LocalDate(year, month, 1)
            let offset = (weekday - first.weekday + 7) % 7
            return first.adding(days: offset + 7 * (ordinal - 1))
        }
        let next = month == 12 ? LocalDate(year + 1, 1, 1) : LocalDate(year, month + 1, 1)
        let last = next.adding(days: -1)
        let offset = (last.weekday - weekday + 7) % 7
        return last.adding(days: -offset - 7 * (-ordinal - 1))
    }
}

/// Which days count as business days: Monday to Friday, except a calendar's holidays.
public enum BusinessCalendar: String, Sendable, CaseIterable {
    /// The legal public holidays of 5 U.S.C. 6103(a), on their observed days.
    case usFederal = "us_federal"
    /// Every Monday to Friday.
    case weekdays

    public func isBusinessDay(_ date: LocalDate) -> Bool {
        guard !date.isWeekend else { return false }
        switch self {
        case .weekdays: return true
        case .usFederal: return USFederalHolidays.holiday(on: date) == nil
        }
    }

    /// The day `count` business days after `date` (the day itself not counted).
    public func adding(businessDays count: Int, to date: LocalDate) -> LocalDate {
        var day = date
        var left = count
        while left > 0 {
            day = day.adding(days: 1)
            if isBusinessDay(day) { left -= 1 }
        }
        return day
    }
}

/// The US federal holidays of 5 U.S.C. 6103(a) for any year, with the days they are observed
/// on: a holiday on a Saturday is observed the Friday before, one on a Sunday the Monday after
/// (Executive Order 11582 and 5 U.S.C. 6103(b)). So New Year's Day of one year may be observed on
/// 31 December of the year before.
public enum USFederalHolidays {
    /// One holiday of one year.
    public struct Holiday: Sendable, Equatable {
        public var name: String
        /// The day the statute names.
        public var date: LocalDate
        /// The day offices close for it.
        public var observed: LocalDate
    }

    /// The holidays whose date falls in `year`, in date order. Juneteenth counts from 2021,
    /// Martin Luther King Jr.'s Birthday from 1986; earlier years follow the statute as it stands.
    public static func holidays(in year: Int) -> [Holiday] {
        var days: [(String, LocalDate)] = [("New Year's Day", LocalDate(year, 1, 1))]
        if year >= 1986 { days.append(("Birthday of Martin Luther King, Jr.", .nth(3, weekday: 1, of: 1, year))) }
        days.append(("Washington's Birthday", .nth(3, weekday: 1, of: 2, year)))
        days.append(("Memorial Day", .nth(-1, weekday: 1, of: 5, year)))
        if year >= 2021 { days.append(("Juneteenth National Independence Day", LocalDate(year, 6, 19))) }
        days.append(("Independence Day", LocalDate(year, 7, 4)))
        days.append(("Labor Day", .nth(1, weekday: 1, of: 9, year)))
        days.append(("Columbus Day", .nth(2, weekday: 1, of: 10, year)))
        days.append(("Veterans Day", LocalDate(year, 11, 11)))
        days.append(("Thanksgiving Day", .nth(4, weekday: 4, of: 11, year)))
        days.append(("Christmas Day", LocalDate(year, 12, 25)))
        return days.map { name, date in
            let observed = switch date.weekday {
            case 6: date.adding(days: -1)
            case 7: date.adding(days: 1)
            default: date
            }
            return Holiday(name: name, date: date, observed: observed)
        }
    }

    /// The holiday observed on `date`, if any.
    public static func holiday(on date: LocalDate) -> Holiday? {
        // 31 December may be the observed New Year's Day of the next year.
        let candidates = date.month == 12 && date.day == 31 ? holidays(in: date.year) + holidays(in: date.year + 1).prefix(1)
                                                              : holidays(in: date.year)
        return candidates.first { $0.observed == date }
    }
}
