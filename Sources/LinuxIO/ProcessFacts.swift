import CZendShims
import Glibc

/// Facts about the running process.
public enum ProcessFacts {
    /// CPUs this process may run on (its affinity mask), at least 1.
    public static var availableCPUs: Int { max(Int(zend_available_cpus()), 1) }

    /// The soft and hard limits on open files.
    public static func openFileLimits() -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Raises the soft open-file limit to the hard limit (as systemd advises daemons to).
    @discardableResult
    public static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Gives memory the allocator holds free back to the system (glibc's `malloc_trim`):
    /// after a burst of connections, freed buffers would otherwise stay resident.
    public static func returnFreeMemory() {
        _ = malloc_trim(0)
    }

    /// This process's resident set size in bytes, from /proc/self/statm.
    public static func residentBytes(of pid: Int32? = nil) -> Int? {
        let path = pid.map { "/proc/\($0)/statm" } ?? "/proc/self/statm"
        guard let bytes = try? FileDescriptor.readFile(path) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
