import ArgumentParser
import SteleCore

/// `stele`: the ledger's single command-line tool. Subcommand names are part of the user contract.
@main
struct Stele: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stele",
        abstract: "A tamper-evident audit log and consent ledger.",
        version: SteleVersion.current,
        subcommands: [
            InitCommand.self, ServeCommand.self, AppendCommand.self, StatusCommand.self, IngestCommand.self, QueryCommand.self, ProveCommand.self, CheckpointCommand.self, KeyCommand.self,
            VerifyCommand.self, RecoverCommand.self, ConsentCommand.self, PruneCommand.self, EraseCommand.self, HoldCommand.self, CompactCommand.self, RetentionCommand.self, MonitorCommand.self,
            ExportCommand.self, VerifyBundleCommand.self, DsarCommand.self, BackupCommand.self, RestoreCommand.self,
        ])
}
