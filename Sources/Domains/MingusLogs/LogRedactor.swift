/// What a redaction replaced, by kind.
public struct Redactions: Sendable, Equatable, Codable {
    public var card = 0
    public var email = 0
    public var token = 0
    public var apiKey = 0
    public var secret = 0
    public var ssn = 0

    public init() {}

    public var total: Int { card + email + token + apiKey + secret + ssn }

    public static func += (lhs: inout Redactions, rhs: Redactions) {
        lhs.card += rhs.card
        lhs.email += rhs.email
        lhs.token += rhs.token
        lhs.apiKey += rhs.apiKey
        lhs.secret += rhs.secret
        lhs.ssn += rhs.ssn
    }

    /// (kind, count) for the kinds found, for metrics and job bodies.
    public var counts: [(kind: String, count: Int)] {
        [("card", card), ("email", email), ("token", token), ("api_key", apiKey), ("secret", secret), ("ssn", ssn)].filter { $0.1 > 0 }
    }
}

/// Replaces sensitive values in a log line by typed placeholders before it is stored or queued,
/// in one pass per kind over the line's UTF-8 bytes:
///
/// - `<card>`: runs of 12–19 digits, single spaces or hyphens allowed between digits, that pass
///   the Luhn check and start with 2–6 (the major industry identifiers of the card networks; 0, 1
///   and 7–9 are left alone so that epoch milliseconds and other ids are not mistaken for cards).
///   A longer run is searched for a card-number window on its group boundaries.
/// - `<email>`: `local@domain.tld`.
/// - `<token>`: the credential after `Bearer ` and JSON Web Tokens (`eyJ….eyJ….…`).
/// - `<api_key>`: this project's API keys (`mgk_<12 hex>_<secret>`).
/// - `<secret>`: the value after a key ending in `password`, `passwd`, `pwd`, `secret`, `token`,
///   `api_key`, `apikey`, `access_key`, `private_key` or `credential` and `=` or `:` (quotes and
///   spaces allowed), up to a space, quote, `,`, `;`, `&` or the end.
/// - `<ssn>`: US social security numbers written `AAA-GG-SSSS`, valid area and group (not 000,
///   666 or 9xx; not 00; serial not 0000).
///
/// The original values are never kept.
public struct LogRedactor: Sendable {
    public init() {}

    public func redact(_ line: String) -> (text: String, found: Redactions) {
        var bytes = Array(line.utf8)
        var found = Redactions()
        bytes = replaceAPIKeys(bytes, &found.apiKey)
        bytes = replaceTokens(bytes, &found.token)
        bytes = replaceSecrets(bytes, &found.secret)
        bytes = replaceEmails(bytes, &found.email)
        bytes = replaceSSNs(bytes, &found.ssn)
        bytes = replaceCards(bytes, &found.card)
        return (found.total == 0 ? line : String(decoding: bytes, as: UTF8.self), found)
    }

    // MARK: - Character classes

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }
    @inline(__always) static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { isDigit(b) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66) }
    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { isAlpha(b) ? b | 0x20 : b }

    static func hasPrefix(_ bytes: [UInt8], at index: Int, _ word: StaticString, caseInsensitive: Bool) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return word.withUTF8Buffer { w in
            for k in 0..<count where (caseInsensitive ? lower(bytes[index + k]) : bytes[index + k]) != w[k] { return false }
            return true
        }
    }

    /// A copy of a line with some ranges replaced by placeholders, made once the first one is.
    struct Splice {
        let source: [UInt8]
        private var out: [UInt8] = []
        /// The source bytes before this index are copied or replaced.
        private(set) var copied = 0
        private(set) var count = 0

        init(_ source: [UInt8]) { self.source = source }

        mutating func replace(_ range: Range<Int>, with placeholder: StaticString) {
            if out.isEmpty { out.reserveCapacity(source.count) }
            out.append(contentsOf: source[copied..<range.lowerBound])
            placeholder.withUTF8Buffer { out.append(contentsOf: $0) }
            copied = range.upperBound
            count += 1
        }

        func result() -> [UInt8] {
            count == 0 ? source : out + source[copied...]
        }
    }

    // MARK: - API keys and tokens

    func replaceAPIKeys(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        guard bytes.count >= 18 else { return bytes }
        var splice = Splice(bytes)
        var i = 0
        while i + 18 <= bytes.count {
            if bytes[i] == UInt8(ascii: "m"), Self.hasPrefix(bytes, at: i, "mgk_", caseInsensitive: false),
               i == 0 || !Self.isAlnum(bytes[i - 1]),
               (i + 4..<i + 16).allSatisfy({ Self.isHex(bytes[$0]) }), bytes[i + 16] == UInt8(ascii: "_") {
                var end = i + 17
                while end < bytes.count, Self.isAlnum(bytes[end]) || bytes[end] == UInt8(ascii: "_") || bytes[end] == UInt8(ascii: "-") { end += 1 }
                if end > i + 17 {
                    splice.replace(i..<end, with: "<api_key>")
                    i = end
                    continue
                }
            }
            i += 1
        }
        count += splice.count
        return splice.result()
    }

    @inline(__always) static func isTokenByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
            || b == UInt8(ascii: "+") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=")
    }

    /// `Bearer <credential>` (the word kept) and bare JSON Web Tokens.
    func replaceTokens(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        var splice = Splice(bytes)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if (b | 0x20) == UInt8(ascii: "b"), Self.hasPrefix(bytes, at: i, "bearer ", caseInsensitive: true), i == 0 || !Self.isAlnum(bytes[i - 1]) {
                var start = i + 7
                while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
                var end = start
                while end < bytes.count, Self.isTokenByte(bytes[end]) { end += 1 }
                if end - start >= 8 {
                    splice.replace(start..<end, with: "<token>")
                    i = end
                    continue
                }
            } else if b == UInt8(ascii: "e"), Self.hasPrefix(bytes, at: i, "eyJ", caseInsensitive: false), i == 0 || !Self.isTokenByte(bytes[i - 1]) {
                var end = i
                var dots = 0
                while end < bytes.count, Self.isAlnum(bytes[end]) || bytes[end] == UInt8(ascii: "-") || bytes[end] == UInt8(ascii: "_")
                    || bytes[end] == UInt8(ascii: ".") {
                    if bytes[end] == UInt8(ascii: ".") { dots += 1 }
                    end += 1
                }
                if dots == 2, end - i >= 20 {
                    splice.replace(i..<end, with: "<token>")
                    i = end
                    continue
                }
            }
            i += 1
        }
        count += splice.count
        return splice.result()
    }

    // MARK: - key=value secrets

    static let secretWords: [[UInt8]] = ["password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key",
                                         "private_key", "credential", "credentials"].map { Array($0.utf8) }

    /// Whether the key that ends just before `end` (exclusive) ends with a secret word.
    static func keyEndsWithSecretWord(_ bytes: [UInt8], end: Int) -> Bool {
        for word in secretWords where word.count <= end {
            var matches = true
            for k in 0..<word.count where lower(bytes[end - word.count + k]) != word[k] {
                matches = false
                break
            }
            if matches { return true }
        }
        return false
    }

    func replaceSecrets(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        var splice = Splice(bytes)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "=") || b == UInt8(ascii: ":") else {
                i += 1
                continue
            }
            // The key: letters, digits, _ . - before the separator, optionally quoted.
            var keyEnd = i
            while keyEnd > 0, bytes[keyEnd - 1] == UInt8(ascii: " ") { keyEnd -= 1 }
            if keyEnd > 0, bytes[keyEnd - 1] == UInt8(ascii: "\"") || bytes[keyEnd - 1] == UInt8(ascii: "'") { keyEnd -= 1 }
            guard keyEnd > 0, Self.keyEndsWithSecretWord(bytes, end: keyEnd) else {
                i += 1
                continue
            }
            // The value, optionally quoted.
            var start = i + 1
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
            var quote: UInt8?
            if start < bytes.count, bytes[start] == UInt8(ascii: "\"") || bytes[start] == UInt8(ascii: "'") {
                quote = bytes[start]
                start += 1
            }
            var end = start
            if let quote {
                while end < bytes.count, bytes[end] != quote {
                    end += bytes[end] == UInt8(ascii: "\\") && end + 1 < bytes.count ? 2 : 1
                }
                end = min(end, bytes.count)
            } else {
                while end < bytes.count {
                    let c = bytes[end]
                    if c == UInt8(ascii: " ") || c == UInt8(ascii: ",") || c == UInt8(ascii: ";") || c == UInt8(ascii: "&")
                        || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "}") || c == UInt8(ascii: ")") { break }
                    end += 1
                }
            }
            // Already a placeholder (a bearer token or API key redacted above): leave it.
            let value = bytes[start..<end]
            if end > start, !(value.first == UInt8(ascii: "<") && value.last == UInt8(ascii: ">")) {
                splice.replace(start..<end, with: "<secret>")
            }
            i = max(end, i + 1)
        }
        count += splice.count
        return splice.result()
    }

    // MARK: - E-mail addresses

    @inline(__always) static func isLocalByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "%") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
    }

    func replaceEmails(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        var splice = Splice(bytes)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "@") else {
                i += 1
                continue
            }
            var start = i
            while start > splice.copied, Self.isLocalByte(bytes[start - 1]) { start -= 1 }
            var end = i + 1
            var lastDot = -1
            while end < bytes.count, Self.isAlnum(bytes[end]) || bytes[end] == UInt8(ascii: "-") || bytes[end] == UInt8(ascii: ".") {
                if bytes[end] == UInt8(ascii: ".") { lastDot = end }
                end += 1
            }
            // A trailing dot ends the sentence, not the domain.
            while end > i + 1, bytes[end - 1] == UInt8(ascii: ".") {
                end -= 1
                lastDot = bytes[(i + 1)..<end].lastIndex(of: UInt8(ascii: ".")) ?? -1
            }
            let tld = lastDot > i ? bytes[(lastDot + 1)..<end] : []
            if start < i, lastDot > i + 1, tld.count >= 2, tld.allSatisfy(Self.isAlpha) {
                splice.replace(start..<end, with: "<email>")
                i = end
                continue
            }
            i += 1
        }
        count += splice.count
        return splice.result()
    }

    // MARK: - Social security numbers

    func replaceSSNs(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        guard bytes.count >= 11 else { return bytes }
        var splice = Splice(bytes)
        var i = 0
        while i + 11 <= bytes.count {
            if Self.isDigit(bytes[i]), i == 0 || !(Self.isAlnum(bytes[i - 1]) || bytes[i - 1] == UInt8(ascii: "-")),
               bytes[i + 3] == UInt8(ascii: "-"), bytes[i + 6] == UInt8(ascii: "-"),
               [1, 2, 4, 5, 7, 8, 9, 10].allSatisfy({ Self.isDigit(bytes[i + $0]) }),
               i + 11 == bytes.count || !(Self.isAlnum(bytes[i + 11]) || bytes[i + 11] == UInt8(ascii: "-")) {
                func number(_ from: Int, _ length: Int) -> Int { (from..<from + length).reduce(0) { $0 * 10 + Int(bytes[$1] - 0x30) } }
                let area = number(i, 3), group = number(i + 4, 2), serial = number(i + 7, 4)
                if area != 0, area != 666, area < 900, group != 0, serial != 0 {
                    splice.replace(i..<i + 11, with: "<ssn>")
                    i += 11
                    continue
                }
            }
            i += 1
        }
        count += splice.count
        return splice.result()
    }

    // MARK: - Card numbers

    static func passesLuhn<C: Collection>(_ digits: C) -> Bool where C.Element == UInt8 {
        var sum = 0
        var double = false
        for d in digits.reversed() {
            var v = Int(d)
            if double {
                v *= 2
                if v > 9 { v -= 9 }
            }
            sum += v
            double.toggle()
        }
        return sum % 10 == 0
    }

    static func looksLikeCard<C: Collection>(_ digits: C) -> Bool where C.Element == UInt8 {
        (12...19).contains(digits.count) && (2...6).contains(digits.first ?? 0) && passesLuhn(digits)
    }

    func replaceCards(_ bytes: [UInt8], _ count: inout Int) -> [UInt8] {
        var splice = Splice(bytes)
        var i = 0
        while i < bytes.count {
            guard Self.isDigit(bytes[i]), i == 0 || !Self.isAlnum(bytes[i - 1]) else {
                i += 1
                continue
            }
            // A run: digit groups joined by one space or hyphen; each group's start and end in bytes.
            var groups: [(start: Int, end: Int)] = []
            var j = i
            var total = 0
            while true {
                let start = j
                while j < bytes.count, Self.isDigit(bytes[j]) { j += 1 }
                groups.append((start, j))
                total += j - start
                if j + 1 < bytes.count, bytes[j] == UInt8(ascii: " ") || bytes[j] == UInt8(ascii: "-"), Self.isDigit(bytes[j + 1]), total < 40 {
                    j += 1
                    continue
                }
                break
            }
            let runEnd = j
            if runEnd < bytes.count, Self.isAlpha(bytes[runEnd]) || bytes[runEnd] == UInt8(ascii: "_") {
                i = runEnd
                continue
            }
            guard total >= 12 else {
                i = runEnd
                continue
            }
            // The leftmost, longest window of whole groups that is a card number.
            var found: (from: Int, to: Int)?
            search: for first in groups.indices {
                var digits: [UInt8] = []
                for last in first..<groups.count {
                    for k in groups[last].start..<groups[last].end { digits.append(bytes[k] - 0x30) }
                    if digits.count > 19 { break }
                    if Self.looksLikeCard(digits) { found = (first, last) }
                }
                if found != nil { break search }
            }
            if let (first, last) = found {
                splice.replace(groups[first].start..<groups[last].end, with: "<card>")
                i = groups[last].end
                continue
            }
            i = runEnd
        }
        count += splice.count
        return splice.result()
    }
}
