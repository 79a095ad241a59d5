// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "zend",
    products: [
        .executable(name: "zend", targets: ["zend"]),
        .executable(name: "zen", targets: ["zen"]),
        // For the microbenchmarks in Benchmarks/micro, a separate package.
        .library(name: "ZenProtocol", targets: ["ZenProtocol"]),
    ],
    // Exactly the versions the tests ran with: an application pins what it was tested
    // with, and Package.resolved is not committed (see .gitignore).
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        // hdrhistogram-swift's dependency, named here to pin it too (see ZenBench).
        .package(url: "https://github.com/apple/swift-numerics", exact: "1.1.1"),
    ],
    targets: [
        // Pure protocol: framing, the aphorism table and its file format. No I/O.
        .target(name: "ZenProtocol"),
        // The log events that carry a journal MESSAGE_ID, shared by the reactor and the systemd glue.
        .target(name: "LogEvents", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // The few Linux calls Swift's Glibc module does not export.
        .target(name: "CZendShims"),
        // Thin typed wrappers over the syscalls zend uses.
        .target(name: "LinuxIO", dependencies: ["CZendShims"]),
        // The edge-triggered epoll reactor and its connection table.
        .target(name: "Reactor", dependencies: [
            "LinuxIO", "ZenProtocol", "LogEvents",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // libsystemd, found through pkg-config.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // sd_notify, passed file descriptors, journald logging.
        .target(name: "SystemdSupport", dependencies: [
            "CSystemd", "LinuxIO", "LogEvents",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // One executable serves both commands, as redis-server and redis-check-aof are one:
        // run under the name `zen`, zend is the client (ZendMain).
        .executableTarget(name: "zend", dependencies: [
            "Reactor", "SystemdSupport", "ZenProtocol", "LinuxIO", "CZendShims", "LogEvents", "ZenClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The load generator behind `zen bench`: connections, pipelining, verification, latency.
        .target(name: "ZenBench", dependencies: [
            "LinuxIO", "ZenProtocol", "CZendShims",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            // Histogram links swift-numerics already; naming one of its products here keeps
            // SwiftPM from calling the pinned package unused. It adds no code to zen.
            .product(name: "RealModule", package: "swift-numerics"),
        ]),
        // The `zen` client's commands (ask, bench, stats), linked into zend, which runs them
        // when invoked as `zen` (the package's /usr/bin/zen is a symlink to zend).
        .target(name: "ZenClient", dependencies: [
            "LinuxIO", "ZenProtocol", "ZenBench",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // A `zen` executable of its own, for development and the tests (.build/debug/zen).
        .executableTarget(name: "zen", dependencies: ["ZenClient"]),

        .target(name: "TestSupport", dependencies: ["LinuxIO", "CZendShims"], path: "Tests/TestSupport"),
        .testTarget(name: "ZenProtocolTests", dependencies: ["ZenProtocol", "TestSupport"]),
        .testTarget(name: "LinuxIOTests", dependencies: ["LinuxIO", "TestSupport"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "ZenProtocol", "LinuxIO", "TestSupport"]),
        .testTarget(name: "ZenBenchTests", dependencies: ["ZenBench"]),
        .testTarget(name: "SystemdSupportTests", dependencies: [
            "SystemdSupport", "LogEvents", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ZendEndToEndTests", dependencies: ["LinuxIO", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
