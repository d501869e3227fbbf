// swift-tools-version:6.0
import PackageDescription

/// One set of compiler settings for every target, tests included.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "mingus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mingusctl", targets: ["mingusctl"]),
        .executable(name: "mingus-bench", targets: ["mingus-bench"]),
        .library(name: "MingusAMQP", targets: ["MingusAMQP"]),
        .library(name: "MingusPostgres", targets: ["MingusPostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
    ],
    targets: [
        // C libraries from Debian packages (librabbitmq-dev, libpq-dev), each with a small shim
        // header for what Swift cannot call directly.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // Libraries.
        .target(
            name: "MingusAMQP",
            dependencies: [
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MingusPostgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MingusCore",
            dependencies: [
                "MingusAMQP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "MingusSecurity",
            dependencies: [
                "MingusCore",
                "MingusPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MingusHTTP",
            dependencies: [
                "CZlib",
                "MingusCore",
                "MingusPostgres",
                "MingusSecurity",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MingusMail",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "MingusRuntime",
            dependencies: [
                "MingusCore",
                "MingusHTTP",
                "MingusSecurity",
                "MingusAMQP",
                "MingusPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MingusPayments",
            dependencies: [
                "MingusCore",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MingusAlerts",
            dependencies: [
                "MingusCore",
                "MingusMail",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MingusBreach",
            dependencies: [
                "MingusCore",
                "MingusMail",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusAlerts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .target(
            name: "MingusRetention",
            dependencies: [
                "MingusCore",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MingusPrivacy",
            dependencies: [
                "CZlib",
                "MingusCore",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusAlerts",
                "MingusBreach",
                "MingusPayments",
                "MingusLogs",
                "MingusSecurityMonitoring",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "MingusLogMining"),
        .target(
            name: "MingusLogs",
            dependencies: [
                "MingusLogMining",
                "MingusSecurityMonitoring",
                "MingusCore",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusAlerts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MingusSecurityMonitoring",
            dependencies: [
                "MingusCore",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusAlerts",
                "MingusBreach",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "MingusCompliance",
            dependencies: [
                "MingusCore",
                "MingusPrivacy",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusLogs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .target(
            name: "MingusDashboard",
            dependencies: [
                "MingusCore",
                "MingusSecurityMonitoring",
                "MingusPostgres",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusPayments",
                "MingusBreach",
                "MingusAlerts",
                "MingusCompliance",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .target(
            name: "MingusGateway",
            dependencies: [
                "MingusCore",
                "MingusHTTP",
                "MingusRuntime",
                "MingusSecurity",
                "MingusPayments",
                "MingusAlerts",
                "MingusBreach",
                "MingusRetention",
                "MingusLogs",
                "MingusPrivacy",
                "MingusSecurityMonitoring",
                "MingusCompliance",
                "MingusDashboard",
                "MingusPostgres",
                "MingusAMQP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "MingusCtl",
            dependencies: [
                "MingusCore",
                "MingusLogMining",
                "MingusRetention",
                "MingusRuntime",
                "MingusSecurity",
                "MingusPayments",
                "MingusGateway",
                "MingusDashboard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Executables: thin, they only call into the libraries.
        .executableTarget(
            name: "mingusctl",
            dependencies: ["MingusCtl", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "mingus-gateway", dependencies: ["MingusGateway", "MingusCore"]),
        .executableTarget(name: "mingus-payments-worker", dependencies: ["MingusPayments", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-alerts-worker", dependencies: ["MingusAlerts", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-breach-worker", dependencies: ["MingusBreach", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-retention-worker", dependencies: ["MingusRetention", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-logs-worker", dependencies: ["MingusLogs", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-privacy-worker", dependencies: ["MingusPrivacy", "MingusRuntime", "MingusCore"]),
        .executableTarget(name: "mingus-security-worker", dependencies: ["MingusSecurityMonitoring", "MingusCompliance", "MingusRuntime", "MingusCore"]),
        .executableTarget(
            name: "mingus-test-worker",
            dependencies: ["MingusCore", "MingusRuntime"]
        ),
        .executableTarget(
            name: "mingus-bench",
            dependencies: [
                "MingusCore",
                "MingusRuntime",
                "MingusSecurity",
                "MingusHTTP",
                "MingusGateway",
                "MingusPayments",
                "MingusAlerts",
                "MingusBreach",
                "MingusRetention",
                "MingusLogMining",
                "MingusLogs",
                "MingusPrivacy",
                "MingusSecurityMonitoring",
                "MingusDashboard",
                "MingusCompliance",
                "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Tests: unit tests need nothing; integration tests need the services `make up` starts.
        .target(
            name: "TestSupport",
            dependencies: ["MingusCore", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusAMQP", "MingusPostgres", "MingusPayments"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "UnitTests", dependencies: ["MingusCore", "MingusAMQP", "MingusPostgres", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusPayments", "MingusAlerts", "MingusBreach", "MingusLogs", "MingusLogMining", "TestSupport"]),
        .testTarget(
            name: "RetentionTests",
            dependencies: ["MingusRetention", "MingusHTTP", "MingusPayments", "MingusRuntime", "MingusSecurity", "MingusPostgres", "MingusCore", "TestSupport",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "LogsTests",
            dependencies: ["MingusLogs", "MingusHTTP", "MingusSecurity", "MingusPostgres", "MingusCore", "TestSupport"]
        ),
        .testTarget(
            name: "BreachTests",
            dependencies: ["MingusBreach", "MingusAlerts", "MingusRuntime", "MingusSecurity", "MingusPostgres", "MingusCore", "TestSupport"]
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["MingusRuntime", "MingusSecurity", "MingusCore", "MingusPostgres", "MingusAMQP", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "PrivacyTests",
            dependencies: ["MingusPrivacy", "MingusBreach", "MingusPayments", "MingusAlerts", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusPostgres",
                           "MingusCore", "MingusAMQP", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "SecurityMonitoringTests",
            dependencies: ["MingusSecurityMonitoring", "MingusLogs", "MingusAlerts", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusPostgres",
                           "MingusCore", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "ComplianceTests",
            dependencies: ["MingusCompliance", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusPostgres", "MingusCore", "TestSupport",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "AMQPTests", dependencies: ["MingusAMQP", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["MingusPostgres", "TestSupport"]),
        .testTarget(
            name: "SecurityTests",
            dependencies: ["MingusSecurity", "MingusPayments", "MingusPostgres", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["MingusGateway", "MingusCompliance", "MingusRuntime", "MingusSecurity", "MingusHTTP", "MingusPostgres", "MingusPayments", "MingusAlerts", "MingusAMQP", "MingusCore", "TestSupport",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "AlertsTests",
            dependencies: ["MingusAlerts", "MingusGateway", "MingusRuntime", "MingusSecurity", "MingusPostgres", "MingusCore", "TestSupport"]
        ),
        .testTarget(
            name: "HTTPTests",
            dependencies: ["MingusHTTP", "MingusCore", "MingusPostgres", "TestSupport",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOTLS", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "UnixSignals", package: "swift-service-lifecycle")]
        ),
        .testTarget(
            name: "DashboardTests",
            dependencies: ["MingusDashboard", "MingusSecurityMonitoring", "MingusCompliance", "MingusPayments", "MingusBreach", "MingusAlerts", "MingusHTTP", "MingusSecurity",
                           "MingusPostgres", "MingusCore", "TestSupport",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "FaultTests", dependencies: ["MingusCore", "MingusAMQP", "MingusPostgres", "MingusSecurity", "MingusRuntime", "TestSupport"]),
    ]
)

/// Sources are grouped by tier: drivers (C libraries and their Swift wrappers), the shared
/// platform, the business domains, and the executables with the libraries behind them.
let tiers: [String: [String]] = [
    "Drivers": ["CRabbitMQ", "CLibPQ", "CZlib", "MingusAMQP", "MingusPostgres"],
    "Platform": ["MingusCore", "MingusSecurity", "MingusHTTP", "MingusRuntime", "MingusMail"],
    "Domains": ["MingusPayments", "MingusAlerts", "MingusBreach", "MingusRetention", "MingusLogs", "MingusLogMining", "MingusPrivacy", "MingusSecurityMonitoring", "MingusCompliance", "MingusDashboard"],
    "Executables": ["MingusGateway", "MingusCtl", "mingusctl", "mingus-gateway", "mingus-payments-worker",
                    "mingus-alerts-worker", "mingus-breach-worker", "mingus-retention-worker", "mingus-logs-worker", "mingus-privacy-worker", "mingus-security-worker", "mingus-test-worker", "mingus-bench"],
]
for (tier, names) in tiers {
    for target in package.targets where names.contains(target.name) {
        target.path = "Sources/\(tier)/\(target.name)"
    }
}

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
