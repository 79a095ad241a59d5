import CZendShims
import Glibc
import LinuxIO

/// A process a test started: spawned with `posix_spawn`, cleaned up by its PID.
///
/// Tests `defer { child.stop() }` right after spawning, so a failing test still
/// kills what it started. When `ZEND_TEST_PIDS` names a file, every PID is appended
/// to it, so the test script can kill leftovers if the test runner itself dies.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is only touched by the thread that owns the test.

    public let pid: pid_t
    private var status: Int32?

    /// Starts `executable` with `arguments`; stdout and stderr go to the given paths
    /// (or /dev/null); `passing` descriptors become fds 3, 4, … in the child.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdout: String? = nil, stderr: String? = nil, stdin: String? = nil,
                stderrDescriptor: FileDescriptor? = nil,
                passing descriptors: [FileDescriptor] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let stderrDescriptor {
            posix_spawn_file_actions_adddup2(&actions, stderrDescriptor.rawValue, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        // Through high numbers first, so a source that is itself 3, 4, … is not overwritten.
        for (index, fd) in descriptors.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd.rawValue, Int32(900 + index))
        }
        for index in descriptors.indices {
            posix_spawn_file_actions_adddup2(&actions, Int32(900 + index), Int32(3 + index))
        }
        zend_spawn_file_actions_addclosefrom(&actions, Int32(3 + descriptors.count))

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environment = environment ?? Self.currentEnvironment()
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SystemError("posix_spawn(\(executable))", errno: result) }
        self.pid = pid
        if let registry = getenv("ZEND_TEST_PIDS") {
            let line = "\(pid)\n"
            let fd = open(registry, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd >= 0 {
                _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
                Glibc.close(fd)
            }
        }
    }

    deinit {
        stop()
    }

    /// This process's environment as a dictionary.
    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    /// Sends `signal` if the process has not been reaped yet.
    public func signal(_ signal: Int32) {
        guard status == nil else { return }
        kill(pid, signal)
    }

    /// The exit status once the process has ended (reaping it), without waiting.
    public func poll() -> Int32? {
        if status == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
        }
        return status
    }

    /// True while the process runs.
    public var isRunning: Bool { poll() == nil }

    /// Waits up to `timeout` for the process to end; returns its raw wait status, or nil.
    @discardableResult
    public func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = poll() { return status }
            usleep(5_000)
        }
        return poll()
    }

    /// The exit code if the process exited normally.
    public var exitCode: Int32? {
        guard let status = poll(), status & 0x7f == 0 else { return nil }
        return (status >> 8) & 0xff
    }

    /// The signal that ended the process, if one did.
    public var terminatingSignal: Int32? {
        guard let status = poll(), status & 0x7f != 0, status & 0x7f != 0x7f else { return nil }
        return status & 0x7f
    }

    /// Ends the process: SIGTERM, then SIGKILL after `grace`; always reaps it.
    public func stop(grace: Duration = .seconds(2)) {
        guard poll() == nil else { return }
        kill(pid, SIGTERM)
        if wait(timeout: grace) == nil {
            kill(pid, SIGKILL)
            wait(timeout: .seconds(5))
        }
    }
}
