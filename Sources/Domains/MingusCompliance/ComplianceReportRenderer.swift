import Foundation
import MingusHTTP
import Mustache

/// Renders the compliance report for an auditor: HTML through a swift-mustache template (no
/// scripts, no external resources), and PDF through ``PDFTextWriter``.
public enum ComplianceReportRenderer {
    static let template = try! MustacheTemplate(string: """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
        th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
        .compliant,.passed,.effective{color:#0a6b2d}.non_compliant,.failed,.ineffective{color:#b00020;font-weight:bold}
        .not_assessed,.stale,.not_run,.not_tested,.not_applicable{color:#666}
        </style></head><body>
        <h1>{{title}}</h1>
        <p>Generated {{generated_at}}.{{#last_run}} Latest check run {{id}} started {{started_at}} ({{checks}} checks, {{failed}} failed).{{/last_run}}</p>
        <h2>Compliance score: {{score_text}}</h2>
        <p>{{score_status}}; assessed weight {{assessed_weight}} of 100. {{formula}}</p>
        <table><tr><th>Part</th><th>Weight</th><th>Status</th><th>Score</th><th>Formula</th><th>Passing</th><th>Failing</th><th>Not counted</th></tr>
        {{#parts}}<tr><td>{{title}}</td><td>{{weight}} %</td><td class="{{status}}">{{status}}</td><td>{{score_text}}</td><td>{{formula}}</td><td>{{passing}}</td><td>{{failing}}</td><td>{{not_counted}}</td></tr>
        {{/parts}}</table>
        <h2>Score history</h2>
        <table><tr><th>Day</th><th>Score</th><th>Assessed weight</th></tr>
        {{#history}}<tr><td>{{day}}</td><td>{{score_text}}</td><td>{{assessed_weight}}</td></tr>
        {{/history}}</table>
        <h2>PCI DSS v4.0 requirements ({{pci_status}})</h2>
        <table><tr><th>Id</th><th>Requirement</th><th>Status</th><th>Assessed by</th><th>When</th><th>Notes</th></tr>
        {{#requirements}}<tr><td>{{id}}</td><td>{{title}}</td><td class="{{status}}">{{status}}{{#overruled}} (overrules a manual assessment){{/overruled}}</td><td>{{assessed_by}}</td><td>{{assessed_at}}</td><td>{{notes}}</td></tr>
        {{/requirements}}</table>
        <h2>Automated checks</h2>
        <table><tr><th>Check</th><th>Part</th><th>Requirements</th><th>Status</th><th>Result</th><th>Checked</th></tr>
        {{#checks}}<tr><td>{{name}}<br><small>{{test}}</small></td><td>{{part}}</td><td>{{requirements}}</td><td class="{{status}}">{{status}}</td><td>{{summary}}</td><td>{{checked_at}}</td></tr>
        {{/checks}}</table>
        <h2>Security controls</h2>
        <table><tr><th>Id</th><th>Category</th><th>Control</th><th>Test</th><th>Status</th><th>Tested by</th></tr>
        {{#controls}}<tr><td>{{id}}</td><td>{{category}}</td><td>{{name}}</td><td>{{test}}</td><td class="{{status}}">{{status}}</td><td>{{tested_by}}</td></tr>
        {{/controls}}</table>
        </body></html>
        """)

    static func text(_ score: Double?) -> String { score.map { String(format: "%.2f", $0) } ?? "not assessed" }
    static func time(_ date: Date?) -> String { date.map(APITime.format) ?? "" }

    /// The report as an HTML document.
    public static func html(_ report: ComplianceReport) -> String {
        let context: [String: Any] = [
            "title": report.title, "generated_at": time(report.generatedAt), "score_text": text(report.score.score),
            "score_status": report.score.status, "assessed_weight": report.score.assessedWeight, "formula": report.score.formula,
            "last_run": report.lastRun.map { ["id": $0.id, "started_at": time($0.startedAt), "checks": $0.checks, "failed": $0.failed] as [String: Any] } as Any,
            "parts": report.score.parts.map {
                ["title": $0.title, "weight": $0.weight, "status": $0.status, "score_text": text($0.score), "formula": $0.formula,
                 "passing": $0.passing.joined(separator: ", "), "failing": $0.failing.joined(separator: ", "),
                 "not_counted": $0.notCounted.joined(separator: ", ")] as [String: Any]
            },
            "history": report.history.map { ["day": $0.day, "score_text": text($0.score), "assessed_weight": $0.assessedWeight] as [String: Any] },
            "pci_status": report.pci.status.rawValue,
            "requirements": report.requirements.map {
                ["id": $0.id, "title": $0.title, "status": $0.status.rawValue, "overruled": $0.overruledManual,
                 "assessed_by": $0.assessedBy ?? "", "assessed_at": time($0.assessedAt), "notes": $0.notes] as [String: Any]
            },
            "checks": report.checks.map {
                ["name": $0.name, "test": $0.test, "part": $0.part.rawValue, "requirements": $0.requirements.joined(separator: ", "),
                 "status": $0.status, "summary": $0.summary ?? "", "checked_at": time($0.checkedAt)] as [String: Any]
            },
            "controls": report.controls.map {
                ["id": $0.id, "category": $0.category, "name": $0.name, "test": $0.test, "status": $0.status, "tested_by": $0.testedBy ?? ""] as [String: Any]
            },
        ]
        return template.render(context)
    }

    /// The report as the lines of a plain-text document (the PDF's content).
    static func lines(_ report: ComplianceReport) -> [String] {
        var lines = [report.title, "Generated \(time(report.generatedAt))", ""]
        lines.append("Compliance score: \(text(report.score.score)) (\(report.score.status), assessed weight \(report.score.assessedWeight) of 100)")
        lines.append(report.score.formula)
        lines.append("")
        for part in report.score.parts {
            lines.append("\(part.title) (weight \(part.weight) %): \(part.status), score \(text(part.score))")
            lines.append("  Formula: \(part.formula)")
            lines.append("  Passing: \(part.passing.joined(separator: ", "))")
            lines.append("  Failing: \(part.failing.joined(separator: ", "))")
            lines.append("  Not counted: \(part.notCounted.joined(separator: ", "))")
        }
        lines.append("")
        lines.append("Score history")
        for day in report.history { lines.append("  \(day.day): \(text(day.score)) (assessed weight \(day.assessedWeight))") }
        lines.append("")
        lines.append("PCI DSS v4.0 requirements: \(report.pci.status.rawValue)")
        for requirement in report.requirements {
            lines.append("\(requirement.id) \(requirement.title): \(requirement.status.rawValue)"
                         + (requirement.assessedBy.map { " by \($0)" } ?? "") + (requirement.assessedAt.map { " at \(time($0))" } ?? ""))
            if !requirement.notes.isEmpty { lines.append("  \(requirement.notes)") }
        }
        lines.append("")
        lines.append("Automated checks")
        for check in report.checks {
            lines.append("\(check.name) [\(check.part.rawValue); \(check.requirements.joined(separator: ", "))]: \(check.status)")
            if let summary = check.summary { lines.append("  \(summary)") }
        }
        lines.append("")
        lines.append("Security controls")
        for control in report.controls {
            lines.append("\(control.id) \(control.name) (\(control.category)): \(control.status)" + (control.testedBy.map { ", tested by \($0)" } ?? ""))
        }
        return lines
    }

    /// The report as a PDF document.
    public static func pdf(_ report: ComplianceReport) -> [UInt8] {
        PDFTextWriter.document(lines: lines(report))
    }
}

/// A small PDF 1.4 writer for text: A4 pages of Helvetica lines, wrapped, in a document with a
/// correct cross-reference table. Characters outside ASCII are written as close ASCII ones.
public enum PDFTextWriter {
    static let linesPerPage = 64
    static let columns = 100

    /// A PDF of `lines`.
    public static func document(lines: [String]) -> [UInt8] {
        var wrapped: [String] = []
        for line in lines.map(ascii) {
            var rest = Substring(line)
            repeat {
                var cut = rest.index(rest.startIndex, offsetBy: min(columns, rest.count))
                if cut < rest.endIndex, let space = rest[..<cut].lastIndex(of: " "), space > rest.startIndex { cut = space }
                wrapped.append(String(rest[..<cut]))
                rest = rest[cut...].drop { $0 == " " }
            } while !rest.isEmpty
        }
        let pages = stride(from: 0, to: max(wrapped.count, 1), by: linesPerPage).map { Array(wrapped[$0..<min($0 + linesPerPage, wrapped.count)]) }
        var objects: [String] = []
        let pageIDs = pages.indices.map { 4 + 2 * $0 }
        objects.append("<< /Type /Catalog /Pages 2 0 R >>")
        objects.append("<< /Type /Pages /Kids [\(pageIDs.map { "\($0) 0 R" }.joined(separator: " "))] /Count \(pages.count) >>")
        objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        for (index, page) in pages.enumerated() {
            var stream = "BT /F1 9 Tf 11 TL 40 800 Td\n"
            for line in page { stream += "(\(escape(line))) Tj T*\n" }
            stream += "ET"
            objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents \(pageIDs[index] + 1) 0 R >>")
            objects.append("<< /Length \(stream.utf8.count) >>\nstream\n\(stream)\nendstream")
        }
        var output = Array("%PDF-1.4\n%\u{E2}\u{E3}\u{CF}\u{D3}\n".utf8)
        var offsets: [Int] = []
        for (index, object) in objects.enumerated() {
            offsets.append(output.count)
            output += Array("\(index + 1) 0 obj\n\(object)\nendobj\n".utf8)
        }
        let xref = output.count
        var table = "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { table += String(format: "%010d 00000 n \n", offset) }
        table += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        output += Array(table.utf8)
        return output
    }

    static func ascii(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "×": result += "x"
            case "÷": result += "/"
            case "Σ": result += "sum of"
            case "–", "—": result += "-"
            case "→": result += "->"
            case "‘", "’": result += "'"
            case "“", "”": result += "\""
            default: result += scalar.isASCII && scalar.value >= 0x20 ? String(scalar) : "?"
            }
        }
        return result
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "(", with: "\\(").replacingOccurrences(of: ")", with: "\\)")
    }
}
