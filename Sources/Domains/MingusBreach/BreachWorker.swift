import Foundation
import MingusCore
public import MingusRuntime

extension WorkerDefinition {
    /// `mingus-breach-worker`: queue `mingus.breach`, metrics on 9104.
    public static let breach = WorkerDefinition(name: "breach", defaultMetricsPort: 9104) { setup in
        WorkerParts(registry: JobRegistry())
    }
}
