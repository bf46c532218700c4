// swift-tools-version:6.1
// The tamper drills: attacks on a store's real LMDB files with a separate writer, as an operator with
// file access could make them, for rehearsing what `stele verify` finds (`Specs/threat-model.md`).
// A separate package so the main build and CI never compile it. Run on a copy of a store, never on a
// live one: `Tools/tamper/drills.sh` does every drill on copies and prints verify's finding for each.
import PackageDescription

let package = Package(
    name: "Tamper",
    dependencies: [.package(name: "stele", path: "../..")],
    targets: [
        .executableTarget(
            name: "Tamper",
            dependencies: [
                .product(name: "SteleLMDB", package: "stele"),
                .product(name: "SteleCore", package: "stele"),
                .product(name: "SteleCrypto", package: "stele"),
            ]
        )
    ]
)
