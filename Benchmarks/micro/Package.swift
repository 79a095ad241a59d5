// swift-tools-version: 6.1
// Microbenchmarks of zend's pure protocol code (module ZenProtocol), run with
// ordo-one/benchmark. A separate package so that the benchmark framework and its
// malloc interposer never become dependencies of zend itself.
import PackageDescription

let package = Package(
    name: "zend-micro",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "zend", path: "../.."),
        // The interposer backs the malloc metrics on Swift 6.3+ (no jemalloc needed).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ZenProtocolBenchmarks",
            dependencies: [
                .product(name: "ZenProtocol", package: "zend"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ZenProtocolBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
