// swift-tools-version:6.1
// The daemon load generator: a separate package so the main build and CI never compile it.
// Run: swift run -c release --package-path Tools/LoadGenerator LoadGenerator --help
import PackageDescription

let package = Package(
    name: "LoadGenerator",
    dependencies: [.package(name: "stele", path: "../..")],
    targets: [
        .executableTarget(name: "LoadGenerator", dependencies: [.product(name: "SteleClient", package: "stele")])
    ],
    // A measuring tool built from plain threads and locks; strict concurrency checking adds nothing here.
    swiftLanguageModes: [.v5]
)
