import Foundation
import MingusCompliance
import MingusHTTP
import Testing

/// The score's formula on stored evidence made up here (no database).
@Suite("Compliance score: the formula")
struct ScoreTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func result(_ check: String, passed: Bool, age: TimeInterval = 60, validFor: TimeInterval = 48 * 3600) -> StoredCheckResult {
        StoredCheckResult(check: check, runID: UUID(), passed: passed, summary: passed ? "ok" : "broken", evidence: .object([:]),
                          checkedAt: now.addingTimeInterval(-age), validUntil: now.addingTimeInterval(validFor - age))
    }

    static func evidence(failing: Set<String> = [], stale: Set<String> = [], missing: Set<String> = [],
                         manual: [String: RequirementStatus] = [:]) -> ComplianceEvidence {
        var results: [String: StoredCheckResult] = [:]
        for check in ComplianceChecks.all where !missing.contains(check.name) {
            results[check.name] = stale.contains(check.name)
                ? result(check.name, passed: true, age: 72 * 3600)
                : result(check.name, passed: !failing.contains(check.name))
        }
        var assessments: [String: ManualAssessment] = [:]
        for (id, status) in manual {
            assessments[id] = ManualAssessment(requirementID: id, status: status, assessor: "Jane Roe", notes: "", evidence: "",
                                               recordedBy: "apikey:test", assessedAt: now.addingTimeInterval(-3600))
        }
        return ComplianceEvidence(results: results, assessments: assessments, lastRun: nil, now: now)
    }

    static func part(_ score: ComplianceScore, _ part: ScorePart) -> ScorePartResult {
        score.parts.first { $0.part == part }!
    }

    static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    /// Leaves of the registry that have automated checks (the rest need people).
    static var automatedLeaves: [PCIRequirement] {
        PCIRequirements.all.filter { !$0.checks.isEmpty }
    }

    @Test("no evidence: every part and the score are not assessed, never compliant")
    func nothing() {
        let score = ComplianceComputation.score(ComplianceEvidence(results: [:], assessments: [:], lastRun: nil, now: Self.now))
        #expect(score.score == nil)
        #expect(score.status == "not_assessed")
        #expect(score.assessedWeight == 0)
        #expect(score.parts.allSatisfy { $0.status == "not_assessed" && $0.score == nil })
        let summary = ComplianceComputation.pciSummary(ComplianceEvidence(results: [:], assessments: [:], lastRun: nil, now: Self.now))
        #expect(summary.status == .notAssessed)
    }

    @Test("all checks pass: each check part is 100, PCI DSS counts only the assessed requirements")
    func allPass() {
        let score = ComplianceComputation.score(Self.evidence())
        #expect(Self.part(score, .paymentProcessing).score == 100)
        #expect(Self.part(score, .securityControls).score == 100)
        #expect(Self.part(score, .dataProtection).score == 100)
        let pci = Self.part(score, .pciDss)
        #expect(pci.score == 100)
        #expect(pci.passing.count == Self.automatedLeaves.count)
        #expect(score.score == 100)
        #expect(score.assessedWeight == 100)
        #expect(score.status == "assessed")
    }

    @Test("one failing payment check moves its part, the requirements it evidences and the score exactly by the formula")
    func oneFailing() {
        let score = ComplianceComputation.score(Self.evidence(failing: ["cvv_not_stored"]))
        let payments = Self.part(score, .paymentProcessing)
        #expect(payments.failing == ["cvv_not_stored"])
        #expect(payments.score == Self.rounded(100 * 2.0 / 3.0))
        let pci = Self.part(score, .pciDss)
        #expect(pci.failing == ["3.3.1"])
        let leaves = Double(Self.automatedLeaves.count)
        #expect(pci.score == Self.rounded(100 * (leaves - 1) / leaves))
        let expected = Self.rounded((40 * pci.score! + 25 * payments.score! + 20 * 100 + 15 * 100) / 100)
        #expect(score.score == expected)
    }

    @Test("a stale or missing result does not count; a manual assessment counts; a failing check overrules a manual compliant")
    func staleManualOverrule() {
        let stale = ComplianceComputation.score(Self.evidence(stale: ["payments_settled"], missing: ["pan_fingerprint_keyed"]))
        let payments = Self.part(stale, .paymentProcessing)
        #expect(payments.passing == ["cvv_not_stored"])
        #expect(payments.notCounted == ["pan_fingerprint_keyed (not_run)", "payments_settled (stale)"])
        #expect(payments.score == 100)

        // Only data protection has results, and an assessor found 12.6.1 non-compliant.
        let onlyData = Set(ComplianceChecks.all.filter { $0.part != .dataProtection }.map(\.name))
        let evidence = Self.evidence(failing: ["retention_sweeps"], missing: onlyData, manual: ["12.6.1": .nonCompliant, "9.2.1": .compliant])
        let score = ComplianceComputation.score(evidence)
        // PCI DSS: 9.2.1 compliant by hand; 3.4.1, 3.5.1 and 12.10.1 by their checks; 12.6.1 non-compliant
        // by hand and 3.2.1 (retention_sweeps) by its check: 4 of 6.
        let pci = Self.part(score, .pciDss)
        #expect(Set(pci.passing) == ["9.2.1", "3.4.1", "3.5.1", "12.10.1"])
        #expect(Set(pci.failing) == ["3.2.1", "12.6.1"])
        #expect(pci.score == Self.rounded(100 * 4.0 / 6.0))
        let data = Self.part(score, .dataProtection)
        #expect(data.score == Self.rounded(100 * 2.0 / 3.0))
        #expect(score.assessedWeight == 55)
        #expect(score.notAssessedParts == [.paymentProcessing, .securityControls])
        #expect(score.score == Self.rounded((40 * pci.score! + 15 * data.score!) / 55))

        let overruled = ComplianceComputation.requirements(Self.evidence(failing: ["key_cryptoperiod"], manual: ["3.7.4": .compliant]))
        let requirement = overruled.first { $0.id == "3.7.4" }!
        #expect(requirement.status == .nonCompliant)
        #expect(requirement.overruledManual)
        #expect(requirement.notes.contains("overrules the manual compliant assessment by Jane Roe"))
        #expect(overruled.first { $0.id == "3" }!.status == .nonCompliant)
    }

    @Test("the PDF's cross-reference table points at its objects")
    func pdf() throws {
        let bytes = PDFTextWriter.document(lines: (0..<150).map { "line \($0) (with parentheses) × ÷ Σ" })
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("%PDF-1.4"))
        let start = try #require(text.range(of: "startxref\n"))
        let offset = try #require(Int(text[start.upperBound...].prefix { $0.isNumber }))
        #expect(Array(bytes[offset..<(offset + 4)]) == Array("xref".utf8))
        #expect(text.contains("/Count 3"))
        #expect(text.contains("(line 0 \\(with parentheses\\) x / sum of) Tj"))
    }
}
