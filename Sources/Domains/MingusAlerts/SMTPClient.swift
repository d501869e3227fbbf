import Foundation
import MingusCore
import MingusMail

/// Sends one alert e-mail over its own SMTP connection (``SMTPSession``): EHLO, STARTTLS or
/// implicit TLS, AUTH, MAIL FROM, RCPT TO, DATA, QUIT. A 4yz reply or a lost connection is worth
/// retrying; a 5yz is not.
struct SMTPClient: Sendable {
    let settings: EmailSettings

    /// Sends `message` (a complete RFC 5322 message with CRLF line ends); returns the server's
    /// last reply to DATA.
    func send(_ message: String, timeout: Duration) async -> AttemptResult {
        let session = SMTPSession(settings: settings.server(commandTimeout: timeout))
        let mail = OutgoingMail(from: settings.from, recipients: settings.to, data: message)
        do {
            let accepted = try await withThrowingTaskGroup(of: SMTPReply?.self) { group in
                group.addTask { try await session.send(mail) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            await session.close()
            guard let accepted else {
                return .retryable(detail: "SMTP: no answer within \(DurationText.format(timeout))", httpStatus: nil)
            }
            return .delivered(providerID: accepted.lines.last.map { String($0.prefix(200)) })
        } catch let reply as SMTPReplyError {
            await session.close()
            return reply.isPermanent ? .permanent(detail: reply.description, httpStatus: nil)
                                     : .retryable(detail: reply.description, httpStatus: nil)
        } catch {
            await session.close()
            return .retryable(detail: "SMTP: \(error)", httpStatus: nil)
        }
    }
}

/// Builds the RFC 5322 message of an alert notification: `Date`, `From`, `To`, `Subject`,
/// a `Message-ID` stable across retries, and text and HTML alternatives.
enum EmailMessage {
    static func build(_ notification: AlertNotification, settings: EmailSettings, delivery: UUID, now: Date = Date()) -> String {
        let domain = settings.from.split(separator: "@").last.map(String.init) ?? "mingus.local"
        let boundary = "mingus-" + delivery.uuidString.lowercased()
        let text = ChannelRequests.text(notification, limit: 100_000)
        var headers = [
            "Date: \(rfc5322Date(now))",
            "From: \(settings.from)",
            "To: \(settings.to.joined(separator: ", "))",
            "Subject: \(encodedWord(notification.headline.prefixed(200)))",
            "Message-ID: <\(delivery.uuidString.lowercased())@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        headers.append("X-Mingus-Group: \(notification.groupKey)")
        let parts = [
            part("text/plain; charset=utf-8", text),
            part("text/html; charset=utf-8", html(notification)),
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n"
            + parts.map { "--\(boundary)\r\n\($0)" }.joined(separator: "\r\n") + "\r\n--\(boundary)--\r\n"
    }

    private static func part(_ type: String, _ content: String) -> String {
        let encoded = Data(content.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return "Content-Type: \(type)\r\nContent-Transfer-Encoding: base64\r\n\r\n\(encoded)"
    }

    static func html(_ notification: AlertNotification) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var body = "<html><body><h2>\(escape(notification.headline))</h2>"
        for alert in notification.alerts {
            body += "<h3>[\(alert.severity.rawValue)] \(escape(alert.title)) (\(alert.status.rawValue))</h3>"
            if !alert.description.isEmpty { body += "<p>\(escape(alert.description))</p>" }
            let labels = alert.labels.sorted { $0.key < $1.key }.map { "<li>\(escape($0.key)): \(escape($0.value))</li>" }.joined()
            if !labels.isEmpty { body += "<ul>\(labels)</ul>" }
        }
        return body + "</body></html>"
    }

    /// `Mon, 23 Nov 2026 10:04:05 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    /// An RFC 2047 encoded word when the text is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value != 127 }
        return plain ? text : "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }
}
