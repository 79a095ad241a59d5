// swift-tools-version:6.0
// A SwiftNIO peer of zend, for benchmarks only. A separate package with its
// own .build/, so building it never touches the main zend package.
import PackageDescription

let package = Package(
    name: "zen-nio",
    products: [
        .executable(name: "zen-nio", targets: ["zen-nio"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "zen-nio",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
