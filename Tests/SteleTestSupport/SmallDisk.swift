public import Foundation

/// A tiny tmpfs mounted on a directory, for tests of a full disk. Mounting needs root (or
/// `CAP_SYS_ADMIN`); tests that need it are enabled only where ``isAvailable`` is true, so they are
/// reported as skipped rather than passing without having run.
public enum SmallDisk {
    /// True when this process can mount a tmpfs (checked once, by mounting and unmounting one).
    public static let isAvailable: Bool = {
        guard getuid() == 0 else { return false }
        let probe = TemporaryDirectory("stele-mount-probe")
        guard Glibc.mount("tmpfs", probe.path, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount(probe.path)
        return true
    }()

    /// Mounts a tmpfs of `size` (e.g. "1m") on `path`, private to its owner.
    /// - Returns: false if the mount failed.
    public static func mount(size: String, on path: String) -> Bool {
        Glibc.mount("tmpfs", path, "tmpfs", 0, "size=\(size),mode=0700") == 0
    }

    /// Unmounts what ``mount(size:on:)`` mounted.
    public static func unmount(_ path: String) {
        umount(path)
    }
}
