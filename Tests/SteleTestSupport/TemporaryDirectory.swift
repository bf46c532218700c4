public import Foundation

/// A fresh directory under the system's temporary directory, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory's path.
    public let path: String

    /// Creates the directory.
    public init(_ label: String = "stele-test") {
        var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(cString: template)
    }

    /// A path inside the directory.
    public func appending(_ component: String) -> String { path + "/" + component }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The `stele` executable built beside the test bundle.
public enum SteleBinary {
    /// Its path: the first `stele` found walking up from the test runner's location.
    public static let path: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<6 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("stele").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        fatalError("stele executable not found near \(CommandLine.arguments[0]); run `swift build` first")
    }()

    /// The working directory of every `stele` a test starts without naming one: a scratch directory
    /// of this test process (removed when it exits), so that a default path such as
    /// `./stele-checkpoints` never lands in the checkout, where the README's run command would
    /// later find it.
    public static let scratch: String = {
        let directory = TemporaryDirectory("stele-test-cwd")
        let path = directory.path
        keptAlive = directory
        atexit { try? FileManager.default.removeItem(atPath: SteleBinary.scratch) }
        return path
    }()
    nonisolated(unsafe) private static var keptAlive: TemporaryDirectory?

    /// Starts `stele arguments…` with pipes for standard input and output, in `currentDirectory`
    /// (by default ``scratch``).
    /// Standard error goes to `stderr`, or is discarded.
    public static func start(_ arguments: [String], currentDirectory: String? = nil, stderr: Pipe? = nil) throws -> (Process, stdin: Pipe, stdout: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory ?? scratch)
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr ?? FileHandle.nullDevice
        try process.run()
        return (process, stdin, stdout)
    }

    /// Runs `stele arguments…` to completion with `input` on standard input.
    public static func run(_ arguments: [String], input: String = "", currentDirectory: String? = nil) throws -> (status: Int32, output: String) {
        let (status, output, _) = try run(arguments, input: input, currentDirectory: currentDirectory, keepingErrors: false)
        return (status, output)
    }

    /// Runs `stele arguments…` to completion with `input` on standard input, keeping what it wrote
    /// to standard error too.
    public static func runKeepingErrors(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String, errors: String) {
        try run(arguments, input: input, currentDirectory: nil, keepingErrors: true)
    }

    private static func run(_ arguments: [String], input: String, currentDirectory: String?, keepingErrors: Bool) throws -> (status: Int32, output: String, errors: String) {
        let stderr = keepingErrors ? Pipe() : nil
        let (process, stdin, stdout) = try start(arguments, currentDirectory: currentDirectory, stderr: stderr)
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        // Standard error is drained on its own thread, so that neither pipe can fill and stall it.
        nonisolated(unsafe) var errors = Data()
        let drained = DispatchSemaphore(value: 0)
        if let stderr {
            Thread {
                errors = stderr.fileHandleForReading.readDataToEndOfFile()
                drained.signal()
            }.start()
        } else {
            drained.signal()
        }
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }
}

/// Another program the tests run (python3, bash, a setpriv'd stele), to completion.
public enum ExternalProgram {
    /// Runs `executable arguments…`; standard output and error together, as one text.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], currentDirectory: String? = nil
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// A file of this repository, from a test file's `#filePath`.
    public static func repositoryFile(_ relative: String, from testFile: String = #filePath) -> String {
        URL(fileURLWithPath: testFile).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).path
    }
}
