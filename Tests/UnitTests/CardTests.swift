import Foundation
import MingusPayments
import Testing

/// A UTC date.
private func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = .gmt
    return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
}

/// The error a card number throws, if any.
private func panError(_ text: String) -> CardValidationError? {
    do {
        _ = try PAN(text)
        return nil
    } catch {
        return error
    }
}

/// Every way an error can end up in a log line.
private func renderings(of error: CardValidationError) -> [String] {
    var dumped = ""
    dump(error, to: &dumped)
    return [error.description, "\(error)", String(reflecting: error), dumped, error.localizedDescription]
}

// MARK: - PAN

@Suite("PAN")
struct CardPANTests {
    @Test(
        "Test card numbers are valid and get the right brand",
        arguments: [
            ("4242424242424242", CardBrand.visa),
            ("4012888888881881", .visa),
            ("4222222222222", .visa),
            ("5555555555554444", .mastercard),
            ("2223003122003222", .mastercard),
            ("378282246310005", .amex),
            ("371449635398431", .amex),
            ("6011111111111117", .discover),
            ("3056930009020004", .diners),
            ("36227206271667", .diners),
            ("3566002020360505", .jcb),
            ("6200000000000005", .unionpay),
        ]
    )
    func validTestNumbers(number: String, brand: CardBrand) throws {
        let pan = try PAN(number)
        #expect(pan.digits == number)
        #expect(pan.brand == brand)
    }

    @Test("A wrong check digit fails Luhn")
    func luhn() {
        #expect(panError("4242424242424241") == .luhn)
        #expect(panError("5555555555554443") == .luhn)
        #expect(panError("378282246310006") == .luhn)
    }

    @Test("Single spaces or hyphens between groups are stripped", arguments: [
        "4242 4242 4242 4242", "4242-4242-4242-4242", "3782 822463 10005", "4242-4242 4242-4242", "4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2",
    ])
    func separators(text: String) throws {
        let pan = try PAN(text)
        #expect(!pan.digits.contains(" ") && !pan.digits.contains("-"))
        #expect(pan.digits.count == 16 || pan.digits.count == 15)
    }

    @Test("Misplaced separators and other characters are refused", arguments: [
        " 4242424242424242", "4242424242424242 ", "-4242424242424242", "4242424242424242-", "4242  4242 4242 4242",
        "4242--4242-4242-4242", "4242 -4242 4242 4242", "4242\t4242424242424", "4242_4242_4242_4242", "4242.4242.4242.4242",
        "424242424242424x", "abcd efgh ijkl mnop", "4242424242424242\n", "+4242424242424242", "-", " ",
    ])
    func invalidCharacters(text: String) {
        #expect(panError(text) == .invalidCharacters(field: .cardNumber))
    }

    @Test("Digits other than ASCII are refused", arguments: [
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  // Arabic-Indic
        "۴۲۴۲۴۲۴۲۴۲۴۲۴۲۴۲",  // Extended Arabic-Indic (Persian)
        "４２４２４２４２４２４２４２４２",  // fullwidth
        "४२४२४२४२४२४२४२४२",  // Devanagari
        "424242424242424２",  // one fullwidth digit at the end
        "4242424242424242\u{0301}",  // combining mark on the last digit
    ])
    func unicodeDigits(text: String) {
        #expect(panError(text) == .invalidCharacters(field: .cardNumber))
    }

    @Test("Lengths outside 12–19 digits are refused")
    func lengths() {
        let expected = CardValidationError.length(field: .cardNumber, expected: 12...19)
        #expect(panError("") == expected)
        #expect(panError("4") == expected)
        #expect(panError("42424242424") == expected)  // 11
        #expect(panError("42424242424242424242") == expected)  // 20
        #expect(panError(String(repeating: "4", count: 10_000)) == expected)
    }

    @Test("A length the brand does not issue is refused")
    func lengthForBrand() {
        // Luhn-valid numbers whose length the brand does not issue.
        #expect(panError("424242424242") == .lengthForBrand(.visa))  // 12
        #expect(panError("42424242424242") == .lengthForBrand(.visa))  // 14
        #expect(panError("555555555555442") == .lengthForBrand(.mastercard))  // 15
        #expect(panError("3782822463100052") == .lengthForBrand(.amex))  // 16
        #expect(panError("34343434343434") == .lengthForBrand(.amex))  // 14
        #expect(panError("601111111111116") == .lengthForBrand(.discover))  // 15
        #expect(panError("3566002020367") == .lengthForBrand(.jcb))  // 13
        #expect(panError("3056930009021") == .lengthForBrand(.diners))  // 13
        #expect(panError("620000000000000") == .lengthForBrand(.unionpay))  // 15
    }

    @Test("Unknown brands pass with any length from 12 to 19")
    func unknownBrand() throws {
        let pan = try PAN("9999999999999995")
        #expect(pan.brand == .unknown)
        #expect(try PAN("100000000008").brand == .unknown)
    }

    @Test(
        "Brand detection uses the longest prefix",
        arguments: [
            ("2221000000000009", CardBrand.mastercard), ("2720990000000007", .mastercard), ("2220990000000002", .unknown),
            ("2721000000000004", .unknown), ("5100000000000008", .mastercard), ("5500000000000004", .mastercard),
            ("5600000000000003", .unknown), ("6011000000000004", .discover), ("6440000000000005", .discover),
            ("6490000000000004", .discover), ("6500000000000002", .discover), ("6430000000000007", .unknown),
            ("3528000000000007", .jcb), ("3589000000000003", .jcb), ("3527000000000008", .unknown),
            ("30000000000004", .diners), ("30500000000003", .diners), ("30600000000001", .unknown),
            ("36000000000008", .diners), ("38000000000006", .diners), ("39000000000005", .diners),
            ("6200000000000005", .unionpay), ("4000000000000002", .visa), ("4000000000006", .visa),
            ("4000000000000000006", .visa),
        ]
    )
    func brandRanges(number: String, brand: CardBrand) throws {
        #expect(try PAN(number).brand == brand)
    }

    @Test("Last four, BIN and masked form")
    func displayForms() throws {
        let visa = try PAN("4242 4242 4242 4242")
        #expect(visa.lastFour == "4242")
        #expect(visa.bin == "424242")
        #expect(visa.masked == "************4242")

        let amex = try PAN("378282246310005")
        #expect(amex.lastFour == "0005")
        #expect(amex.bin == "378282")
        #expect(amex.masked == "***********0005")
        #expect(amex.masked.count == 15)

        let long = try PAN("4000000000000000006")
        #expect(long.masked == String(repeating: "*", count: 15) + "0006")
    }

    @Test("Description, debug description, mirror and dump show only the masked form")
    func redaction() throws {
        let pan = try PAN("4012888888881881")
        var dumped = ""
        dump(pan, to: &dumped)
        var dumpedInArray = ""
        dump([pan], to: &dumpedInArray)
        let mirrored = Mirror(reflecting: pan).children.map { "\($0.label ?? ""): \($0.value)" }.joined(separator: ", ")
        let renderings = [
            pan.description, "\(pan)", String(describing: pan), String(reflecting: pan), pan.debugDescription,
            dumped, dumpedInArray, mirrored, "\([pan])", "\(Optional(pan) as Any)", "\(["card": pan])",
        ]
        for rendering in renderings {
            #expect(!rendering.contains("4012888888881881"), "\(rendering)")
            #expect(!rendering.contains("401288"), "\(rendering)")
            #expect(rendering.contains("************1881"), "\(rendering)")
        }
        #expect("\(pan)" == "************1881")
        #expect(String(reflecting: pan) == "PAN(************1881)")
        #expect(mirrored.contains("brand: visa"))
    }

    @Test("Equal numbers are equal whatever the separators")
    func equality() throws {
        #expect(try PAN("4242 4242 4242 4242") == PAN("4242424242424242"))
        #expect(try PAN("4242424242424242") != PAN("4012888888881881"))
    }

    @Test("Errors never contain any digits of the input")
    func errorsNeverEchoInput() {
        let inputs = [
            "4242424242424241", "4242 4242 4242 424x", "42424242424242424242", "3782822463100052", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "42424242424",
        ]
        for input in inputs {
            guard let error = panError(input) else {
                Issue.record("expected an error")
                continue
            }
            for rendering in renderings(of: error) {
                #expect(!rendering.contains("4242"), "\(rendering)")
                #expect(!rendering.contains("3782"), "\(rendering)")
                #expect(!rendering.contains("0052"), "\(rendering)")
            }
        }
    }
}

// MARK: - Errors

@Suite("Card validation errors")
struct CardValidationErrorTests {
    @Test("Each error names its field and rule")
    func fieldAndRule() {
        let cases: [(CardValidationError, String, String)] = [
            (.invalidCharacters(field: .cardNumber), "card_number", "characters"),
            (.length(field: .cardNumber, expected: 12...19), "card_number", "length"),
            (.luhn, "card_number", "luhn"),
            (.lengthForBrand(.amex), "card_number", "length_for_brand"),
            (.expiryMonth, "expiry_month", "range"),
            (.expiryYear, "expiry_year", "range"),
            (.expired, "expiry_year", "expired"),
            (.cvvFormat(.visa), "cvv", "format"),
            (.invalidCharacters(field: .cardholderName), "cardholder_name", "characters"),
            (.length(field: .cardholderName, expected: 1...100), "cardholder_name", "length"),
        ]
        for (error, field, rule) in cases {
            #expect(error.field == field)
            #expect(error.rule == rule)
            #expect(!error.description.isEmpty && !error.description.contains("\n"))
        }
    }

    @Test("Descriptions are readable")
    func descriptions() {
        #expect(CardValidationError.length(field: .cardNumber, expected: 12...19).description == "Card number must have 12 to 19 digits.")
        #expect(CardValidationError.lengthForBrand(.amex).description == "Card number length is not valid for American Express cards.")
        #expect(CardValidationError.cvvFormat(.amex).description == "CVV must be 4 digits for American Express cards.")
        #expect(CardValidationError.cvvFormat(.visa).description == "CVV must be 3 digits for Visa cards.")
        #expect(CardValidationError.expired.description == "Card has expired.")
    }
}

// MARK: - Expiry

@Suite("Card expiry")
struct CardExpiryTests {
    @Test("Month must be 1–12")
    func months() throws {
        #expect(throws: CardValidationError.expiryMonth) { try CardExpiry(month: 0, year: 2030) }
        #expect(throws: CardValidationError.expiryMonth) { try CardExpiry(month: 13, year: 2030) }
        #expect(throws: CardValidationError.expiryMonth) { try CardExpiry(month: -1, year: 2030) }
        #expect(try CardExpiry(month: 1, year: 2030).month == 1)
        #expect(try CardExpiry(month: 12, year: 2030).month == 12)
    }

    @Test("A 2-digit year means 20YY; other years must be 2000–2099")
    func years() throws {
        #expect(try CardExpiry(month: 3, year: 27) == CardExpiry(month: 3, year: 2027))
        #expect(try CardExpiry(month: 3, year: 0).year == 2000)
        #expect(try CardExpiry(month: 3, year: 99).year == 2099)
        #expect(try CardExpiry(month: 3, year: 2099).year == 2099)
        for year in [-1, 100, 999, 1999, 2100, 20270] {
            #expect(throws: CardValidationError.expiryYear) { try CardExpiry(month: 3, year: year) }
        }
    }

    @Test("A card is valid through the last second of its expiry month, UTC")
    func expiryBoundary() throws {
        let expiry = try CardExpiry(month: 3, year: 2027)
        #expect(!expiry.isExpired(at: utc(2020, 1, 1)))
        #expect(!expiry.isExpired(at: utc(2027, 2, 28, 23, 59, 59)))
        #expect(!expiry.isExpired(at: utc(2027, 3, 1)))
        #expect(!expiry.isExpired(at: utc(2027, 3, 31, 23, 59, 59)))
        #expect(expiry.isExpired(at: utc(2027, 4, 1)))
        #expect(expiry.isExpired(at: utc(2028, 1, 1)))

        let december = try CardExpiry(month: 12, year: 2026)
        #expect(!december.isExpired(at: utc(2026, 12, 31, 23, 59, 59)))
        #expect(december.isExpired(at: utc(2027, 1, 1)))
    }

    @Test("The current month is valid and the previous month is expired")
    func currentAndPreviousMonth() throws {
        let now = Date()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let month = calendar.component(.month, from: now)
        let year = calendar.component(.year, from: now)
        let current = try CardExpiry(month: month, year: year)
        let previous = try month == 1 ? CardExpiry(month: 12, year: year - 1) : CardExpiry(month: month - 1, year: year)
        #expect(!current.isExpired(at: now))
        #expect(previous.isExpired(at: now))
        #expect(throws: Never.self) { try current.validateNotExpired(at: now) }
        #expect(throws: CardValidationError.expired) { try previous.validateNotExpired(at: now) }
    }

    @Test("Description is MM/YYYY")
    func description() throws {
        #expect(try CardExpiry(month: 3, year: 27).description == "03/2027")
        #expect(try CardExpiry(month: 11, year: 2030).description == "11/2030")
    }
}

// MARK: - CVV

@Suite("CVV")
struct CardCVVTests {
    @Test("Three digits, or four for American Express")
    func lengthsPerBrand() throws {
        for brand in CardBrand.allCases where brand != .amex && brand != .unknown {
            #expect(try CVV("123", brand: brand).digits == "123")
            #expect(throws: CardValidationError.cvvFormat(brand)) { try CVV("1234", brand: brand) }
            #expect(throws: CardValidationError.cvvFormat(brand)) { try CVV("12", brand: brand) }
        }
        #expect(try CVV("1234", brand: .amex).digits == "1234")
        #expect(throws: CardValidationError.cvvFormat(.amex)) { try CVV("123", brand: .amex) }
        #expect(throws: CardValidationError.cvvFormat(.amex)) { try CVV("12345", brand: .amex) }
        #expect(try CVV("123", brand: .unknown).digits == "123")
        #expect(try CVV("1234", brand: .unknown).digits == "1234")
    }

    @Test("Only ASCII digits", arguments: ["", "12a", "1 23", " 123", "١٢٣", "１２３", "12-3", "-12"])
    func characters(text: String) {
        #expect(throws: CardValidationError.cvvFormat(.visa)) { try CVV(text, brand: .visa) }
    }

    @Test("Description, debug description and dump are redacted")
    func redaction() throws {
        let cvv = try CVV("987", brand: .visa)
        var dumped = ""
        dump(cvv, to: &dumped)
        #expect("\(cvv)" == "***")
        #expect(String(reflecting: cvv) == "CVV(***)")
        #expect(!dumped.contains("987"))
        #expect(Mirror(reflecting: cvv).children.isEmpty)
    }
}

// MARK: - Cardholder name

@Suite("Cardholder name")
struct CardholderNameTests {
    @Test("Letters, spaces, periods, apostrophes, hyphens and accents are allowed", arguments: [
        "Jane Doe", "J. R. R. Tolkien", "Seán O'Brien", "Anne-Marie Müller", "José Ñúñez", "Łukasz Żółć",
        "Ștefan Țepeș", "Nguyễn Văn An", "D’Angelo", "Zoë", "e\u{0301}mile",
    ])
    func valid(text: String) throws {
        #expect(try CardholderName(text).value == text)
    }

    @Test("Surrounding whitespace is trimmed")
    func trimming() throws {
        #expect(try CardholderName("  Jane Doe \n").value == "Jane Doe")
    }

    @Test("Length is 1–100 characters after trimming")
    func lengths() throws {
        let expected = CardValidationError.length(field: .cardholderName, expected: 1...100)
        #expect(throws: expected) { try CardholderName("") }
        #expect(throws: expected) { try CardholderName("   ") }
        #expect(throws: expected) { try CardholderName(String(repeating: "a", count: 101)) }
        #expect(try CardholderName(String(repeating: "a", count: 100)).value.count == 100)
        #expect(try CardholderName(String(repeating: "é", count: 100)).value.count == 100)
        #expect(try CardholderName("A").value == "A")
    }

    @Test("Digits, symbols and other scripts are refused", arguments: [
        "Jane Doe 2", "R2D2", "4242424242424242", "4242 4242 4242 4242", "Jane_Doe", "Jane@Doe", "Jane\tDoe", "Jane\nDoe",
        "Jane<script>", "Иван", "山田太郎", "Jane ٤", "---", ". '", "\u{0301}Jane", "Jane × Doe", "😀",
    ])
    func invalid(text: String) {
        #expect(throws: CardValidationError.invalidCharacters(field: .cardholderName)) { try CardholderName(text) }
    }

    @Test("A card number pasted into the name is refused without echo")
    func pastedPAN() {
        do {
            _ = try CardholderName("Jane 4242424242424242")
            Issue.record("expected an error")
        } catch {
            #expect(error == .invalidCharacters(field: .cardholderName))
            for rendering in renderings(of: error) {
                #expect(!rendering.contains("4242"))
                #expect(!rendering.contains("Jane"))
            }
        }
    }

    @Test("Description, debug description and dump are redacted")
    func redaction() throws {
        let name = try CardholderName("Jane Doe")
        var dumped = ""
        dump(name, to: &dumped)
        for rendering in ["\(name)", String(reflecting: name), dumped] {
            #expect(!rendering.contains("Jane"))
        }
    }
}
