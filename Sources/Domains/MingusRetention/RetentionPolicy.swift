import Foundation

/// A retention period as policies state it: years, months and days (ISO 8601 `P7Y`, `P12M`, `P90D`).
public struct RetentionPeriod: Sendable, Equatable, CustomStringConvertible {
    public var years: Int
    public var months: Int
    public var days: Int

    public init(years: Int = 0, months: Int = 0, days: Int = 0) {
        self.years = years
        self.months = months
        self.days = days
    }

    /// Parses `PnYnMnD` (at least one part, each 0-9999); nil otherwise.
    public init?(iso8601 text: String) {
        guard text.hasPrefix("P"), text.count > 1 else { return nil }
        var years = 0, months = 0, days = 0
        var number = ""
        var seen = Set<Character>()
        for character in text.dropFirst() {
            if character.isASCII && character.isNumber {
                number.append(character)
                continue
            }
            guard let value = Int(number), number.count <= 4, !seen.contains(character) else { return nil }
            switch character {
            case "Y" where seen.isEmpty: years = value
            case "M" where !seen.contains("D"): months = value
            case "D": days = value
            default: return nil
            }
            seen.insert(character)
            number = ""
        }
        guard number.isEmpty, !seen.isEmpty else { return nil }
        self.init(years: years, months: months, days: days)
    }

    /// Its length in days at 365.25 days a year (for comparing with legal floors).
    public var approximateDays: Double { Double(years) * 365.25 + Double(months) * 30.4375 + Double(days) }

    /// `P7Y`, `P1Y6M`, `P90D`.
    public var description: String {
        var text = "P"
        if years > 0 { text += "\(years)Y" }
        if months > 0 { text += "\(months)M" }
        if days > 0 || text == "P" { text += "\(days)D" }
        return text
    }

    /// The PostgreSQL interval literal (`7 years 0 mons 0 days`).
    public var interval: String { "\(years) years \(months) mons \(days) days" }

    /// Reads PostgreSQL's interval output in its default style (`7 years`, `1 year 6 mons`, `90 days`, `24:00:00`).
    public init?(postgres text: String) {
        var years = 0, months = 0, days = 0
        let parts = text.split(separator: " ")
        var index = 0
        while index < parts.count {
            if parts[index].contains(":") {
                let hours = Int(parts[index].split(separator: ":").first ?? "") ?? 0
                days += hours / 24
                index += 1
                continue
            }
            guard index + 1 < parts.count, let value = Int(parts[index]) else { return nil }
            switch parts[index + 1] {
            case "year", "years": years = value
            case "mon", "mons": months = value
            case "day", "days": days = value
            default: return nil
            }
            index += 2
        }
        self.init(years: years, months: months, days: days)
    }
}

/// The shortest retention the law allows: by standard, SOX (SEC 17 CFR 210.2-06) 7 years and HIPAA
/// (164.316(b)(2)) 6 years; by data type, the audit trail 12 months (PCI DSS 10.5.1) whatever
/// standard its policy names. A policy under a floor that applies to it is refused.
public enum RetentionFloor {
    public static let byStandard: [String: (period: RetentionPeriod, rule: String)] = [
        "SOX": (RetentionPeriod(years: 7), "SOX / SEC 17 CFR 210.2-06: 7 years"),
        "HIPAA": (RetentionPeriod(years: 6), "HIPAA 164.316(b)(2): 6 years"),
    ]
    public static let byDataType: [String: (period: RetentionPeriod, rule: String)] = [
        "audit_event": (RetentionPeriod(months: 12), "PCI DSS 10.5.1: audit logs 12 months"),
    ]

    /// The longest floor a policy of `dataType` under `standard` breaks with `period`, if any.
    public static func violated(standard: String, dataType: String, period: RetentionPeriod) -> (period: RetentionPeriod, rule: String)? {
        [byStandard[standard.uppercased()], byDataType[dataType]].compactMap { $0 }
            // Half a day of slack: P2557D is seven years, whatever the leap days.
            .filter { period.approximateDays + 0.5 < $0.period.approximateDays }
            .max { $0.period.approximateDays < $1.period.approximateDays }
    }
}

/// What a retention policy does with rows past their date. Each data type supports some.
public enum RetentionAction: String, Sendable, CaseIterable, Codable {
    case archiveThenDelete = "archive_then_delete"
    case delete
    case anonymize
    case cryptoErase = "crypto_erase"
}
