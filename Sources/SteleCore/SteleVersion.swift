/// The version of Stele this build is: `stele --version`, and the `version` of the daemon's
/// `ledger.started` and `ledger.stopped` entries.
public enum SteleVersion {
    public static let current = "0.9.0"
}
