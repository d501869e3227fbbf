// Amounts of money in integer minor units (no floating point anywhere).

// MARK: - Errors

/// Why an amount or currency was refused, naming the field and the rule it breaks.
public enum MoneyValidationError: Error, Equatable, CustomStringConvertible {
    /// The amount is zero or negative.
    case amountNotPositive
    /// The amount is above ``Money/maximumMinorUnits``.
    case amountAboveMaximum
    /// The currency code is not three ASCII letters.
    case currencyFormat
    /// The currency code has lowercase letters; ISO 4217 codes are uppercase.
    case currencyNotUppercase
    /// The currency code is not an active ISO 4217 currency this service supports.
    case unknownCurrency

    /// The name of the refused field in the HTTP API: `amount` or `currency`.
    public var field: String {
        switch self {
        case .amountNotPositive, .amountAboveMaximum: "amount"
        case .currencyFormat, .currencyNotUppercase, .unknownCurrency: "currency"
        }
    }

    /// The broken rule, for the HTTP API: `positive`, `maximum`, `format`, `uppercase` or `unknown`.
    public var rule: String {
        switch self {
        case .amountNotPositive: "positive"
        case .amountAboveMaximum: "maximum"
        case .currencyFormat: "format"
        case .currencyNotUppercase: "uppercase"
        case .unknownCurrency: "unknown"
        }
    }

    /// A one-line explanation for a human reader.
    public var description: String {
        switch self {
        case .amountNotPositive: "Amount must be greater than zero."
        case .amountAboveMaximum: "Amount must not exceed \(Money.maximumMinorUnits) minor units."
        case .currencyFormat: "Currency must be a three-letter ISO 4217 code, e.g. USD."
        case .currencyNotUppercase: "Currency code must be uppercase, e.g. USD."
        case .unknownCurrency: "Currency is not a supported ISO 4217 currency."
        }
    }
}

// MARK: - Currency

/// An active ISO 4217 currency: its alphabetic code and the number of digits of its minor unit.
///
/// Encoded as its code alone, e.g. `"USD"`; decoding validates the code.
public struct Currency: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The ISO 4217 alphabetic code, e.g. `USD`.
    public let code: String

    /// The minor-unit exponent: 2 for USD (cents), 0 for JPY, 3 for BHD.
    public let exponent: Int

    /// Looks up an uppercase ISO 4217 alphabetic code, e.g. `USD`.
    ///
    /// Refuses codes that are not three ASCII letters, lowercase codes (`usd`), and codes that are
    /// not active circulating currencies (fund codes such as `USN`, precious metals such as `XAU`,
    /// and withdrawn codes such as `HRK` are not supported).
    public init(_ code: String) throws(MoneyValidationError) {
        let bytes = Array(code.utf8)
        let isUppercase = { (byte: UInt8) in (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
        let isLowercase = { (byte: UInt8) in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
        guard bytes.count == 3, bytes.allSatisfy({ isUppercase($0) || isLowercase($0) }) else {
            throw .currencyFormat
        }
        guard bytes.allSatisfy(isUppercase) else { throw .currencyNotUppercase }
        guard let exponent = Self.exponents[code] else { throw .unknownCurrency }
        self.code = code
        self.exponent = exponent
    }

    /// Decodes a currency from its code, validating it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let code = try container.decode(String.self)
        do {
            try self.init(code)
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.description, underlyingError: error)
            )
        }
    }

    /// Encodes the currency as its code.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }

    /// The code, e.g. `USD`.
    public var description: String {
        code
    }

    /// Every supported code, sorted.
    public static var supportedCodes: [String] {
        exponents.keys.sorted()
    }

    /// Active ISO 4217 currencies and their minor-unit exponents (ISO 4217 list one, 2025).
    private static let exponents: [String: Int] = [
        "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
        "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2,
        "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
        "CAD": 2, "CDF": 2, "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2,
        "CZK": 2,
        "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2,
        "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2,
        "FJD": 2, "FKP": 2,
        "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2,
        "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2,
        "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
        "JMD": 2, "JOD": 3, "JPY": 0,
        "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2,
        "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
        "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
        "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2,
        "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2,
        "OMR": 3,
        "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0,
        "QAR": 2,
        "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0,
        "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
        "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
        "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
        "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2,
        "VED": 2, "VES": 2, "VND": 0, "VUV": 0,
        "WST": 2,
        "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0,
        "YER": 2,
        "ZAR": 2, "ZMW": 2, "ZWG": 2,
    ]
}

// MARK: - Money

/// A positive amount of money in integer minor units of a currency, e.g. 1234 USD cents = 12.34 USD.
///
/// Encoded as `{"amount": 1234, "currency": "USD"}`; decoding validates both fields.
public struct Money: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The sanity cap on an amount: 10^12 minor units (10 billion USD, 1 trillion JPY, 1 billion BHD).
    public static let maximumMinorUnits: Int64 = 1_000_000_000_000

    /// The amount in minor units of ``currency``: cents for USD, yen for JPY, fils for BHD.
    public let amount: Int64

    /// The currency.
    public let currency: Currency

    /// Validates an amount in minor units: refuses zero, negative amounts and amounts above ``maximumMinorUnits``.
    public init(minorUnits: Int64, currency: Currency) throws(MoneyValidationError) {
        guard minorUnits > 0 else { throw .amountNotPositive }
        guard minorUnits <= Self.maximumMinorUnits else { throw .amountAboveMaximum }
        self.amount = minorUnits
        self.currency = currency
    }

    /// The JSON keys.
    private enum CodingKeys: String, CodingKey {
        case amount
        case currency
    }

    /// Decodes an amount and currency, validating both.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let amount = try container.decode(Int64.self, forKey: .amount)
        let currency = try container.decode(Currency.self, forKey: .currency)
        do {
            try self.init(minorUnits: amount, currency: currency)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .amount, in: container, debugDescription: error.description)
        }
    }

    /// The amount in major units with exactly the currency's number of decimals, then the code:
    /// `12.34 USD`, `1000 JPY`, `1.234 BHD`, `0.05 EUR`.
    public var formatted: String {
        let exponent = currency.exponent
        guard exponent > 0 else { return "\(amount) \(currency.code)" }
        var divisor: Int64 = 1
        for _ in 0..<exponent { divisor *= 10 }
        let minor = String(amount % divisor)
        let padding = String(repeating: "0", count: exponent - minor.count)
        return "\(amount / divisor).\(padding)\(minor) \(currency.code)"
    }

    /// The formatted amount, e.g. `12.34 USD`.
    public var description: String {
        formatted
    }
}
