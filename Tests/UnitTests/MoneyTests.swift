import Foundation
import MingusPayments
import Testing

/// An amount of money in a currency known to be valid.
private func money(_ minorUnits: Int64, _ code: String) throws -> Money {
    try Money(minorUnits: minorUnits, currency: Currency(code))
}

// MARK: - Currency

@Suite("Currency")
struct MoneyCurrencyTests {
    @Test(
        "Required currencies have the right exponents",
        arguments: [
            ("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("CHF", 2), ("CAD", 2), ("AUD", 2), ("NZD", 2), ("SEK", 2),
            ("NOK", 2), ("DKK", 2), ("PLN", 2), ("CZK", 2), ("HUF", 2), ("RON", 2), ("BGN", 2), ("ISK", 0), ("TRY", 2),
            ("RUB", 2), ("UAH", 2), ("CNY", 2), ("HKD", 2), ("SGD", 2), ("KRW", 0), ("INR", 2), ("IDR", 2), ("MYR", 2),
            ("PHP", 2), ("THB", 2), ("VND", 0), ("TWD", 2), ("ILS", 2), ("AED", 2), ("SAR", 2), ("QAR", 2), ("KWD", 3),
            ("BHD", 3), ("OMR", 3), ("JOD", 3), ("EGP", 2), ("MAD", 2), ("TND", 3), ("ZAR", 2), ("NGN", 2), ("KES", 2),
            ("GHS", 2), ("BRL", 2), ("MXN", 2), ("ARS", 2), ("CLP", 0), ("COP", 2), ("PEN", 2), ("UYU", 2),
        ]
    )
    func exponents(code: String, exponent: Int) throws {
        let currency = try Currency(code)
        #expect(currency.code == code)
        #expect(currency.exponent == exponent)
        #expect(Currency.supportedCodes.contains(code))
    }

    @Test("Lowercase and mixed-case codes are refused with the uppercase rule", arguments: ["usd", "Usd", "uSD", "eur", "xyz"])
    func lowercase(code: String) {
        #expect(throws: MoneyValidationError.currencyNotUppercase) { try Currency(code) }
    }

    @Test("Codes that are not three ASCII letters are refused", arguments: ["", "US", "USDD", "US1", "U D", " USD", "ÜSD", "ＵＳＤ", "840"])
    func format(code: String) {
        #expect(throws: MoneyValidationError.currencyFormat) { try Currency(code) }
    }

    @Test("Unknown, withdrawn, fund and metal codes are refused", arguments: ["XYZ", "AAA", "HRK", "DEM", "USN", "XAU", "XTS", "XXX"])
    func unknown(code: String) {
        #expect(throws: MoneyValidationError.unknownCurrency) { try Currency(code) }
    }

    @Test("Every supported code is three uppercase letters")
    func supportedCodes() {
        #expect(Currency.supportedCodes.count > 100)
        for code in Currency.supportedCodes {
            #expect(code.utf8.count == 3 && code.utf8.allSatisfy { (65...90).contains($0) })
        }
    }

    @Test("Encodes as its code and decodes with validation")
    func codable() throws {
        let encoded = try JSONEncoder().encode(Currency("EUR"))
        #expect(String(decoding: encoded, as: UTF8.self) == "\"EUR\"")
        #expect(try JSONDecoder().decode(Currency.self, from: Data("\"KWD\"".utf8)).exponent == 3)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Currency.self, from: Data("\"usd\"".utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Currency.self, from: Data("\"XYZ\"".utf8)) }
    }
}

// MARK: - Money

@Suite("Money")
struct MoneyTests {
    @Test(
        "Formatting uses the currency's exponent with integer arithmetic",
        arguments: [
            (Int64(1234), "USD", "12.34 USD"), (1000, "JPY", "1000 JPY"), (1234, "BHD", "1.234 BHD"), (1, "USD", "0.01 USD"),
            (5, "EUR", "0.05 EUR"), (10, "EUR", "0.10 EUR"), (100, "GBP", "1.00 GBP"), (1, "KWD", "0.001 KWD"),
            (1000, "TND", "1.000 TND"), (1, "JPY", "1 JPY"), (999_999, "CLP", "999999 CLP"),
            (1_000_000_000_000, "USD", "10000000000.00 USD"), (999_999_999_999, "OMR", "999999999.999 OMR"),
        ]
    )
    func formatting(minorUnits: Int64, code: String, expected: String) throws {
        let amount = try money(minorUnits, code)
        #expect(amount.formatted == expected)
        #expect("\(amount)" == expected)
    }

    @Test("Amounts must be positive and at most 10^12 minor units")
    func bounds() throws {
        let usd = try Currency("USD")
        #expect(Money.maximumMinorUnits == 1_000_000_000_000)
        #expect(throws: MoneyValidationError.amountNotPositive) { try Money(minorUnits: 0, currency: usd) }
        #expect(throws: MoneyValidationError.amountNotPositive) { try Money(minorUnits: -1, currency: usd) }
        #expect(throws: MoneyValidationError.amountNotPositive) { try Money(minorUnits: .min, currency: usd) }
        #expect(throws: MoneyValidationError.amountAboveMaximum) { try Money(minorUnits: 1_000_000_000_001, currency: usd) }
        #expect(throws: MoneyValidationError.amountAboveMaximum) { try Money(minorUnits: .max, currency: usd) }
        #expect(try Money(minorUnits: 1, currency: usd).amount == 1)
        #expect(try Money(minorUnits: Money.maximumMinorUnits, currency: usd).amount == Money.maximumMinorUnits)
    }

    @Test("Equality compares amount and currency")
    func equality() throws {
        #expect(try money(100, "USD") == money(100, "USD"))
        #expect(try money(100, "USD") != money(100, "EUR"))
        #expect(try money(100, "USD") != money(101, "USD"))
    }

    @Test("Encodes as amount and currency, and decodes with validation")
    func codable() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(money(1234, "USD")), as: UTF8.self)
        #expect(json == #"{"amount":1234,"currency":"USD"}"#)

        let decoded = try JSONDecoder().decode(Money.self, from: Data(#"{"amount":1234,"currency":"BHD"}"#.utf8))
        #expect(decoded.formatted == "1.234 BHD")
        for body in [
            #"{"amount":0,"currency":"USD"}"#, #"{"amount":-5,"currency":"USD"}"#, #"{"amount":1000000000001,"currency":"USD"}"#,
            #"{"amount":100,"currency":"usd"}"#, #"{"amount":12.5,"currency":"USD"}"#, #"{"currency":"USD"}"#,
        ] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data(body.utf8)) }
        }
    }
}

// MARK: - Errors

@Suite("Money validation errors")
struct MoneyValidationErrorTests {
    @Test("Each error names its field and rule")
    func fieldAndRule() {
        let cases: [(MoneyValidationError, String, String)] = [
            (.amountNotPositive, "amount", "positive"),
            (.amountAboveMaximum, "amount", "maximum"),
            (.currencyFormat, "currency", "format"),
            (.currencyNotUppercase, "currency", "uppercase"),
            (.unknownCurrency, "currency", "unknown"),
        ]
        for (error, field, rule) in cases {
            #expect(error.field == field)
            #expect(error.rule == rule)
            #expect(!error.description.isEmpty && !error.description.contains("\n"))
        }
        #expect(MoneyValidationError.currencyNotUppercase.description == "Currency code must be uppercase, e.g. USD.")
    }
}
