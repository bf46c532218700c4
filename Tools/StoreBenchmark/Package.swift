// swift-tools-version:6.1
// The store benchmark: a separate package so the main build and CI never compile it.
// Run: swift run -c release --package-path Tools/StoreBenchmark
import PackageDescription

let package = Package(
    name: "StoreBenchmark",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "StoreBenchmark",
            dependencies: [
                .product(name: "SteleStore", package: "main"),
                .product(name: "SteleCore", package: "main"),
                .product(name: "SteleLMDB", package: "main"),
                .product(name: "SteleProtocol", package: "main"),
            ]
        )
    ]
)
