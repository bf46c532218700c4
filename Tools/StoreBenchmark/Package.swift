// swift-tools-version:6.1
// The store benchmark: a separate package so the main build and CI never compile it.
// Run: swift run -c release --package-path Tools/StoreBenchmark
import PackageDescription

let package = Package(
    name: "StoreBenchmark",
    dependencies: [.package(name: "stele", path: "../..")],
    targets: [
        .executableTarget(
            name: "StoreBenchmark",
            dependencies: [
                .product(name: "SteleStore", package: "stele"),
                .product(name: "SteleConsent", package: "stele"),
                .product(name: "SteleCore", package: "stele"),
                .product(name: "SteleLMDB", package: "stele"),
                .product(name: "SteleProtocol", package: "stele"),
                .product(name: "SteleCrypto", package: "stele"),
            ]
        )
    ]
)
