// swift-tools-version: 6.0
// Micro-benchmarks of Distri's hot paths, with allocation counts; a package of its own so the main
// build and its CI do not carry the benchmark dependencies. Run: Benchmarks/run.sh
import PackageDescription

let package = Package(
    name: "DistriBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Distri", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
    ],
    targets: [
        .executableTarget(
            name: "hotpaths",
            dependencies: [
                .product(name: "DistriWire", package: "Distri"),
                .product(name: "DistriCore", package: "Distri"),
                .product(name: "DistriImaging", package: "Distri"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
