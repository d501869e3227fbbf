import Foundation
@testable import MingusBreach
import Testing
import TestSupport

private func time(_ text: String) -> Date {
    try! Date(text, strategy: .iso8601)
}

private let newYork = TimeZone(identifier: "America/New_York")!

/// The rules as shipped, read once.
private let rules = try! BreachRules.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/breach-rules.yaml").path)

/// A breach with the given facts changed from a plain base: a US controller and merchant, high
/// severity, unencrypted personal data, aware at noon New York time on Wednesday 25 November 2026.
private func breach(_ change: (inout BreachFacts) -> Void = { _ in }) -> BreachFacts {
    var facts = BreachFacts(
        severity: .high, discoveredAt: time("2026-11-25T14:00:00Z"), awareAt: time("2026-11-25T17:00:00Z"),
        categories: ["personal_data"], dataEncrypted: false, keyCompromised: false, personsAffected: 100,
        jurisdictions: ["US"], roles: ["controller"])
    change(&facts)
    return facts
}

private func regimes(_ facts: BreachFacts) -> [String] {
    rules.assess(facts).map(\.regime)
}

private func obligation(_ regime: String, _ facts: BreachFacts) -> ObligationDraft? {
    rules.assess(facts).first { $0.regime == regime }
}

@Suite("Breach deadlines: business days, federal holidays, periods")
struct BusinessCalendarTests {
    @Test("local dates convert to and from day numbers and know their weekdays")
    func localDates() {
        #expect(LocalDate(1970, 1, 1).dayNumber == 0)
        #expect(LocalDate(1970, 1, 1).weekday == 4)
        #expect(LocalDate(2026, 11, 26).weekday == 4)
        #expect(LocalDate(2000, 2, 29).adding(days: 1) == LocalDate(2000, 3, 1))
        #expect(LocalDate(2100, 2, 28).adding(days: 1) == LocalDate(2100, 3, 1))
        #expect(LocalDate(1969, 12, 31).dayNumber == -1)
        for number in stride(from: -800_000, through: 800_000, by: 997) {
            #expect(LocalDate(dayNumber: number).dayNumber == number)
        }
    }

    @Test("every federal holiday of 2026 and 2027 on the day it is observed, weekend dates moved")
    func holidays() {
        let observed2026 = USFederalHolidays.holidays(in: 2026).map { "\($0.observed)" }
        #expect(observed2026 == ["2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-06-19", "2026-07-03",
                                 "2026-09-07", "2026-10-12", "2026-11-11", "2026-11-26", "2026-12-25"])
        let in2027 = Dictionary(uniqueKeysWithValues: USFederalHolidays.holidays(in: 2027).map { ($0.name, "\($0.observed)") })
        #expect(in2027["Juneteenth National Independence Day"] == "2027-06-18") // Saturday → Friday
        #expect(in2027["Independence Day"] == "2027-07-05") // Sunday → Monday
        #expect(in2027["Christmas Day"] == "2027-12-24") // Saturday → Friday
        // 1 January 2028 is a Saturday: observed on Friday 31 December 2027.
        #expect(USFederalHolidays.holiday(on: LocalDate(2027, 12, 31))?.name == "New Year's Day")
        #expect(USFederalHolidays.holiday(on: LocalDate(2021, 12, 31))?.name == "New Year's Day")
        #expect(USFederalHolidays.holiday(on: LocalDate(2026, 12, 31)) == nil)
        // Juneteenth only from 2021; MLK Day only from 1986.
        #expect(USFederalHolidays.holidays(in: 2020).contains { $0.name.hasPrefix("Juneteenth") } == false)
        #expect(USFederalHolidays.holidays(in: 1985).count == 9)
        #expect(USFederalHolidays.holidays(in: 2030).count == 11)
        // Memorial Day is the last Monday even in a month with five; Thanksgiving the fourth Thursday.
        #expect(USFederalHolidays.holidays(in: 2027).first { $0.name == "Memorial Day" }?.observed == LocalDate(2027, 5, 31))
        #expect(USFederalHolidays.holidays(in: 2029).first { $0.name == "Thanksgiving Day" }?.observed == LocalDate(2029, 11, 22))
    }

    @Test("business days skip weekends and observed holidays, across a year end")
    func businessDays() {
        let calendar = BusinessCalendar.usFederal
        // Wednesday before Thanksgiving: Thu is the holiday, then Fri, Mon, Tue, Wed.
        #expect(calendar.adding(businessDays: 4, to: LocalDate(2026, 11, 25)) == LocalDate(2026, 12, 2))
        // Thursday 2 July 2026: Friday 3 July is Independence Day observed.
        #expect(calendar.adding(businessDays: 3, to: LocalDate(2026, 7, 2)) == LocalDate(2026, 7, 8))
        // Thursday 30 December 2027: Friday 31 December is New Year's Day 2028 observed.
        #expect(calendar.adding(businessDays: 3, to: LocalDate(2027, 12, 30)) == LocalDate(2028, 1, 5))
        // From a Saturday, Monday is the first business day.
        #expect(calendar.adding(businessDays: 1, to: LocalDate(2026, 11, 28)) == LocalDate(2026, 11, 30))
        #expect(BusinessCalendar.weekdays.adding(businessDays: 4, to: LocalDate(2026, 11, 25)) == LocalDate(2026, 12, 1))
    }

    @Test("a day ends at 23:59:59 local time, also on the days clocks change")
    func dayEnds() {
        #expect(LocalDate(2026, 12, 2).end(in: newYork) == time("2026-12-03T04:59:59Z"))
        #expect(LocalDate(2026, 7, 8).end(in: newYork) == time("2026-07-09T03:59:59Z"))
        // 8 March 2026 has 23 hours in New York, 1 November 2026 has 25.
        #expect(LocalDate(2026, 3, 8).start(in: newYork) == time("2026-03-08T05:00:00Z"))
        #expect(LocalDate(2026, 3, 8).end(in: newYork) == time("2026-03-09T03:59:59Z"))
        #expect(LocalDate(2026, 11, 1).end(in: newYork) == time("2026-11-02T04:59:59Z"))
        #expect(LocalDate(time("2026-11-02T04:59:59Z"), in: newYork) == LocalDate(2026, 11, 1))
        #expect(LocalDate(time("2026-11-02T05:00:00Z"), in: newYork) == LocalDate(2026, 11, 2))
        // A zone where midnight itself is skipped (Chile moves from 00:00 to 01:00 in September).
        let santiago = TimeZone(identifier: "America/Santiago")!
        let start = LocalDate(2026, 9, 6).start(in: santiago)
        #expect(LocalDate(start, in: santiago) == LocalDate(2026, 9, 6))
        #expect(LocalDate(start.addingTimeInterval(-1), in: santiago) == LocalDate(2026, 9, 5))
    }
}

@Suite("Breach rules: each regime's thresholds at their edges, clocks and periods")
struct BreachRulesTests {
    @Test("the shipped rules load, with a version and every regime of the reference table")
    func shippedRules() {
        #expect(!rules.version.isEmpty)
        let ids = Set(rules.regimes.map(\.id))
        for id in ["gdpr_art33", "gdpr_art34", "hipaa_404", "hipaa_406", "hipaa_408", "hipaa_408_annual", "pci_visa", "pci_mastercard",
                   "pci_acquirer", "ftc_safeguards", "sec_8k_105", "nydfs_500_17", "colorado_individuals", "colorado_ag",
                   "florida_individuals", "florida_ag", "texas_individuals", "texas_ag"] {
            #expect(ids.contains(id), "missing \(id)")
        }
    }

    @Test("GDPR: Art. 33 in 72 hours from awareness; Art. 34 only for high risk and not for unintelligible data")
    func gdpr() throws {
        let eu = breach { $0.jurisdictions = ["DE"] }
        let art33 = try #require(obligation("gdpr_art33", eu))
        #expect(art33.deadline == time("2026-11-28T17:00:00Z"))
        #expect(art33.notify == "supervisory_authority")
        #expect(regimes(eu).contains("gdpr_art34"))
        #expect(obligation("gdpr_art34", eu)?.deadline == nil)
        #expect(obligation("gdpr_art34", eu)?.target == time("2026-11-28T17:00:00Z"))
        #expect(!regimes(breach { $0.jurisdictions = ["DE"]; $0.severity = .medium }).contains("gdpr_art34"))
        let encrypted = breach { $0.jurisdictions = ["DE"]; $0.dataEncrypted = true }
        #expect(regimes(encrypted).contains("gdpr_art33"))
        #expect(!regimes(encrypted).contains("gdpr_art34"))
        #expect(regimes(breach { $0.jurisdictions = ["DE"]; $0.dataEncrypted = true; $0.keyCompromised = true }).contains("gdpr_art34"))
        #expect(!regimes(breach { $0.jurisdictions = ["US"] }).contains("gdpr_art33"))
        // A processor tells its controller instead.
        let processor = breach { $0.jurisdictions = ["FR"]; $0.roles = ["processor"] }
        #expect(regimes(processor).contains("gdpr_art33_2"))
        #expect(!regimes(processor).contains("gdpr_art33"))
    }

    @Test("HIPAA: 500 affected is the line between immediate and annual HHS notice; media above 500 in one state")
    func hipaa() throws {
        func health(_ persons: Int64, _ byState: [String: Int64] = [:]) -> BreachFacts {
            breach { $0.categories = ["health_data"]; $0.roles = ["covered_entity"]; $0.personsAffected = persons
                     $0.jurisdictions = ["US-NY", "US-NJ"]; $0.personsByJurisdiction = byState }
        }
        #expect(regimes(health(499)).contains("hipaa_408_annual"))
        #expect(!regimes(health(499)).contains("hipaa_408"))
        #expect(regimes(health(500)).contains("hipaa_408"))
        #expect(!regimes(health(500)).contains("hipaa_408_annual"))
        // Media: more than 500 residents of one state.
        #expect(!regimes(health(1000, ["US-NY": 500, "US-NJ": 500])).contains("hipaa_406"))
        #expect(regimes(health(1001, ["US-NY": 501, "US-NJ": 500])).contains("hipaa_406"))
        // Without per-state counts, every state may hold all of them.
        #expect(regimes(health(501)).contains("hipaa_406"))
        // 60 calendar days after discovery, to the end of that day in New York.
        #expect(obligation("hipaa_404", health(10))?.deadline == time("2027-01-25T04:59:59Z"))
        // PHI discovered later restarts the clock from then.
        var later = health(10)
        later.facts["phi_discovered"] = time("2026-12-01T15:00:00Z")
        #expect(obligation("hipaa_404", later)?.deadline == time("2027-01-31T04:59:59Z"))
        #expect(obligation("hipaa_404", later)?.clock == "fact:phi_discovered")
        // Under 500: 60 days after the end of the year of discovery (1 March, or 29 February in a leap year).
        #expect(obligation("hipaa_408_annual", health(10))?.deadline == time("2027-03-02T04:59:59Z"))
        var leap = health(10)
        leap.discoveredAt = time("2027-06-01T12:00:00Z")
        #expect(obligation("hipaa_408_annual", leap)?.deadline == time("2028-03-01T04:59:59Z"))
        // Encrypted PHI is secured: nothing to notify.
        #expect(regimes(breach { $0.categories = ["health_data"]; $0.roles = ["covered_entity"]; $0.dataEncrypted = true }).isEmpty)
        #expect(regimes(breach { $0.categories = ["health_data"]; $0.roles = ["business_associate"] }).contains("hipaa_410"))
    }

    @Test("card data: Mastercard in 24 hours, Visa in 3 business days, the acquirer at once")
    func cards() throws {
        let cards = breach { $0.categories = ["card_data"]; $0.roles = ["merchant"]; $0.awareAt = time("2026-07-02T16:00:00Z") }
        #expect(obligation("pci_mastercard", cards)?.deadline == time("2026-07-03T16:00:00Z"))
        #expect(obligation("pci_visa", cards)?.deadline == time("2026-07-09T03:59:59Z"))
        #expect(obligation("pci_acquirer", cards)?.target == time("2026-07-03T16:00:00Z"))
        #expect(!regimes(breach { $0.categories = ["card_data"]; $0.roles = ["controller"] }).contains("pci_visa"))
    }

    @Test("FTC Safeguards: 500 consumers of unencrypted customer information, 30 days after discovery")
    func ftc() {
        func institution(_ persons: Int64, encrypted: Bool = false, compromised: Bool = false) -> BreachFacts {
            breach { $0.roles = ["financial_institution"]; $0.personsAffected = persons; $0.dataEncrypted = encrypted; $0.keyCompromised = compromised }
        }
        #expect(!regimes(institution(499)).contains("ftc_safeguards"))
        #expect(regimes(institution(500)).contains("ftc_safeguards"))
        #expect(!regimes(institution(5000, encrypted: true)).contains("ftc_safeguards"))
        #expect(regimes(institution(5000, encrypted: true, compromised: true)).contains("ftc_safeguards"))
        #expect(obligation("ftc_safeguards", institution(500))?.deadline == time("2026-12-26T04:59:59Z"))
    }

    @Test("SEC 8-K waits for the materiality determination, then 4 business days; NYDFS runs from awareness until a determination")
    func determinations() throws {
        let registrant = breach { $0.roles = ["sec_registrant", "nydfs_licensee"] }
        #expect(!regimes(registrant).contains("sec_8k_105"))
        let nydfs = try #require(obligation("nydfs_500_17", registrant))
        #expect(nydfs.clock == "aware")
        #expect(nydfs.deadline == time("2026-11-28T17:00:00Z"))
        var determined = registrant
        determined.facts = ["materiality_determined": time("2026-11-25T15:00:00Z"), "incident_determined": time("2026-11-26T12:00:00Z")]
        let sec = try #require(obligation("sec_8k_105", determined))
        // Thanksgiving is not a business day: Fri, Mon, Tue, Wed.
        #expect(sec.deadline == time("2026-12-03T04:59:59Z"))
        #expect(sec.clock == "fact:materiality_determined")
        #expect(obligation("nydfs_500_17", determined)?.deadline == time("2026-11-29T12:00:00Z"))
    }

    @Test("state laws: residents notified; attorneys general from 500 (Colorado, Florida) and 250 (Texas)")
    func states() {
        func residents(_ state: String, _ count: Int64) -> BreachFacts {
            breach { $0.categories = ["card_data"]; $0.jurisdictions = [state]; $0.personsByJurisdiction = [state: count]
                     $0.personsAffected = count; $0.roles = ["controller"] }
        }
        #expect(!regimes(residents("US-TX", 249)).contains("texas_ag"))
        #expect(regimes(residents("US-TX", 250)).contains("texas_ag"))
        #expect(regimes(residents("US-TX", 1)).contains("texas_individuals"))
        #expect(!regimes(residents("US-CO", 499)).contains("colorado_ag"))
        #expect(regimes(residents("US-CO", 500)).contains("colorado_ag"))
        #expect(!regimes(residents("US-FL", 499)).contains("florida_ag"))
        #expect(regimes(residents("US-FL", 500)).contains("florida_ag"))
        // Texas: 60 days for residents, 30 for the attorney general.
        #expect(obligation("texas_individuals", residents("US-TX", 300))?.deadline == time("2027-01-25T04:59:59Z"))
        #expect(obligation("texas_ag", residents("US-TX", 300))?.deadline == time("2026-12-26T04:59:59Z"))
        // Plain personal data (a name and e-mail) is not the personal information these laws cover.
        #expect(!regimes(breach { $0.jurisdictions = ["US-TX"] }).contains("texas_individuals"))
    }

    @Test("hour periods are absolute across a DST change; day periods end on the local calendar")
    func dstPeriods() {
        let march = breach { $0.jurisdictions = ["DE", "US"]; $0.awareAt = time("2026-03-07T17:00:00Z"); $0.discoveredAt = time("2026-02-10T17:00:00Z")
                             $0.roles = ["controller", "financial_institution"]; $0.personsAffected = 600 }
        #expect(obligation("gdpr_art33", march)?.deadline == time("2026-03-10T17:00:00Z"))
        // 30 days after 10 February is 12 March, after clocks went forward: 23:59:59 EDT.
        #expect(obligation("ftc_safeguards", march)?.deadline == time("2026-03-13T03:59:59Z"))
    }

    @Test("a rules file with a mistake is refused with its line")
    func invalidRules() {
        func message(_ text: String) -> String {
            do {
                _ = try BreachRules.parse(text, file: "rules.yaml")
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let regime = "regimes:\n  - {id: x_rule, name: X, notify: someone, clock: aware, period: {hours: 1}, applies: %@}\n"
        #expect(message("version: '1'\n" + regime.replacingOccurrences(of: "%@", with: "{categories_any: [pets]}"))
                    .contains("rules.yaml:3: unknown data category 'pets'"))
        #expect(message("version: '1'\n" + regime.replacingOccurrences(of: "%@", with: "{persons_over: 5}"))
                    .contains("unknown key 'persons_over'"))
        #expect(message("version: '1'\n" + regime.replacingOccurrences(of: "%@", with: "{residents_at_least: 5}"))
                    .contains("residents_at_least needs jurisdictions_any"))
        #expect(message(regime.replacingOccurrences(of: "%@", with: "{}")).contains("version is required"))
        #expect(message("version: '1'\nregimes:\n  - {id: yy, name: Y, notify: z, clock: aware, period: {hours: 1, calendar_days: 2}}\n")
                    .contains("exactly one of"))
        #expect(message("version: '1'\ntime_zone: Mars/Olympus\n" + regime.replacingOccurrences(of: "%@", with: "{}"))
                    .contains("unknown time zone"))
    }
}
