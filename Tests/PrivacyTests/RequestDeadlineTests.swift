import Foundation
import MingusBreach
import MingusPrivacy
import Testing

@Suite("Data-subject request deadlines (Art. 12(3))")
struct RequestDeadlineTests {
    let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    @Test("one month from receipt ends with the same date of the next month, or its last day")
    func oneMonth() {
        let deadlines = RequestDeadlines()
        #expect(deadlines.due(receivedAt: date("2026-11-27T10:00:00Z")) == date("2026-12-27T23:59:59Z"))
        #expect(deadlines.due(receivedAt: date("2027-01-31T08:00:00Z")) == date("2027-02-28T23:59:59Z"))
        #expect(deadlines.due(receivedAt: date("2028-01-31T08:00:00Z")) == date("2028-02-29T23:59:59Z"))
        #expect(deadlines.due(receivedAt: date("2026-12-15T23:30:00Z")) == date("2027-01-15T23:59:59Z"))
    }

    @Test("the extension adds two further months to the original deadline")
    func extended() {
        let deadlines = RequestDeadlines()
        let due = deadlines.due(receivedAt: date("2026-11-27T10:00:00Z"))
        #expect(deadlines.extended(originalDue: due) == date("2027-02-27T23:59:59Z"))
        // 31 December + 2 months: the last day of February.
        #expect(deadlines.extended(originalDue: date("2026-12-31T23:59:59Z")) == date("2027-02-28T23:59:59Z"))
    }

    @Test("reminders: one per lead time ahead, one at once for lead times past, the overdue one at the deadline")
    func reminders() {
        let deadlines = RequestDeadlines(reminderLeadTimes: [.seconds(7 * 86_400), .seconds(3 * 86_400), .seconds(86_400)])
        let now = date("2026-11-27T12:00:00Z")
        let far = deadlines.reminders(deadline: now.addingTimeInterval(10 * 86_400), now: now)
        #expect(far.map(\.before) == [7 * 86_400, 3 * 86_400, 86_400, 0])
        let near = deadlines.reminders(deadline: now.addingTimeInterval(2 * 86_400), now: now)
        #expect(near.map(\.before) == [86_400, 3 * 86_400, 0])
        #expect(near[1].at == now)
        let past = deadlines.reminders(deadline: now.addingTimeInterval(-60), now: now)
        #expect(past.map(\.before) == [0])
        #expect(RequestDeadlines.leadTimes("7d,3d,12h") == [.seconds(7 * 86_400), .seconds(3 * 86_400), .seconds(12 * 3600)])
        #expect(RequestDeadlines.leadTimes("7x") == nil)
    }
}
