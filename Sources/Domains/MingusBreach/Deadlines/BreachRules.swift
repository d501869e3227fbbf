public import Foundation
import MingusCore
import MingusRuntime

/// The words a breach report and the rules share: data categories, entity roles, severities.
public enum BreachVocabulary {
    public static let categories: Set<String> = [
        "personal_data", "contact_info", "health_data", "card_data", "credentials", "financial_records", "government_id", "biometric",
    ]
    public static let roles: Set<String> = [
        "controller", "processor", "covered_entity", "business_associate", "financial_institution", "sec_registrant",
        "broker_dealer", "nydfs_licensee", "merchant", "service_provider",
    ]
    /// The 50 states, DC and the territories, as `US-XX`.
    public static let usStates: Set<String> = Set("""
        AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR \
        PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP
        """.split(separator: " ").map { "US-\($0)" })

    /// Whether `code` is a country (ISO 3166-1 alpha-2, upper case) or a US state (`US-XX`).
    public static func isJurisdiction(_ code: String) -> Bool {
        if code.hasPrefix("US-") { return usStates.contains(code) }
        return code.utf8.count == 2 && code.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }
}

/// How bad a breach is; the order matters (`severity_at_least`).
public enum BreachSeverity: String, Sendable, Codable, CaseIterable, Comparable {
    case low, medium, high, critical

    public static func < (lhs: BreachSeverity, rhs: BreachSeverity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// What the deadline engine knows about a breach.
public struct BreachFacts: Sendable, Equatable {
    public var severity: BreachSeverity
    public var discoveredAt: Date
    public var awareAt: Date
    public var categories: Set<String>
    public var dataEncrypted: Bool
    public var keyCompromised: Bool
    public var personsAffected: Int64
    public var jurisdictions: [String]
    public var personsByJurisdiction: [String: Int64]
    public var roles: Set<String>
    /// Recorded clock-starting events (`materiality_determined` → when).
    public var facts: [String: Date]

    public init(severity: BreachSeverity, discoveredAt: Date, awareAt: Date, categories: Set<String>, dataEncrypted: Bool,
                keyCompromised: Bool, personsAffected: Int64, jurisdictions: [String], personsByJurisdiction: [String: Int64] = [:],
                roles: Set<String>, facts: [String: Date] = [:]) {
        self.severity = severity
        self.discoveredAt = discoveredAt
        self.awareAt = awareAt
        self.categories = categories
        self.dataEncrypted = dataEncrypted
        self.keyCompromised = keyCompromised
        self.personsAffected = personsAffected
        self.jurisdictions = jurisdictions
        self.personsByJurisdiction = personsByJurisdiction
        self.roles = roles
        self.facts = facts
    }

    /// Encrypted with a key nobody else has: unintelligible to whoever took it.
    public var unintelligible: Bool { dataEncrypted && !keyCompromised }

    /// Persons affected in `jurisdiction`: its own count, or every affected person when it has none.
    public func persons(in jurisdiction: String) -> Int64 {
        personsByJurisdiction[jurisdiction] ?? personsAffected
    }
}

/// One duty the rules derive from a breach's facts: whom to notify, why, and by when.
public struct ObligationDraft: Sendable, Equatable {
    public var regime: String
    public var regimeName: String
    public var notify: String
    /// Which facts made the regime apply.
    public var reason: String
    /// The event that starts the clock (`aware`, `discovered`, `fact:materiality_determined`).
    public var clock: String
    /// When it started; nil while the event has not happened.
    public var clockStartedAt: Date?
    /// The legal deadline, when there is one and the clock runs.
    public var deadline: Date?
    /// When it should be done by, for duties without a legal deadline.
    public var target: Date?
    /// The period in words (`72 hours`, `4 business days (us_federal, America/New_York)`).
    public var period: String
}

/// Why a rules file cannot be used.
public struct BreachRulesError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The versioned breach notification rules (`Contracts/breach-rules.yaml`): every regime, when it
/// applies, when its clock starts and how long it runs.
public struct BreachRules: Sendable {
    /// When a regime's clock starts.
    public indirect enum Clock: Sendable, Equatable {
        case aware, discovered
        /// A recorded fact; until it is recorded, the fallback (nil: no clock yet).
        case fact(String, otherwise: Clock?)
    }

    /// How long a regime's clock runs.
    public enum Period: Sendable, Equatable {
        case hours(Int)
        case calendarDays(Int)
        case businessDays(Int)
        case afterYearEndDays(Int)
        case withoutUndueDelay(targetHours: Int)
    }

    /// When a regime applies: every condition set must hold.
    public struct Conditions: Sendable {
        public var jurisdictionsAny: [String]?
        public var categoriesAny: Set<String>?
        public var rolesAny: Set<String>?
        public var severityAtLeast: BreachSeverity?
        public var personsAtLeast: Int64?
        public var personsBelow: Int64?
        public var residentsAtLeast: Int64?
        public var unlessEncrypted = false
        public var requiresFact: String?
    }

    /// One regime: whom it obliges the entity to notify, when it applies, and its clock.
    public struct Regime: Sendable {
        public var id: String
        public var name: String
        public var notify: String
        public var description: String
        public var conditions: Conditions
        public var clock: Clock
        public var period: Period
        public var timeZone: TimeZone
        public var calendar: BusinessCalendar
    }

    public var version: String
    public var regimes: [Regime]

    /// Reads and checks a rules file; every problem names its line.
    public static func load(path: String) throws -> BreachRules {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw BreachRulesError(message: "\(path): cannot read the breach rules: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// Parses the text of a rules file.
    public static func parse(_ text: String, file: String = "breach-rules.yaml") throws -> BreachRules {
        let root = try YAML.parse(text, file: file)
        let reader = RulesReader(file: file)
        let top = try reader.mapping(root, allowed: ["version", "time_zone", "calendar", "groups", "regimes"])
        guard let versionNode = top["version"]?.value else { throw reader.error(root, "version is required") }
        let version = try reader.string(versionNode)
        let defaultZone = try top["time_zone"].map { try reader.timeZone($0.value) } ?? TimeZone(identifier: "UTC")!
        let defaultCalendar = try top["calendar"].map { try reader.calendar($0.value) } ?? .usFederal
        var groups: [String: [String]] = [:]
        if let node = top["groups"]?.value {
            for entry in node.mapping ?? [] { groups[entry.key] = try reader.strings(entry.value) }
        }
        guard let regimeNodes = top["regimes"]?.value.sequence, !regimeNodes.isEmpty else {
            throw reader.error(root, "regimes must be a non-empty list")
        }
        var regimes: [Regime] = []
        for node in regimeNodes {
            let regime = try reader.regime(node, groups: groups, zone: defaultZone, calendar: defaultCalendar)
            guard !regimes.contains(where: { $0.id == regime.id }) else { throw reader.error(node, "regime \(regime.id) is defined twice") }
            regimes.append(regime)
        }
        return BreachRules(version: version, regimes: regimes)
    }

    /// Every obligation the facts give rise to, in the file's order of regimes.
    public func assess(_ facts: BreachFacts) -> [ObligationDraft] {
        regimes.compactMap { regime in
            guard let reasons = regime.matches(facts) else { return nil }
            let (clock, started) = regime.clockStart(facts)
            var draft = ObligationDraft(regime: regime.id, regimeName: regime.name, notify: regime.notify,
                                        reason: reasons.joined(separator: "; "), clock: clock, clockStartedAt: started,
                                        deadline: nil, target: nil, period: regime.periodText)
            if let started {
                switch regime.period {
                case .withoutUndueDelay(let hours): draft.target = started.addingTimeInterval(Double(hours) * 3600)
                default: draft.deadline = regime.deadline(from: started)
                }
            }
            return draft
        }
    }
}

extension BreachRules.Regime {
    /// Why the regime applies (one phrase per condition), or nil when it does not.
    func matches(_ facts: BreachFacts) -> [String]? {
        let conditions = self.conditions
        var reasons: [String] = []
        var matchedJurisdictions = facts.jurisdictions
        if let wanted = conditions.jurisdictionsAny {
            matchedJurisdictions = facts.jurisdictions.filter { code in wanted.contains { Self.jurisdiction(code, matches: $0) } }
            guard !matchedJurisdictions.isEmpty else { return nil }
            reasons.append("affects \(matchedJurisdictions.joined(separator: ", "))")
        }
        if let wanted = conditions.categoriesAny {
            let found = facts.categories.intersection(wanted).sorted()
            guard !found.isEmpty else { return nil }
            reasons.append("data: \(found.joined(separator: ", "))")
        }
        if let wanted = conditions.rolesAny {
            let found = facts.roles.intersection(wanted).sorted()
            guard !found.isEmpty else { return nil }
            reasons.append("role: \(found.joined(separator: ", "))")
        }
        if let least = conditions.severityAtLeast {
            guard facts.severity >= least else { return nil }
            reasons.append("severity \(facts.severity.rawValue) (at least \(least.rawValue))")
        }
        if let least = conditions.personsAtLeast {
            guard facts.personsAffected >= least else { return nil }
            reasons.append("\(facts.personsAffected) persons affected (at least \(least))")
        }
        if let below = conditions.personsBelow {
            guard facts.personsAffected < below else { return nil }
            reasons.append("\(facts.personsAffected) persons affected (fewer than \(below))")
        }
        if let least = conditions.residentsAtLeast {
            let over = matchedJurisdictions.filter { facts.persons(in: $0) >= least }
            guard !over.isEmpty else { return nil }
            let counts = over.map { code in
                facts.personsByJurisdiction[code].map { "\(code) \($0)" } ?? "\(code) up to \(facts.personsAffected) (no count of its own)"
            }
            reasons.append("residents: \(counts.joined(separator: ", ")) (at least \(least) in one)")
        }
        if conditions.unlessEncrypted {
            guard !facts.unintelligible else { return nil }
            reasons.append(facts.dataEncrypted ? "encrypted, but the key was compromised" : "data was not encrypted")
        }
        if let fact = conditions.requiresFact {
            guard let at = facts.facts[fact] else { return nil }
            reasons.append("\(fact) at \(JobEnvelope.formatTime(at))")
        }
        return reasons
    }

    /// Whether a breach's jurisdiction `code` is one a rule names: `EEA` members were expanded at
    /// load; `US` is the US or any state; `US-*` any state.
    static func jurisdiction(_ code: String, matches rule: String) -> Bool {
        switch rule {
        case "US": code == "US" || code.hasPrefix("US-")
        case "US-*": code.hasPrefix("US-")
        default: code == rule
        }
    }

    /// The clock's name and start, if it runs.
    func clockStart(_ facts: BreachFacts) -> (String, Date?) {
        func start(_ clock: BreachRules.Clock) -> (String, Date?) {
            switch clock {
            case .aware: ("aware", facts.awareAt)
            case .discovered: ("discovered", facts.discoveredAt)
            case .fact(let name, let otherwise):
                if let at = facts.facts[name] { ("fact:\(name)", at) } else if let otherwise { start(otherwise) } else { ("fact:\(name)", nil) }
            }
        }
        return start(clock)
    }

    /// The deadline of a clock started at `start`.
    func deadline(from start: Date) -> Date? {
        let day = LocalDate(start, in: timeZone)
        switch period {
        case .hours(let hours): return start.addingTimeInterval(Double(hours) * 3600)
        case .calendarDays(let days): return day.adding(days: days).end(in: timeZone)
        case .businessDays(let days): return calendar.adding(businessDays: days, to: day).end(in: timeZone)
        case .afterYearEndDays(let days): return LocalDate(day.year, 12, 31).adding(days: days).end(in: timeZone)
        case .withoutUndueDelay: return nil
        }
    }

    var periodText: String {
        switch period {
        case .hours(let hours): "\(hours) hours"
        case .calendarDays(let days): "\(days) calendar days (\(timeZone.identifier))"
        case .businessDays(let days): "\(days) business days (\(calendar.rawValue), \(timeZone.identifier))"
        case .afterYearEndDays(let days): "\(days) days after the end of the calendar year (\(timeZone.identifier))"
        case .withoutUndueDelay(let hours): "without undue delay (target \(hours) hours)"
        }
    }
}

/// Reads the rules file's nodes, naming the file and line of every problem.
private struct RulesReader {
    let file: String

    func error(_ node: YAMLNode, _ message: String) -> BreachRulesError {
        BreachRulesError(message: "\(file):\(node.line): \(message)")
    }

    func mapping(_ node: YAMLNode, allowed: Set<String>) throws -> [String: YAMLEntry] {
        guard let entries = node.mapping else { throw error(node, "expected a mapping") }
        var result: [String: YAMLEntry] = [:]
        for entry in entries {
            guard allowed.contains(entry.key) else {
                throw BreachRulesError(message: "\(file):\(entry.line): unknown key '\(entry.key)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            result[entry.key] = entry
        }
        return result
    }

    func string(_ node: YAMLNode) throws -> String {
        guard let text = node.scalar, !text.isEmpty else { throw error(node, "expected text") }
        return text
    }

    func strings(_ node: YAMLNode) throws -> [String] {
        guard let items = node.sequence else { throw error(node, "expected a list") }
        return try items.map(string)
    }

    func integer(_ node: YAMLNode) throws -> Int {
        guard let text = node.scalar, let value = Int(text), value >= 0 else { throw error(node, "expected a whole number") }
        return value
    }

    func timeZone(_ node: YAMLNode) throws -> TimeZone {
        let name = try string(node)
        guard let zone = TimeZone(identifier: name) else { throw error(node, "unknown time zone '\(name)'") }
        return zone
    }

    func calendar(_ node: YAMLNode) throws -> BusinessCalendar {
        let name = try string(node)
        guard let calendar = BusinessCalendar(rawValue: name) else {
            throw error(node, "unknown calendar '\(name)' (known: \(BusinessCalendar.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return calendar
    }

    /// A list of names, group names expanded, each checked against `known` (when given).
    func names(_ node: YAMLNode, groups: [String: [String]], known: Set<String>?, what: String) throws -> [String] {
        var names: [String] = []
        for item in try strings(node) {
            for name in groups[item] ?? [item] {
                if let known, !known.contains(name) {
                    throw error(node, "unknown \(what) '\(name)' (known: \(known.sorted().joined(separator: ", ")))")
                }
                names.append(name)
            }
        }
        return names
    }

    func regime(_ node: YAMLNode, groups: [String: [String]], zone: TimeZone, calendar defaultCalendar: BusinessCalendar) throws -> BreachRules.Regime {
        let fields = try mapping(node, allowed: ["id", "name", "notify", "description", "applies", "clock", "period", "time_zone", "calendar"])
        func required(_ key: String) throws -> YAMLNode {
            guard let value = fields[key]?.value else { throw error(node, "\(key) is required") }
            return value
        }
        let id = try string(try required("id"))
        guard id.range(of: "^[a-z][a-z0-9_]{1,63}$", options: .regularExpression) != nil else {
            throw error(node, "regime id '\(id)' must be lower-case letters, digits and _")
        }
        var conditions = BreachRules.Conditions()
        if let applies = fields["applies"]?.value {
            let entries = try mapping(applies, allowed: ["jurisdictions_any", "categories_any", "roles_any", "severity_at_least", "persons_at_least",
                                                         "persons_below", "residents_at_least", "unless_encrypted", "requires_fact"])
            if let value = entries["jurisdictions_any"]?.value {
                conditions.jurisdictionsAny = try names(value, groups: groups, known: nil, what: "jurisdiction")
                for code in conditions.jurisdictionsAny! where code != "US" && code != "US-*" && !BreachVocabulary.isJurisdiction(code) {
                    throw error(value, "'\(code)' is not a country code, US-XX state, US or US-*")
                }
            }
            if let value = entries["categories_any"]?.value {
                conditions.categoriesAny = Set(try names(value, groups: groups, known: BreachVocabulary.categories, what: "data category"))
            }
            if let value = entries["roles_any"]?.value {
                conditions.rolesAny = Set(try names(value, groups: groups, known: BreachVocabulary.roles, what: "role"))
            }
            if let value = entries["severity_at_least"]?.value {
                guard let severity = BreachSeverity(rawValue: try string(value)) else { throw error(value, "unknown severity") }
                conditions.severityAtLeast = severity
            }
            conditions.personsAtLeast = try entries["persons_at_least"].map { Int64(try integer($0.value)) }
            conditions.personsBelow = try entries["persons_below"].map { Int64(try integer($0.value)) }
            conditions.residentsAtLeast = try entries["residents_at_least"].map { Int64(try integer($0.value)) }
            if conditions.residentsAtLeast != nil && conditions.jurisdictionsAny == nil {
                throw error(applies, "residents_at_least needs jurisdictions_any (the jurisdictions whose residents count)")
            }
            if let value = entries["unless_encrypted"]?.value {
                guard let flag = value.scalar, flag == "true" || flag == "false" else { throw error(value, "expected true or false") }
                conditions.unlessEncrypted = flag == "true"
            }
            conditions.requiresFact = try entries["requires_fact"].map { try string($0.value) }
        }
        let regimeZone = try fields["time_zone"].map { try timeZone($0.value) } ?? zone
        return BreachRules.Regime(
            id: id, name: try string(try required("name")), notify: try string(try required("notify")),
            description: try fields["description"].map { try string($0.value) } ?? "", conditions: conditions,
            clock: try clock(try required("clock"), allowNone: false), period: try period(try required("period")),
            timeZone: regimeZone, calendar: try fields["calendar"].map { try calendar($0.value) } ?? defaultCalendar)
    }

    func clock(_ node: YAMLNode, allowNone: Bool) throws -> BreachRules.Clock {
        if let name = node.scalar {
            switch name {
            case "aware": return .aware
            case "discovered": return .discovered
            default: throw error(node, "clock must be aware, discovered or {fact: NAME, otherwise: ...}")
            }
        }
        let entries = try mapping(node, allowed: ["fact", "otherwise"])
        guard let fact = entries["fact"]?.value else { throw error(node, "a fact clock needs fact") }
        var fallback: BreachRules.Clock?
        if let otherwise = entries["otherwise"]?.value {
            fallback = otherwise.scalar == "none" ? nil : try clock(otherwise, allowNone: true)
            if case .fact = fallback { throw error(otherwise, "otherwise must be aware, discovered or none") }
        }
        return .fact(try string(fact), otherwise: fallback)
    }

    func period(_ node: YAMLNode) throws -> BreachRules.Period {
        let entries = try mapping(node, allowed: ["hours", "calendar_days", "business_days", "after_year_end_days", "without_undue_delay", "target_hours"])
        let kinds = entries.keys.filter { $0 != "target_hours" }
        guard kinds.count == 1, let kind = kinds.first, let value = entries[kind]?.value else {
            throw error(node, "period must have exactly one of hours, calendar_days, business_days, after_year_end_days, without_undue_delay")
        }
        switch kind {
        case "hours": return .hours(try integer(value))
        case "calendar_days": return .calendarDays(try integer(value))
        case "business_days": return .businessDays(try integer(value))
        case "after_year_end_days": return .afterYearEndDays(try integer(value))
        default:
            guard let target = entries["target_hours"]?.value else { throw error(node, "without_undue_delay needs target_hours") }
            return .withoutUndueDelay(targetHours: try integer(target))
        }
    }
}
