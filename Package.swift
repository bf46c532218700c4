// swift-tools-version:6.1
//
// Stele: a tamper-evident audit log and consent ledger.
//
// Layers, each depending only on the ones above it in this list:
//   CLMDB, COpenSSL, CSteleLinux   thin C modules; nothing but the wrappers below import them
//   CJemalloc                      jemalloc, linked into the `stele` executable only (its `Allocator`)
//   CSteleSHA256x8                 eight-lane AVX2 SHA-256 (libcrypto keeps its multi-buffer code internal), used without SHA-NI
//   CSteleCRC32C                   CRC-32C with SSE 4.2 (the journal's record checksum; no library here offers it)
//   SteleCrypto                    SHA-256 and Ed25519 over libcrypto (the only importer of COpenSSL)
//   SteleLMDB                      a small owner of LMDB environments and transactions (the only importer of CLMDB)
//   SteleCore                      formats: canonical JSON, events, entries, Merkle math, checkpoints and notes
//   SteleConsent                   consent: folding entries into each subject's state, policy, answers, the audit
//   SteleEvidence                  evidence bundles and consent receipts: files, tlog-proofs, tar, their verifier (no store)
//   SteleStore                     the ledger and its one writer (journal, appends, operations), proofs, key and checkpoint files
//   SteleProtocol                  the client protocol: request decoding, validation, limits, error codes
//   SteleClient                    a small blocking client for services written in Swift (and `stele append`)
//   SteleServer                    `stele serve`: the Unix-socket daemon, peers, connections, replies
// Specs/architecture.md names the thread that runs each step of an append.
//   stele                          the command-line tool
import PackageDescription

let package = Package(
    name: "stele",
    products: [
        .executable(name: "stele", targets: ["stele"]),
        .library(name: "SteleCore", targets: ["SteleCore"]),
        .library(name: "SteleStore", targets: ["SteleStore"]),
        .library(name: "SteleConsent", targets: ["SteleConsent"]),
        .library(name: "SteleEvidence", targets: ["SteleEvidence"]),
        .library(name: "SteleLMDB", targets: ["SteleLMDB"]),
        .library(name: "SteleCrypto", targets: ["SteleCrypto"]),
        .library(name: "SteleClient", targets: ["SteleClient"]),
        .library(name: "SteleProtocol", targets: ["SteleProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CJemalloc",
            pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        .target(name: "CSteleLinux"),
        .target(name: "CSteleSHA256x8"),
        .target(name: "CSteleCRC32C"),
        .target(name: "SteleCrypto", dependencies: ["COpenSSL", "CSteleSHA256x8", "CSteleCRC32C"]),
        .target(name: "SteleLMDB", dependencies: ["CLMDB"]),
        .target(name: "SteleCore", dependencies: ["SteleCrypto"]),
        .target(name: "SteleConsent", dependencies: ["SteleCore"]),
        .target(name: "SteleEvidence", dependencies: ["SteleCore", "SteleCrypto", "CSteleLinux"]),
        .target(
            name: "SteleStore",
            dependencies: [
                "SteleCore", "SteleConsent", "SteleEvidence", "SteleCrypto", "SteleLMDB",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "SteleProtocol", dependencies: ["SteleCore", "SteleCrypto"]),
        .target(name: "SteleClient", dependencies: ["CSteleLinux"]),
        .target(
            name: "SteleServer",
            dependencies: [
                "SteleCore", "SteleConsent", "SteleCrypto", "SteleStore", "SteleProtocol", "CSteleLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "stele",
            dependencies: [
                "SteleCore", "SteleConsent", "SteleEvidence", "SteleCrypto", "SteleStore", "SteleProtocol", "SteleServer", "SteleClient",
                "CJemalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "SteleTestSupport", path: "Tests/SteleTestSupport"),
        .testTarget(name: "SteleCryptoTests", dependencies: ["SteleCrypto", "SteleTestSupport"]),
        .testTarget(name: "SteleCoreTests", dependencies: ["SteleCore", "SteleCrypto", "SteleTestSupport"]),
        .testTarget(name: "SteleEvidenceTests", dependencies: ["SteleEvidence", "SteleCore", "SteleCrypto"]),
        .testTarget(
            name: "SteleStoreTests",
            dependencies: ["SteleStore", "SteleConsent", "SteleEvidence", "SteleCore", "SteleCrypto", "SteleLMDB", "SteleTestSupport"]
        ),
        .testTarget(
            name: "SteleServerTests",
            dependencies: [
                "SteleServer", "SteleConsent", "SteleEvidence", "SteleProtocol", "SteleStore", "SteleCore", "SteleCrypto", "SteleClient", "SteleTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    // Require `any` for existential types (SE-0335).
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    // Imports are visible only where they are written (SE-0444).
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    // Imports are internal unless marked otherwise (SE-0409).
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
