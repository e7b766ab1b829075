// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Distri",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Distri", targets: ["Distri"]),
        .library(name: "DistriClient", targets: ["DistriClient"]),
        .library(name: "DistriStorage", targets: ["DistriStorage"]),
        .library(name: "DistriServer", targets: ["DistriServer"]),
        .library(name: "DistriCore", targets: ["DistriCore"]),
        .library(name: "DistriWire", targets: ["DistriWire"]),
        .library(name: "DistriImaging", targets: ["DistriImaging"]),
        .library(name: "DistriIdentity", targets: ["DistriIdentity"]),
        .library(name: "DistriPeer", targets: ["DistriPeer"]),
        .executable(name: "distri-node", targets: ["distri-node"]),
        .executable(name: "distri-peer", targets: ["distri-peer"]),
        .executable(name: "distri-bench", targets: ["distri-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            path: "Sources/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .target(
            name: "DistriCore",
            dependencies: [.product(name: "DequeModule", package: "swift-collections")]
        ),
        .target(
            name: "DistriWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .systemLibrary(
            name: "CTurboJPEG",
            path: "Sources/CTurboJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        .target(name: "CPNGShim", dependencies: ["CPNG"]),
        .target(
            name: "DistriImaging",
            dependencies: [
                "COpenSSL", "CPNG", "CPNGShim", "CTurboJPEG", "DistriCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "DistriIdentity",
            dependencies: ["DistriCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The client: talks bytes to the cloud over the wire protocol, with TLS. What a library user
        // depends on to call a cloud, without the node.
        .target(
            name: "DistriClient",
            dependencies: [
                "DistriCore",
                "DistriWire",
                "DistriStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Durable files: the write-ahead log and whole-file writes through one POSIX file helper.
        .target(name: "DistriStorage"),
        // The server side of the wire: services and their registry, the connection handler, and the
        // dispatcher that performs the task router's actions. Shared by cloud nodes and by peers'
        // endpoints.
        .target(
            name: "DistriServer",
            dependencies: [
                "DistriCore",
                "DistriWire",
                "DistriClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The node: CloudNode, the cluster and DB shells, the built-in, Encrypt and peer-facing
        // services.
        .target(
            name: "Distri",
            dependencies: [
                "DistriCore",
                "DistriWire",
                "DistriClient",
                "DistriServer",
                "DistriStorage",
                "DistriImaging",
                "DistriIdentity",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "DistriCommandLine",
            dependencies: [
                "Distri",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "distri-node",
            dependencies: [
                "DistriCommandLine",
                "Distri",
                "DistriCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Load drivers, the tour and the original experiments, apart from the node tool.
        .executableTarget(
            name: "distri-bench",
            dependencies: [
                "DistriCommandLine",
                "Distri",
                "DistriCore",
                "DistriImaging",
                "DistriPeer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "DistriPeer",
            dependencies: [
                "Distri",
                "DistriCore",
                "DistriImaging",
                "DistriIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "distri-peer",
            dependencies: [
                "DistriCommandLine",
                "DistriPeer",
                "Distri",
                "DistriCore",
                "DistriIdentity",
                "DistriImaging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Instructions per small call, client and server in one process (scripts/call-cost.sh, valgrind).
        .executableTarget(
            name: "call-cost",
            dependencies: [
                "DistriClient",
                "DistriServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/CallCost"
        ),
        // Hot-path micro-benchmarks: `swift package benchmark` (BENCHMARKS.md, scripts/benchmarks.sh).
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                "DistriCore",
                "DistriWire",
                "DistriImaging",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .testTarget(name: "DistriCoreTests", dependencies: ["DistriCore"]),
        .target(name: "DistriTestSupport", dependencies: ["Distri"], path: "Tests/Support"),
        .testTarget(
            name: "DistriPeerTests",
            dependencies: [
                "DistriTestSupport",
                "DistriPeer", "Distri", "DistriCore", "DistriImaging", "DistriIdentity", "DistriCommandLine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DistriWireTests",
            dependencies: ["DistriWire", "DistriCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "DistriImagingTests", dependencies: ["DistriImaging"]),
        .testTarget(
            name: "DistriEndToEndTests",
            dependencies: [
                "DistriTestSupport",
                "Distri", "DistriIdentity", "DistriImaging", "DistriPeer", "distri-node", "distri-peer", "distri-bench",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DistriTests",
            dependencies: [
                "DistriTestSupport",
                "Distri",
                "DistriImaging",
                "DistriCommandLine",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
