import Glibc
import LinuxIO

/// A `zend` the test started on an ephemeral port, with its log in a scratch file.
public final class ZendServer: @unchecked Sendable {
    public let process: ChildProcess
    public let directory: String
    public let logPath: String
    /// The addresses zend logged as "listening on …".
    public private(set) var addresses: [String] = []

    /// Starts `zend ARGUMENTS` (default: `--listen 127.0.0.1:0`) and waits until it is ready.
    /// A `launcher` (such as `systemd-socket-activate -l …`) runs zend as its last argument.
    public init(_ arguments: [String] = [], listen: [String] = ["127.0.0.1:0"],
                environment: [String: String]? = nil, passing: [FileDescriptor] = [],
                launcher: [String] = [], expectListening: Bool = true, label: String = "zend") throws {
        directory = Paths.scratchDirectory(label)
        logPath = directory + "/zend.log"
        let command = launcher + [Paths.product("zend")] + listen.flatMap { ["--listen", $0] } + arguments
        process = try ChildProcess(command[0], Array(command.dropFirst()),
                                   environment: environment, stdout: logPath, stderr: logPath, passing: passing)
        if expectListening {
            try waitForLog("msg=ready")
            addresses = log.split(separator: "\n").compactMap { line in
                guard let range = line.firstRange(of: "listening on ") else { return nil }
                return String(line[range.upperBound...].prefix { $0 != " " && $0 != "\"" })
            }
        }
    }

    deinit {
        stop()
        Paths.remove(directory)
    }

    /// The TCP port of the first listener.
    public var port: UInt16 {
        guard let first = addresses.first, let colon = first.lastIndex(of: ":"),
              let port = UInt16(first[first.index(after: colon)...]) else { return 0 }
        return port
    }

    /// Everything zend logged so far.
    public var log: String { Paths.read(logPath) }

    /// Waits until the log contains `text`; throws with the log if it does not in time
    /// or zend exits first.
    public func waitForLog(_ text: String, timeout: Duration = .seconds(15)) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains(text) { return }
            if !process.isRunning, !log.contains(text) {
                throw Failure("zend exited (status \(process.poll() ?? -1)) before logging '\(text)':\n\(log)")
            }
            usleep(10_000)
        }
        throw Failure("zend did not log '\(text)' within \(timeout):\n\(log)")
    }

    /// A client connected to the first listener.
    public func connect(receiveBuffer: Int32? = nil) throws -> TestClient {
        try TestClient(port: port, receiveBuffer: receiveBuffer)
    }

    /// zend's resident memory in bytes.
    public var residentBytes: Int? { ProcessFacts.residentBytes(of: process.pid) }

    /// zend's CPU time (user + system) in clock ticks, from /proc/PID/stat.
    public var cpuTicks: Int? {
        let text = Paths.read("/proc/\(process.pid)/stat")
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// Number of open descriptors of zend.
    public var openDescriptors: Int {
        guard let directory = opendir("/proc/\(process.pid)/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while readdir(directory) != nil { count += 1 }
        return count - 2
    }

    public func stop() {
        process.stop()
    }

    /// The launcher that passes descriptors 3, 4, … to zend as systemd would:
    /// `LISTEN_PID` must be zend's own PID, so a shell sets it and then execs zend.
    public static let socketActivationLauncher = ["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""]

    /// This process's environment without anything systemd sets for a service
    /// (`NOTIFY_SOCKET`, `WATCHDOG_*`, `LISTEN_*`, `JOURNAL_STREAM`), plus `extra`.
    public static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ChildProcess.currentEnvironment()
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"] {
            environment.removeValue(forKey: key)
        }
        environment.merge(extra) { $1 }
        return environment
    }

    /// The environment for passing `names.count` sockets with those names.
    public static func socketActivationEnvironment(_ names: [String]) -> [String: String] {
        environment(["LISTEN_FDS": "\(names.count)", "LISTEN_FDNAMES": names.joined(separator: ":")])
    }
}

/// A test-support failure with a message that says what went wrong.
public struct Failure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
