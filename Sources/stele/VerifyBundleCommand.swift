import ArgumentParser
import Foundation
import SteleCore
import SteleEvidence

/// `stele verify-bundle`: every check of `Specs/evidence-bundle.md` §7 on a bundle or receipt,
/// directory or `.tar`, offline.
struct VerifyBundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-bundle", abstract: "Verify an evidence bundle or consent receipt offline (exit 0 sound, 1 findings, 2 could not run).")

    @Argument(help: "The bundle: a directory or a .tar.") var path: String
    @Option(help: "The log's verifier key you trust, or a file holding it (without it, the bundle's own key is used).") var key: String?
    @Flag(help: "Output one JSON report.") var json = false

    func run() throws {
        let pinned: NoteVerifierKey?
        do { pinned = try key.map { try verifierKey($0, option: "key") } } catch {
            throw cannotRun("\(error)")
        }
        let files: [String: [UInt8]]
        do { files = try BundleReader.files(at: path) } catch { throw cannotRun(error.message) }
        let report = BundleVerifier().verify(files, pinned: pinned)
        if json {
            printLine(report.json.canonicalText)
        } else {
            for finding in report.findings {
                printLine("\(finding.code): \(finding.file)\(finding.seq.map { " entry \($0)" } ?? ""): \(finding.message)")
            }
            let what = "\(report.type ?? "bundle") of \(report.origin ?? "an unknown log"): \(report.records) records, checkpoint of \(report.treeSize.map(String.init) ?? "?") entries"
            if report.sound {
                printLine("OK: \(what)" + (report.keyPinned ? ", signed by the pinned key" : "; signed by the bundle's own key only: pin the log's published key with --key"))
            } else {
                printLine("FAILED: \(report.findings.count) findings in the \(what)")
            }
        }
        if !report.sound { throw ExitCode(1) }
    }

    private func cannotRun(_ message: String) -> ExitCode {
        if json {
            printLine(JSONValue.object(["sound": .bool(false), "error": .string(message), "findings": .array([])]).canonicalText)
            return ExitCode(2)
        }
        return Failure.couldNotRun(message)
    }
}
