public import SteleCore

/// The configured side of consent (`Specs/consent.md`, "Purposes"): the purposes, the minimum age
/// per jurisdiction, and the audit's delays. The `consent` member of the daemon's configuration.
public struct ConsentPolicy: Sendable {
    /// A configured purpose.
    public struct Purpose: Sendable, Hashable {
        public var name: String
        public var description: String
        /// A grant under a notice that a newer notice for this purpose superseded no longer counts.
        public var reconsentOnNewNotice: Bool

        public init(_ name: String, description: String, reconsentOnNewNotice: Bool) {
            self.name = name
            self.description = description
            self.reconsentOnNewNotice = reconsentOnNewNotice
        }
    }

    /// By name.
    public private(set) var purposes: [String: Purpose]
    /// The age below which a grant counts only from a guardian, per jurisdiction (13 to 16).
    public var minimumAge: [String: Int] = ["EU": 16]
    /// The minimum age where the jurisdiction has none configured.
    public var defaultMinimumAge = 13
    /// An `occurred` earlier than `ts` by more than this (µs) is reported as backfilled.
    public var backfillLag: Int64 = 300_000_000
    /// A withdrawal not followed within this (µs) by `consent.enforced` for its purpose is a finding.
    public var enforcementDelay: Int64 = 86_400_000_000

    /// The defaults, from the platform's policies.
    public init() {
        self.init(purposes: [
            Purpose("marketing.email", description: "Optional marketing email", reconsentOnNewNotice: true),
            Purpose("cookies.analytics", description: "Non-essential analytics cookies", reconsentOnNewNotice: false),
            Purpose("cookies.advertising", description: "Non-essential advertising cookies", reconsentOnNewNotice: true),
        ])
    }

    public init(purposes: [Purpose]) {
        self.purposes = Dictionary(purposes.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    }

    /// The purpose names, sorted.
    public var purposeNames: [String] { purposes.keys.sorted() }

    /// The age below which `jurisdiction`'s subjects need a guardian's grant.
    public func minimumAge(in jurisdiction: String) -> Int {
        minimumAge[jurisdiction] ?? defaultMinimumAge
    }

    /// True when an asserted age band may lie below `jurisdiction`'s minimum age: a band is judged
    /// by its youngest age, so a subject who might be a minor is treated as one.
    public func isMinor(_ age: SubjectConsent.Age) -> Bool {
        let youngest: Int
        switch age.band {
        case "under_13": youngest = 0
        case "13_15": youngest = 13
        case "16_17": youngest = 16
        default: youngest = 18
        }
        return youngest < minimumAge(in: age.jurisdiction)
    }

    // MARK: Configuration

    /// Reads the `consent` member of a configuration over the defaults.
    /// - Throws: a message naming the offending member.
    public mutating func apply(json value: JSONValue) throws(ConsentPolicyError) {
        guard let object = value.objectValue else { throw ConsentPolicyError("\"consent\" must be an object") }
        let known: Set = ["purposes", "minimum_age", "backfill_lag_seconds", "enforcement_delay_seconds"]
        if let extra = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConsentPolicyError("unknown member \"consent.\(extra)\"")
        }
        if let list = object["purposes"] {
            guard let entries = list.arrayValue, !entries.isEmpty else { throw ConsentPolicyError("\"consent.purposes\" must be a non-empty array") }
            var parsed: [Purpose] = []
            for entry in entries {
                guard let name = entry["name"]?.stringValue, Self.isValidPurposeName(name) else {
                    throw ConsentPolicyError("each purpose needs a \"name\" of 1-64 of a-z 0-9 _ . -")
                }
                guard let description = entry["description"]?.stringValue, !description.isEmpty else {
                    throw ConsentPolicyError("purpose \"\(name)\" needs a \"description\"")
                }
                var reconsent = false
                if let flag = entry["reconsent_on_new_notice"] {
                    guard let b = flag.boolValue else { throw ConsentPolicyError("purpose \"\(name)\": \"reconsent_on_new_notice\" must be true or false") }
                    reconsent = b
                }
                guard !parsed.contains(where: { $0.name == name }) else { throw ConsentPolicyError("purpose \"\(name)\" is configured twice") }
                parsed.append(Purpose(name, description: description, reconsentOnNewNotice: reconsent))
            }
            purposes = Dictionary(uniqueKeysWithValues: parsed.map { ($0.name, $0) })
        }
        if let ages = object["minimum_age"] {
            guard let members = ages.objectValue else { throw ConsentPolicyError("\"consent.minimum_age\" must be an object of jurisdiction to age") }
            var table: [String: Int] = [:]
            for (jurisdiction, age) in members {
                guard let years = age.integerValue, (13...16).contains(years) else {
                    throw ConsentPolicyError("\"consent.minimum_age.\(jurisdiction)\" must be an integer from 13 to 16")
                }
                if jurisdiction == "default" { defaultMinimumAge = Int(years) } else { table[jurisdiction] = Int(years) }
            }
            minimumAge = table
        }
        func seconds(_ name: String) throws(ConsentPolicyError) -> Int64? {
            guard let member = object[name] else { return nil }
            guard let s = member.integerValue, (0...31_536_000).contains(s) else {
                throw ConsentPolicyError("\"consent.\(name)\" must be an integer in 0...31536000")
            }
            return s * 1_000_000
        }
        if let lag = try seconds("backfill_lag_seconds") { backfillLag = lag }
        if let delay = try seconds("enforcement_delay_seconds") { enforcementDelay = delay }
    }

    /// `[a-z0-9_.-]{1,64}`.
    public static func isValidPurposeName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
    }
}

/// A `consent` configuration that cannot be used.
public struct ConsentPolicyError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension EventCatalogue {
    /// This catalogue, accepting only the purposes `policy` configures.
    public func naming(_ policy: ConsentPolicy) -> EventCatalogue {
        var catalogue = self
        catalogue.purposes = Set(policy.purposeNames)
        return catalogue
    }
}
