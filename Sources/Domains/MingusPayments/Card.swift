// Card data validation (PCI DSS).
//
// Nothing in this file ever puts a card number into a description, debug description, mirror or
// error message: interpolating any of these types into a log line shows masked or redacted text.

public import Foundation

// MARK: - Fields and errors

/// A field of a card payment request, named as in the HTTP API's JSON body.
public enum CardField: String, Sendable, CaseIterable {
    case cardNumber = "card_number"
    case expiryMonth = "expiry_month"
    case expiryYear = "expiry_year"
    case cvv = "cvv"
    case cardholderName = "cardholder_name"

    /// The field's name for a human reader, capitalised for the start of a sentence.
    var displayName: String {
        switch self {
        case .cardNumber: "Card number"
        case .expiryMonth: "Expiry month"
        case .expiryYear: "Expiry year"
        case .cvv: "CVV"
        case .cardholderName: "Cardholder name"
        }
    }

    /// What the field's length is counted in.
    var lengthUnit: String {
        switch self {
        case .cardNumber, .cvv, .expiryMonth, .expiryYear: "digits"
        case .cardholderName: "characters"
        }
    }
}

/// Why card data was refused, naming the field and the rule it breaks.
///
/// No case carries any part of the input, so neither `description` nor a reflection of the error
/// can ever reveal a card number.
public enum CardValidationError: Error, Equatable, CustomStringConvertible {
    /// The field contains a character it does not allow (for a card number, also a misplaced separator).
    case invalidCharacters(field: CardField)
    /// The field is too short or too long.
    case length(field: CardField, expected: ClosedRange<Int>)
    /// The card number fails the Luhn check digit test.
    case luhn
    /// The card number's length is not one its brand issues.
    case lengthForBrand(CardBrand)
    /// The expiry month is not between 1 and 12.
    case expiryMonth
    /// The expiry year is neither a 2-digit year nor a 4-digit year from 2000 to 2099.
    case expiryYear
    /// The card's expiry month is over.
    case expired
    /// The CVV does not have the number of digits the card brand uses.
    case cvvFormat(CardBrand)

    /// The name of the refused field in the HTTP API: `card_number`, `expiry_month`, `expiry_year`, `cvv` or `cardholder_name`.
    ///
    /// An expired card is reported against `expiry_year`.
    public var field: String {
        switch self {
        case .invalidCharacters(let field), .length(let field, _): field.rawValue
        case .luhn, .lengthForBrand: CardField.cardNumber.rawValue
        case .expiryMonth: CardField.expiryMonth.rawValue
        case .expiryYear, .expired: CardField.expiryYear.rawValue
        case .cvvFormat: CardField.cvv.rawValue
        }
    }

    /// The broken rule, for the HTTP API: `characters`, `length`, `luhn`, `length_for_brand`, `range`, `expired` or `format`.
    public var rule: String {
        switch self {
        case .invalidCharacters: "characters"
        case .length: "length"
        case .luhn: "luhn"
        case .lengthForBrand: "length_for_brand"
        case .expiryMonth, .expiryYear: "range"
        case .expired: "expired"
        case .cvvFormat: "format"
        }
    }

    /// A one-line explanation for a human reader, which never contains the refused input.
    public var description: String {
        switch self {
        case .invalidCharacters(.cardNumber):
            "Card number may contain only digits, with single spaces or hyphens between groups."
        case .invalidCharacters(.cardholderName):
            "Cardholder name may contain only letters, spaces, periods, apostrophes and hyphens, and must contain a letter."
        case .invalidCharacters(let field):
            "\(field.displayName) contains characters that are not allowed."
        case .length(let field, let expected) where expected.lowerBound == expected.upperBound:
            "\(field.displayName) must have \(expected.lowerBound) \(field.lengthUnit)."
        case .length(let field, let expected):
            "\(field.displayName) must have \(expected.lowerBound) to \(expected.upperBound) \(field.lengthUnit)."
        case .luhn:
            "Card number is not valid (Luhn check digit mismatch)."
        case .lengthForBrand(let brand):
            "Card number length is not valid for \(brand.displayName) cards."
        case .expiryMonth:
            "Expiry month must be between 1 and 12."
        case .expiryYear:
            "Expiry year must be 2 digits or a 4-digit year from 2000 to 2099."
        case .expired:
            "Card has expired."
        case .cvvFormat(.amex):
            "CVV must be 4 digits for American Express cards."
        case .cvvFormat(.unknown):
            "CVV must be 3 or 4 digits."
        case .cvvFormat(let brand):
            "CVV must be 3 digits for \(brand.displayName) cards."
        }
    }
}

// MARK: - Brand

/// A card network, detected from the issuer identification number (the leading digits of the PAN).
public enum CardBrand: String, Sendable, CaseIterable, Codable {
    case visa
    case mastercard
    case amex
    case discover
    case jcb
    case diners
    case unionpay
    case unknown

    /// The brand's name for a human reader.
    public var displayName: String {
        switch self {
        case .visa: "Visa"
        case .mastercard: "Mastercard"
        case .amex: "American Express"
        case .discover: "Discover"
        case .jcb: "JCB"
        case .diners: "Diners Club"
        case .unionpay: "UnionPay"
        case .unknown: "unknown brand"
        }
    }

    /// Whether the brand issues PANs of this many digits; for an unknown brand, any PAN length (12–19).
    public func isValidLength(_ length: Int) -> Bool {
        switch self {
        case .visa: [13, 16, 19].contains(length)
        case .mastercard: length == 16
        case .amex: length == 15
        case .discover, .jcb, .unionpay: (16...19).contains(length)
        case .diners: (14...19).contains(length)
        case .unknown: PAN.lengths.contains(length)
        }
    }

    /// The number of digits of the brand's card verification value.
    var cvvLengths: ClosedRange<Int> {
        switch self {
        case .amex: 4...4
        case .unknown: 3...4
        default: 3...3
        }
    }

    /// Issuer identification number ranges, longest prefix first: the first match wins.
    private static let ranges: [(digits: Int, range: ClosedRange<Int>, brand: CardBrand)] = [
        (4, 2221...2720, .mastercard),
        (4, 3528...3589, .jcb),
        (4, 6011...6011, .discover),
        (3, 300...305, .diners),
        (3, 644...649, .discover),
        (2, 34...34, .amex),
        (2, 36...36, .diners),
        (2, 37...37, .amex),
        (2, 38...39, .diners),
        (2, 51...55, .mastercard),
        (2, 62...62, .unionpay),
        (2, 65...65, .discover),
        (1, 4...4, .visa),
    ]

    /// The brand of a PAN given as its digit values (0–9), most significant first.
    static func detect(digitValues: [UInt8]) -> CardBrand {
        for entry in ranges where digitValues.count >= entry.digits {
            let prefix = digitValues.prefix(entry.digits).reduce(0) { $0 * 10 + Int($1) }
            if entry.range.contains(prefix) {
                return entry.brand
            }
        }
        return .unknown
    }
}

// MARK: - PAN

/// A primary account number (card number) that passed format, length, brand and Luhn checks.
///
/// `description`, `debugDescription` and the mirror show only the masked form, so interpolating a
/// `PAN` into a log message or error is safe. The full number is available only through
/// ``digits``, which is sensitive. `PAN` is deliberately not `Codable`.
public struct PAN: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The number of digits a PAN may have (ISO/IEC 7812).
    static let lengths = 12...19

    /// The full card number, digits only. Sensitive cardholder data: never log, display or store it in clear.
    public let digits: String

    /// The card network, detected from the leading digits.
    public let brand: CardBrand

    /// Validates a card number typed by a person.
    ///
    /// Accepts ASCII digits, optionally with single spaces or hyphens between digit groups
    /// (`4242 4242 4242 4242`, `4242-4242-4242-4242`). Refuses any other character, including
    /// non-ASCII digits, leading, trailing or doubled separators; a length outside 12–19 digits;
    /// a length the detected brand does not issue; and a wrong Luhn check digit.
    public init(_ text: String) throws(CardValidationError) {
        var values: [UInt8] = []
        values.reserveCapacity(Self.lengths.upperBound)
        var previousWasDigit = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard values.count < Self.lengths.upperBound else {
                    throw .length(field: .cardNumber, expected: Self.lengths)
                }
                values.append(byte - UInt8(ascii: "0"))
                previousWasDigit = true
            case UInt8(ascii: " "), UInt8(ascii: "-"):
                guard previousWasDigit else { throw .invalidCharacters(field: .cardNumber) }
                previousWasDigit = false
            default:
                throw .invalidCharacters(field: .cardNumber)
            }
        }
        if !values.isEmpty && !previousWasDigit {
            throw .invalidCharacters(field: .cardNumber)
        }
        guard Self.lengths.contains(values.count) else {
            throw .length(field: .cardNumber, expected: Self.lengths)
        }
        let brand = CardBrand.detect(digitValues: values)
        guard brand.isValidLength(values.count) else { throw .lengthForBrand(brand) }
        guard Self.passesLuhn(values) else { throw .luhn }

        self.digits = String(decoding: values.map { $0 + UInt8(ascii: "0") }, as: UTF8.self)
        self.brand = brand
    }

    /// The last four digits, which PCI DSS allows to display.
    public var lastFour: String {
        String(digits.suffix(4))
    }

    /// The bank identification number: the first six digits.
    public var bin: String {
        String(digits.prefix(6))
    }

    /// The display form allowed by PCI DSS 3.4.1: one `*` per hidden digit, then the last four, e.g. `************4242`.
    ///
    /// It has as many characters as the PAN has digits and never shows more than the last four.
    public var masked: String {
        String(repeating: "*", count: digits.count - 4) + lastFour
    }

    /// The masked form, e.g. `************4242`.
    public var description: String {
        masked
    }

    /// The masked form with the type name, e.g. `PAN(************4242)`.
    public var debugDescription: String {
        "PAN(\(masked))"
    }

    /// A mirror that shows the masked form and the brand, never the digits.
    public var customMirror: Mirror {
        Mirror(self, children: ["masked": masked, "brand": brand], displayStyle: .struct)
    }

    /// Whether digit values (0–9, most significant first) end with a correct Luhn check digit.
    private static func passesLuhn(_ values: [UInt8]) -> Bool {
        var sum = 0
        for (offset, value) in values.reversed().enumerated() {
            var digit = Int(value)
            if offset % 2 == 1 {
                digit *= 2
                if digit > 9 { digit -= 9 }
            }
            sum += digit
        }
        return sum % 10 == 0
    }
}

// MARK: - Expiry

/// A card's expiry month; the card is valid through the last day of that month, UTC.
public struct CardExpiry: Sendable, Hashable, CustomStringConvertible {
    /// The month, 1–12.
    public let month: Int

    /// The four-digit year, 2000–2099.
    public let year: Int

    /// Validates an expiry month (1–12) and year (2000–2099, or 0–99 meaning 20YY).
    public init(month: Int, year: Int) throws(CardValidationError) {
        guard (1...12).contains(month) else { throw .expiryMonth }
        switch year {
        case 0...99: self.year = 2000 + year
        case 2000...2099: self.year = year
        default: throw .expiryYear
        }
        self.month = month
    }

    /// Whether the card has expired at a moment: true from the first instant (UTC) of the month after the expiry month.
    public func isExpired(at date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let now = calendar.dateComponents([.year, .month], from: date)
        guard let currentYear = now.year, let currentMonth = now.month else { return true }
        return (currentYear, currentMonth) > (year, month)
    }

    /// Throws ``CardValidationError/expired`` if the card has expired at a moment.
    public func validateNotExpired(at date: Date) throws(CardValidationError) {
        if isExpired(at: date) { throw .expired }
    }

    /// The expiry as `MM/YYYY`, e.g. `03/2027`.
    public var description: String {
        (month < 10 ? "0" : "") + "\(month)/\(year)"
    }
}

// MARK: - CVV

/// A card verification value (CVV2, CVC2, CID): 3 digits, or 4 for American Express.
///
/// Sensitive authentication data: PCI DSS 3.3.1 forbids storing it after authorization, even
/// encrypted. `description`, `debugDescription` and the mirror show `***`.
public struct CVV: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The digits. Sensitive: never log or store them.
    public let digits: String

    /// Validates a CVV for a card brand: exactly 3 ASCII digits, 4 for American Express, 3 or 4 for an unknown brand.
    public init(_ text: String, brand: CardBrand) throws(CardValidationError) {
        let isDigits = text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        guard isDigits, brand.cvvLengths.contains(text.utf8.count) else { throw .cvvFormat(brand) }
        self.digits = text
    }

    /// Always `***`.
    public var description: String {
        "***"
    }

    /// Always `CVV(***)`.
    public var debugDescription: String {
        "CVV(***)"
    }

    /// A mirror without children, so `dump` shows nothing of the digits.
    public var customMirror: Mirror {
        Mirror(self, children: [:], displayStyle: .struct)
    }
}

// MARK: - Cardholder name

/// A cardholder name as printed on a card: 1–100 characters of letters, spaces, `.`, `'` and `-`.
///
/// Letters are ASCII and the accented Latin letters (Latin-1 Supplement, Latin Extended-A and -B,
/// Latin Extended Additional, and combining diacritical marks after a letter). Digits are never
/// allowed, so a card number pasted into the name field by mistake is refused, and the error
/// does not echo it. The name is personal data: `description`, `debugDescription` and the mirror
/// redact it; read ``value`` where the name is needed.
public struct CardholderName: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The allowed number of characters, after trimming.
    static let lengths = 1...100

    /// The name, trimmed of surrounding whitespace.
    public let value: String

    /// Validates a cardholder name after trimming surrounding whitespace and newlines.
    public init(_ text: String) throws(CardValidationError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var hasLetter = false
        var previousWasLetter = false
        for scalar in trimmed.unicodeScalars {
            if Self.isLetter(scalar) {
                hasLetter = true
                previousWasLetter = true
            } else if (0x0300...0x036F).contains(scalar.value) {
                // A combining diacritical mark must follow a letter (or another mark).
                guard previousWasLetter else { throw .invalidCharacters(field: .cardholderName) }
            } else if Self.punctuation.contains(scalar) {
                previousWasLetter = false
            } else {
                throw .invalidCharacters(field: .cardholderName)
            }
        }
        guard Self.lengths.contains(trimmed.count) else {
            throw .length(field: .cardholderName, expected: Self.lengths)
        }
        guard hasLetter else { throw .invalidCharacters(field: .cardholderName) }
        self.value = trimmed
    }

    /// `[redacted]`.
    public var description: String {
        "[redacted]"
    }

    /// `CardholderName([redacted])`.
    public var debugDescription: String {
        "CardholderName([redacted])"
    }

    /// A mirror without children, so `dump` does not show the name.
    public var customMirror: Mirror {
        Mirror(self, children: [:], displayStyle: .struct)
    }

    /// Space, period, apostrophe (straight and typographic) and hyphen.
    private static let punctuation: Set<Unicode.Scalar> = [" ", ".", "'", "\u{2019}", "-"]

    /// Whether a scalar is an ASCII or accented Latin letter.
    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x41...0x5A, 0x61...0x7A: true  // A–Z, a–z
        case 0xD7, 0xF7: false  // × and ÷
        case 0xC0...0xFF: true  // Latin-1 Supplement letters
        case 0x0100...0x024F: true  // Latin Extended-A and -B
        case 0x1E00...0x1EFF: true  // Latin Extended Additional
        default: false
        }
    }
}
