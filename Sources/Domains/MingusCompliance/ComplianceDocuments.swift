public import Foundation
public import MingusHTTP

/// One automated check's result as evidence of a requirement or a score part.
public struct CheckEvidence: Sendable, Encodable {
    public var check: String
    public var passed: Bool
    /// Whether the result still counts (younger than the evidence age limit).
    public var fresh: Bool
    public var summary: String
    public var checkedAt: Date
    public var validUntil: Date
    public var runId: String
    public var details: JSONValue
}

/// A PCI DSS requirement with its effective status and everything behind it.
public struct RequirementDocument: Sendable, Encodable {
    /// The manual assessment as recorded.
    public struct Manual: Sendable, Encodable {
        public var status: RequirementStatus
        public var assessor: String
        public var notes: String
        public var evidence: String
        public var recordedBy: String
        public var assessedAt: Date
    }

    public var id: String
    public var title: String
    @Nullable public var parent: String?
    public var principal: Bool
    public var status: RequirementStatus
    /// `automated`, `manual`, `derived` (a principal requirement from its sub-requirements), `none`.
    public var source: String
    /// `automated check` or the assessor's name; nil when never assessed.
    @Nullable public var assessedBy: String?
    @Nullable public var assessedAt: Date?
    /// An automated check failed although an assessor recorded `compliant`.
    public var overruledManual: Bool
    public var notes: String
    public var checks: [String]
    public var evidence: [CheckEvidence]
    @Nullable public var manualAssessment: Manual?
    /// Whether it counts in the PCI DSS part of the score (sub-requirements, and principal
    /// requirements without sub-requirements in the registry).
    public var countsInScore: Bool
}

/// One part of the compliance score, with its formula and the inputs behind it.
public struct ScorePartResult: Sendable, Encodable {
    public var part: ScorePart
    public var title: String
    public var weight: Int
    /// `assessed`, or `not_assessed` when it has no evidence (then it has no score).
    public var status: String
    @Nullable public var score: Double?
    public var formula: String
    /// `requirement` or `check`: what the lists below name.
    public var inputKind: String
    public var passing: [String]
    public var failing: [String]
    /// Inputs without evidence that counts (not assessed, not applicable, stale or never run).
    public var notCounted: [String]
}

/// The compliance score: the weighted mean of the assessed parts.
public struct ComplianceScore: Sendable, Encodable {
    /// 0–100, two decimals; nil when no part is assessed.
    @Nullable public var score: Double?
    /// `assessed` (all parts), `partially_assessed`, `not_assessed`.
    public var status: String
    /// The weights of the assessed parts, summed (100 when all are).
    public var assessedWeight: Int
    public var assessedParts: [ScorePart]
    public var notAssessedParts: [ScorePart]
    public var formula: String
    public var parts: [ScorePartResult]
    public var computedAt: Date
}

/// A technical, administrative or physical security control with its test and result.
public struct ControlDocument: Sendable, Encodable {
    public var id: String
    /// `technical`, `administrative`, `physical`.
    public var category: String
    public var name: String
    public var test: String
    public var requirements: [String]
    /// `effective`, `ineffective`, `not_tested`, `not_applicable`.
    public var status: String
    @Nullable public var result: String?
    @Nullable public var testedAt: Date?
    /// `automated check` or the assessor's name.
    @Nullable public var testedBy: String?
    @Nullable public var evidence: JSONValue?
}

/// The status of an automated check.
public struct CheckDocument: Sendable, Encodable {
    public var name: String
    public var title: String
    public var test: String
    public var part: ScorePart
    public var requirements: [String]
    /// `passed`, `failed`, `stale` (its result is too old to count), `not_run`.
    public var status: String
    @Nullable public var summary: String?
    @Nullable public var checkedAt: Date?
    @Nullable public var validUntil: Date?
    @Nullable public var runId: String?
    @Nullable public var evidence: JSONValue?
}

/// Counts of requirements by status.
public struct StatusCounts: Sendable, Encodable, Equatable {
    public var compliant = 0
    public var nonCompliant = 0
    public var notAssessed = 0
    public var notApplicable = 0

    mutating func add(_ status: RequirementStatus) {
        switch status {
        case .compliant: compliant += 1
        case .nonCompliant: nonCompliant += 1
        case .notAssessed: notAssessed += 1
        case .notApplicable: notApplicable += 1
        }
    }
}

/// `GET /pci/compliance`: the summary of the registry.
public struct PCIComplianceSummary: Sendable, Encodable {
    /// A principal requirement and its status.
    public struct Principal: Sendable, Encodable {
        public var id: String
        public var title: String
        public var status: RequirementStatus
    }

    public var pciDssVersion = "4.0"
    /// `non_compliant` when any counted requirement is, `compliant` when every counted one is
    /// compliant or not applicable, else `not_assessed`.
    public var status: RequirementStatus
    @Nullable public var score: Double?
    /// Counted requirements by status.
    public var counts: StatusCounts
    public var principalRequirements: [Principal]
    /// Requirements whose manual `compliant` an automated check overruled.
    public var overruled: [String]
    public var generatedAt: Date
}

/// Computes every compliance document from stored evidence (pure: no database, no clock).
public enum ComplianceComputation {
    /// The requirements with their effective statuses.
    public static func requirements(_ evidence: ComplianceEvidence) -> [RequirementDocument] {
        var documents: [String: RequirementDocument] = [:]
        let leaves = PCIRequirements.all.filter { !($0.isPrincipal && PCIRequirements.hasSubs($0.id)) }
        for requirement in leaves {
            documents[requirement.id] = leaf(requirement, evidence)
        }
        for requirement in PCIRequirements.all where requirement.isPrincipal && PCIRequirements.hasSubs(requirement.id) {
            let subs = PCIRequirements.all.filter { $0.parent == requirement.id }.compactMap { documents[$0.id] }
            documents[requirement.id] = derived(requirement, subs: subs)
        }
        return PCIRequirements.all.compactMap { documents[$0.id] }
    }

    static func checkEvidence(_ result: StoredCheckResult, now: Date) -> CheckEvidence {
        CheckEvidence(check: result.check, passed: result.passed, fresh: result.isFresh(at: now), summary: result.summary,
                      checkedAt: result.checkedAt, validUntil: result.validUntil, runId: result.runID.uuidString.lowercased(),
                      details: result.evidence)
    }

    static func leaf(_ requirement: PCIRequirement, _ evidence: ComplianceEvidence) -> RequirementDocument {
        let results = requirement.checks.compactMap { evidence.results[$0] }
        let fresh = results.filter { $0.isFresh(at: evidence.now) }
        let manual = evidence.assessments[requirement.id]
        let failed = fresh.filter { !$0.passed }
        let automated: RequirementStatus? = !failed.isEmpty ? .nonCompliant
            : (!requirement.checks.isEmpty && fresh.count == requirement.checks.count ? .compliant : nil)
        var document = RequirementDocument(
            id: requirement.id, title: requirement.title, parent: requirement.parent, principal: requirement.isPrincipal,
            status: .notAssessed, source: "none", assessedBy: nil, assessedAt: nil, overruledManual: false, notes: "",
            checks: requirement.checks, evidence: results.map { checkEvidence($0, now: evidence.now) },
            manualAssessment: manual.map {
                .init(status: $0.status, assessor: $0.assessor, notes: $0.notes, evidence: $0.evidence, recordedBy: $0.recordedBy, assessedAt: $0.assessedAt)
            },
            countsInScore: true)
        let automatedAt = fresh.map(\.checkedAt).max()
        switch (automated, manual?.status) {
        case (.nonCompliant?, let manualStatus):
            document.status = .nonCompliant
            document.source = "automated"
            document.assessedBy = "automated check"
            document.assessedAt = automatedAt
            let names = failed.map(\.check).joined(separator: ", ")
            if manualStatus == .compliant, let manual {
                document.overruledManual = true
                document.notes = "automated check \(names) failed: overrules the manual compliant assessment by \(manual.assessor) of \(iso(manual.assessedAt))"
            } else {
                document.notes = "automated check \(names) failed: " + failed.map(\.summary).joined(separator: "; ")
            }
        case (.compliant?, let manualStatus) where manualStatus == .nonCompliant || manualStatus == .notApplicable:
            document.status = manualStatus!
            document.source = "manual"
            document.assessedBy = manual!.assessor
            document.assessedAt = manual!.assessedAt
            document.notes = (manual!.notes.isEmpty ? "" : manual!.notes + " ") + "(automated checks pass; the manual assessment stands)"
        case (.compliant?, _):
            document.status = .compliant
            document.source = "automated"
            document.assessedBy = "automated check"
            document.assessedAt = automatedAt
            document.notes = fresh.map(\.summary).joined(separator: "; ")
        case (nil, let manualStatus?):
            document.status = manualStatus
            document.source = "manual"
            document.assessedBy = manual!.assessor
            document.assessedAt = manual!.assessedAt
            document.notes = manual!.notes
        default:
            document.notes = requirement.checks.isEmpty
                ? "assessed by people: no manual assessment recorded"
                : "no current result of \(requirement.checks.filter { name in !fresh.contains { $0.check == name } }.joined(separator: ", "))"
        }
        return document
    }

    static func derived(_ requirement: PCIRequirement, subs: [RequirementDocument]) -> RequirementDocument {
        let statuses = subs.map(\.status)
        let status: RequirementStatus
        if statuses.contains(.nonCompliant) {
            status = .nonCompliant
        } else if statuses.allSatisfy({ $0 == .notApplicable }) {
            status = .notApplicable
        } else if statuses.allSatisfy({ $0 == .compliant || $0 == .notApplicable }) {
            status = .compliant
        } else {
            status = .notAssessed
        }
        let assessed = subs.filter { $0.status != .notAssessed }.count
        return RequirementDocument(
            id: requirement.id, title: requirement.title, parent: nil, principal: true, status: status, source: "derived",
            assessedBy: nil, assessedAt: subs.compactMap(\.assessedAt).max(), overruledManual: false,
            notes: "from its sub-requirements: \(assessed) of \(subs.count) assessed"
                + (status == .nonCompliant ? "; non-compliant: " + subs.filter { $0.status == .nonCompliant }.map(\.id).joined(separator: ", ") : ""),
            checks: [], evidence: [], manualAssessment: nil, countsInScore: false)
    }

    static func round(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    /// The score: each part's formula applied to its inputs, then the weighted mean of the
    /// assessed parts.
    public static func score(_ evidence: ComplianceEvidence, requirements: [RequirementDocument]? = nil) -> ComplianceScore {
        let requirements = requirements ?? self.requirements(evidence)
        var parts: [ScorePartResult] = []
        // PCI DSS: counted requirements.
        let counted = requirements.filter(\.countsInScore)
        let compliant = counted.filter { $0.status == .compliant }.map(\.id)
        let failing = counted.filter { $0.status == .nonCompliant }.map(\.id)
        let others = counted.filter { $0.status == .notAssessed || $0.status == .notApplicable }.map { "\($0.id) (\($0.status.rawValue))" }
        parts.append(part(.pciDss, passing: compliant, failing: failing, notCounted: others, inputKind: "requirement",
                          formula: "100 × compliant ÷ (compliant + non_compliant) over the counted requirements (sub-requirements, and principal requirements without any); not_assessed and not_applicable ones are left out"))
        for scorePart in [ScorePart.paymentProcessing, .securityControls, .dataProtection] {
            let checks = ComplianceChecks.all.filter { $0.part == scorePart }
            var passing: [String] = [], failing: [String] = [], notCounted: [String] = []
            for check in checks {
                guard let result = evidence.results[check.name] else { notCounted.append("\(check.name) (not_run)"); continue }
                guard result.isFresh(at: evidence.now) else { notCounted.append("\(check.name) (stale)"); continue }
                if result.passed { passing.append(check.name) } else { failing.append(check.name) }
            }
            parts.append(part(scorePart, passing: passing, failing: failing, notCounted: notCounted, inputKind: "check",
                              formula: "100 × passed ÷ (passed + failed) over the current results of its checks: "
                                + checks.map(\.name).joined(separator: ", ") + "; stale or never-run checks are left out"))
        }
        let assessed = parts.filter { $0.score != nil }
        let weight = assessed.map(\.weight).reduce(0, +)
        let score = weight == 0 ? nil : round(assessed.map { Double($0.weight) * $0.score! }.reduce(0, +) / Double(weight))
        return ComplianceScore(
            score: score, status: weight == 100 ? "assessed" : (weight == 0 ? "not_assessed" : "partially_assessed"),
            assessedWeight: weight, assessedParts: assessed.map(\.part), notAssessedParts: parts.filter { $0.score == nil }.map(\.part),
            formula: "Σ weight × part score ÷ Σ weight over the assessed parts (PCI DSS 40, payment processing 25, security controls 20, data protection 15); parts without evidence are not_assessed and left out, and assessed_weight says how much of the 100 the score covers",
            parts: parts, computedAt: evidence.now)
    }

    static func part(_ part: ScorePart, passing: [String], failing: [String], notCounted: [String], inputKind: String, formula: String) -> ScorePartResult {
        let total = passing.count + failing.count
        return ScorePartResult(
            part: part, title: part.title, weight: part.weight, status: total == 0 ? "not_assessed" : "assessed",
            score: total == 0 ? nil : round(100 * Double(passing.count) / Double(total)), formula: formula, inputKind: inputKind,
            passing: passing, failing: failing, notCounted: notCounted)
    }

    /// The PCI DSS summary.
    public static func pciSummary(_ evidence: ComplianceEvidence, requirements: [RequirementDocument]? = nil) -> PCIComplianceSummary {
        let requirements = requirements ?? self.requirements(evidence)
        var counts = StatusCounts()
        for requirement in requirements where requirement.countsInScore { counts.add(requirement.status) }
        let status: RequirementStatus = counts.nonCompliant > 0 ? .nonCompliant
            : (counts.notAssessed == 0 && counts.compliant > 0 ? .compliant : (counts.compliant == 0 && counts.notAssessed == 0 ? .notApplicable : .notAssessed))
        let assessed = counts.compliant + counts.nonCompliant
        return PCIComplianceSummary(
            status: status, score: assessed == 0 ? nil : round(100 * Double(counts.compliant) / Double(assessed)), counts: counts,
            principalRequirements: requirements.filter(\.principal).map { .init(id: $0.id, title: $0.title, status: $0.status) },
            overruled: requirements.filter(\.overruledManual).map(\.id), generatedAt: evidence.now)
    }

    /// Every automated check with its latest result.
    public static func checks(_ evidence: ComplianceEvidence) -> [CheckDocument] {
        ComplianceChecks.all.map { check in
            let result = evidence.results[check.name]
            let status = result.map { !$0.isFresh(at: evidence.now) ? "stale" : ($0.passed ? "passed" : "failed") } ?? "not_run"
            return CheckDocument(name: check.name, title: check.title, test: check.test, part: check.part, requirements: check.requirements,
                                 status: status, summary: result?.summary, checkedAt: result?.checkedAt, validUntil: result?.validUntil,
                                 runId: result?.runID.uuidString.lowercased(), evidence: result?.evidence)
        }
    }

    /// Administrative and physical controls, assessed by people through their requirements.
    static let manualControls: [(id: String, category: String, name: String, test: String, requirement: String)] = [
        ("ADM-1", "administrative", "Information security policy",
         "An assessor confirms the policy is published, reviewed at least yearly and known to staff", "12.1.1"),
        ("ADM-2", "administrative", "Security awareness program", "An assessor confirms training at hire and at least yearly", "12.6.1"),
        ("ADM-3", "administrative", "Incident response plan",
         "The plan exists and is tested; breach notification obligations are met on time (automated check breach_obligations)", "12.10.1"),
        ("ADM-4", "administrative", "Cryptographic key management procedures",
         "Key custodians and procedures are documented; data keys are rotated within their cryptoperiod (automated check key_cryptoperiod)", "3.6.1"),
        ("PHY-1", "physical", "Facility entry controls", "An assessor confirms badge or escort access to the hosting facility", "9.2.1"),
        ("PHY-2", "physical", "Media destruction", "An assessor confirms media with cardholder data is destroyed when no longer needed", "9.4.7"),
    ]

    /// The security controls: one technical control per automated check, and the administrative
    /// and physical controls that assessors test.
    public static func controls(_ evidence: ComplianceEvidence, requirements: [RequirementDocument]? = nil) -> [ControlDocument] {
        let requirements = requirements ?? self.requirements(evidence)
        let byID = Dictionary(uniqueKeysWithValues: requirements.map { ($0.id, $0) })
        var controls = checks(evidence).map { check in
            ControlDocument(
                id: "TEC-\(check.name)", category: "technical", name: check.title, test: check.test, requirements: check.requirements,
                status: check.status == "passed" ? "effective" : (check.status == "failed" ? "ineffective" : "not_tested"),
                result: check.summary, testedAt: check.checkedAt, testedBy: check.checkedAt == nil ? nil : "automated check", evidence: check.evidence)
        }
        for control in manualControls {
            let requirement = byID[control.requirement]
            let status: String = switch requirement?.status {
            case .compliant?: "effective"
            case .nonCompliant?: "ineffective"
            case .notApplicable?: "not_applicable"
            default: "not_tested"
            }
            controls.append(ControlDocument(
                id: control.id, category: control.category, name: control.name, test: control.test, requirements: [control.requirement],
                status: status, result: requirement.map { $0.notes.isEmpty ? nil : $0.notes } ?? nil, testedAt: requirement?.assessedAt,
                testedBy: requirement?.assessedBy, evidence: nil))
        }
        return controls
    }
}
