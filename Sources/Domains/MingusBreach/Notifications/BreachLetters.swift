public import Foundation
import MingusCore
import Mustache
import MingusRuntime

/// What a notification run's letters say beyond the breach's own facts, as
/// `POST …/notifications` gave it: the content HIPAA 45 CFR 164.404(c) and GDPR Art. 34(2)
/// require (what happened, what data, what is being done, what people can do, the likely
/// consequences, contacts).
public struct LetterContent: Codable, Sendable, Equatable {
    public var organization: String
    public var subject: String
    /// Overrides the breach's description as "what happened" when given.
    public var whatHappened: String?
    public var whatIsBeingDone: String
    public var whatYouCanDo: String
    public var likelyConsequences: String
    public var contact: Contact

    /// How the people affected reach the organization (HIPAA: a toll-free number and an
    /// e-mail address, website or postal address; GDPR: the contact point or DPO).
    public struct Contact: Codable, Sendable, Equatable {
        public var phone: String?
        public var email: String?
        public var website: String?
        public var postalAddress: String?
    }
}

/// The breach facts a letter cites.
struct LetterBreach: Sendable {
    var id: UUID
    var title: String
    var description: String
    var discoveredAt: Date
    var awareAt: Date
    var dataCategories: [String]
    var dataEncrypted: Bool
    var personsAffected: Int64
    var recordsAffected: Int64
    var jurisdictions: [String]
}

/// The letter templates (mustache, `MINGUS_BREACH_LETTERS_DIR`, default `Contracts/letters`):
/// `individual.txt` and `individual.html` for the e-mail to each person affected,
/// `authority.txt` for regulators, attorneys general, card brands and other recipients, and
/// `media.txt` for the media.
public struct BreachLetters: Sendable {
    let individualText: MustacheTemplate
    let individualHTML: MustacheTemplate
    let authority: MustacheTemplate
    let media: MustacheTemplate

    /// Reads and parses the four templates; the error names the file.
    public static func load(directory: URL) throws -> BreachLetters {
        func template(_ name: String) throws -> MustacheTemplate {
            let url = directory.appendingPathComponent("\(name).mustache")
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw ConfigurationError(variable: "MINGUS_BREACH_LETTERS_DIR", message: "cannot read \(url.path)")
            }
            do {
                return try MustacheTemplate(string: text)
            } catch {
                throw ConfigurationError(variable: "MINGUS_BREACH_LETTERS_DIR", message: "\(url.path): not a valid template: \(error)")
            }
        }
        return BreachLetters(individualText: try template("individual.txt"), individualHTML: try template("individual.html"),
                             authority: try template("authority.txt"), media: try template("media.txt"))
    }

    /// The values every letter of a run shares.
    static func context(_ content: LetterContent, breach: LetterBreach) -> [String: Any] {
        var contact: [String: Any] = [:]
        if let phone = content.contact.phone { contact["phone"] = phone }
        if let email = content.contact.email { contact["email"] = email }
        if let website = content.contact.website { contact["website"] = website }
        if let address = content.contact.postalAddress { contact["postal_address"] = address }
        return [
            "organization": content.organization,
            "what_happened": content.whatHappened ?? (breach.description.isEmpty ? breach.title : breach.description),
            "what_is_being_done": content.whatIsBeingDone,
            "what_you_can_do": content.whatYouCanDo,
            "likely_consequences": content.likelyConsequences,
            "contact": contact,
            "title": breach.title,
            "discovered_on": breach.discoveredAt.formatted(Date.ISO8601FormatStyle().year().month().day()),
            "discovered_at": JobEnvelope.formatTime(breach.discoveredAt),
            "aware_at": JobEnvelope.formatTime(breach.awareAt),
            "data_categories": breach.dataCategories.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", "),
            "data_encrypted": breach.dataEncrypted ? "yes" : "no",
            "persons_affected": "\(breach.personsAffected)",
            "records_affected": "\(breach.recordsAffected)",
            "jurisdictions": breach.jurisdictions.joined(separator: ", "),
            "breach_id": breach.id.uuidString.lowercased(),
        ]
    }

    /// The text and HTML of one person's letter.
    func individual(_ shared: [String: Any], name: String, reference: String) -> (text: String, html: String) {
        var values = shared
        values["recipient_name"] = name
        values["reference"] = reference
        return (individualText.render(values), individualHTML.render(values))
    }

    /// The letter for an obligation to notify anyone but the people affected.
    func forAudience(_ shared: [String: Any], regime: String, regimeName: String, audience: String, deadline: Date?, period: String) -> String {
        var values = shared
        values["regime"] = regime
        values["regime_name"] = regimeName
        values["audience_name"] = audience.replacingOccurrences(of: "_", with: " ")
        if let deadline { values["deadline"] = JobEnvelope.formatTime(deadline) }
        values["period"] = period
        return (audience == "media" ? media : authority).render(values)
    }
}

/// The RFC 5322 message of one person's letter: `Date`, `From`, `To`, `Subject`, a
/// `Message-ID` that is the same every time this recipient's letter is sent, and text and HTML
/// alternatives (base64, so any script travels as 7-bit data).
enum LetterMail {
    static func build(from: String, to address: String, name: String, subject: String, messageID: String,
                      date: String, text: String, html: String) -> String {
        let boundary = "mingus-" + messageID.prefix(36)
        let headers = [
            "Date: \(date)",
            "From: \(from)",
            "To: \(mailbox(name: name, address: address))",
            "Subject: \(encodedWord(subject))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n"
            + "--\(boundary)\r\n" + part("text/plain; charset=utf-8", text) + "\r\n"
            + "--\(boundary)\r\n" + part("text/html; charset=utf-8", html) + "\r\n"
            + "--\(boundary)--\r\n"
    }

    /// `<recipient id>@<the sender's domain>`.
    static func messageID(recipient: UUID, from: String) -> String {
        let domain = from.split(separator: "@").last.map(String.init) ?? "mingus.local"
        return "breach-notice.\(recipient.uuidString.lowercased())@\(domain)"
    }

    /// `Mon, 23 Nov 2026 10:04:05 +0000`.
    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    private static func part(_ type: String, _ content: String) -> String {
        let encoded = Data(content.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return "Content-Type: \(type)\r\nContent-Transfer-Encoding: base64\r\n\r\n\(encoded)"
    }

    static func mailbox(name: String, address: String) -> String {
        let plain = name.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value != 127 }
        let display = plain ? "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
                            : encodedWord(name)
        return "\(display) <\(address)>"
    }

    /// An RFC 2047 encoded word when the text is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value != 127 }
        return plain ? text : "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }
}
