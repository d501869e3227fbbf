public import Foundation
public import MingusBreach

/// Deadlines of data-subject requests (GDPR Art. 12(3)), on the breach domain's calendar
/// (`LocalDate`): "within one month of receipt of the request", extendable "by two further
/// months". Periods in months follow Regulation 1182/71 Art. 3(2)(c): the period ends with the
/// expiry of the day of the last month that has the same date as the day of receipt, or with the
/// last day of that month when it has no such date (31 January + one month is 28 or 29
/// February). The day ends at 23:59:59 in `zone` (UTC unless configured).
public struct RequestDeadlines: Sendable {
    public var zone: TimeZone
    /// How long before a deadline reminders fire; the overdue alert fires at the deadline.
    public var reminderLeadTimes: [Duration]

    public init(zone: TimeZone = TimeZone(identifier: "UTC")!,
                reminderLeadTimes: [Duration] = [.seconds(7 * 86_400), .seconds(3 * 86_400), .seconds(86_400)]) {
        self.zone = zone
        self.reminderLeadTimes = reminderLeadTimes.sorted(by: >)
    }

    /// The end of the day `months` months after the day `start` falls on.
    public func deadline(from start: Date, months: Int) -> Date {
        let day = LocalDate(start, in: zone)
        return Self.adding(months: months, to: day).end(in: zone)
    }

    /// The one-month deadline of a request received at `receivedAt`.
    public func due(receivedAt: Date) -> Date { deadline(from: receivedAt, months: 1) }

    /// The deadline after the one extension: two further months after the original deadline's day.
    public func extended(originalDue: Date) -> Date { deadline(from: originalDue, months: 2) }

    /// The same date `months` later, or the last day of that month when it has no such date.
    public static func adding(months: Int, to day: LocalDate) -> LocalDate {
        let index = day.year * 12 + (day.month - 1) + months
        let year = index / 12, month = index % 12 + 1
        let last = LocalDate(month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1).adding(days: -1).day
        return LocalDate(year, month, min(day.day, last))
    }

    /// When each reminder of `deadline` fires, seen from `now`: one per lead time still ahead,
    /// one at once standing for the lead times already past (if the deadline is still ahead),
    /// and the overdue one at the deadline (`before` 0). In seconds before the deadline.
    public func reminders(deadline: Date, now: Date) -> [(before: Int, at: Date)] {
        var reminders: [(before: Int, at: Date)] = []
        var passed: Int?
        for lead in reminderLeadTimes {
            let seconds = Int(lead.components.seconds)
            let at = deadline.addingTimeInterval(-Double(seconds))
            if at > now { reminders.append((seconds, at)) } else { passed = seconds }
        }
        if let passed, deadline > now { reminders.append((passed, now)) }
        reminders.append((0, deadline))
        return reminders
    }

    /// Parses `7d,3d,1d` (units `d`, `h`, `m`, `s`); nil when an item is not a positive whole
    /// number of one of them.
    public static func leadTimes(_ text: String) -> [Duration]? {
        var leads: [Duration] = []
        for item in text.split(separator: ",") {
            let item = item.trimmingCharacters(in: .whitespaces)
            guard let unit = item.last, let value = Int(item.dropLast()), value > 0 else { return nil }
            switch unit {
            case "d": leads.append(.seconds(value * 86_400))
            case "h": leads.append(.seconds(value * 3600))
            case "m": leads.append(.seconds(value * 60))
            case "s": leads.append(.seconds(value))
            default: return nil
            }
        }
        return leads.isEmpty ? nil : leads
    }
}
