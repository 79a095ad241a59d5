import ArgumentParser
import Glibc
import ZenClient

/// zend's entry point. swift-argument-parser builds its whole model of the command
/// (reflection over every option, protocol-conformance look-ups, generic metadata) on
/// each run, which took about two thirds of the instructions from exec to the first
/// answer. So the command lines a service manager, a script or the book gives (no
/// arguments, `--aphorisms FILE`, `--listen ADDR --threads N`, `HOST -p PORT`,
/// `--version`) are read here; any other (help, completion scripts, `--name=value`,
/// short options other than `-p`, repeated options, empty values or values starting
/// with '-', anything unknown or invalid) goes to `ZendCommand`, unchanged, so its
/// output and exit code are the parser's own.
///
/// One executable is both commands, as redis-server is also redis-check-aof: run under
/// the name `zen` (the package's /usr/bin/zen is a symlink to zend) it is the client.
/// That is decided first, by one comparison, so the daemon's start pays nothing for it.
@main
enum ZendMain {
    static func main() {
        if isNamedZen(CommandLine.unsafeArgv[0]) {
            ZenCommandLine.main()
            return
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments == ["--version"], let version = ZendCommand.configuration.version.nonEmpty {
            print(version)
            return
        }
        guard let options = ZendMain.options(arguments) else {
            ZendCommand.main()
            return
        }
        let code = options.run()
        if code != 0 { exit(code) }
    }

    /// Whether the program name's last path component is `zen`.
    static func isNamedZen(_ programName: UnsafeMutablePointer<CChar>?) -> Bool {
        guard let programName else { return false }
        let base = strrchr(programName, Int32(UInt8(ascii: "/"))).map { $0 + 1 } ?? programName
        return strcmp(base, "zen") == 0
    }

    /// The options of a command line in the plain form `--name VALUE`, `-p PORT`,
    /// `--check` and one HOST; nil for anything else, or if a value is not one
    /// `ZendCommand` accepts.
    static func options(_ arguments: [String]) -> ZendOptions? {
        var options = ZendOptions()
        var seen: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            var name = arguments[index]
            if let first = name.utf8.first, first != UInt8(ascii: "-") {
                // The positional HOST, once.
                guard options.host == nil else { return nil }
                options.host = name
                index += 1
                continue
            }
            if name == "-p" { name = "--port" }
            // Every option but --listen and --proxy-from may be given once here; the parser
            // decides the rest.
            if name != "--listen" && name != "--proxy-from" {
                if seen.contains(name) { return nil }
                seen.append(name)
            }
            if name == "--check" {
                options.check = true
                index += 1
                continue
            }
            guard index + 1 < arguments.endIndex else { return nil }
            let value = arguments[index + 1]
            guard let first = value.utf8.first, first != UInt8(ascii: "-") else { return nil }
            /// Converts `value` with the parser's own conversion and stores it; false if
            /// the parser would refuse it.
            func set<Value: ExpressibleByArgument>(_ option: WritableKeyPath<ZendOptions, Value>) -> Bool {
                guard let converted = Value(argument: value) else { return false }
                options[keyPath: option] = converted
                return true
            }
            func set<Value: ExpressibleByArgument>(_ option: WritableKeyPath<ZendOptions, Value?>) -> Bool {
                guard let converted = Value(argument: value) else { return false }
                options[keyPath: option] = converted
                return true
            }
            let accepted: Bool
            switch name {
            case "--port": accepted = set(\.port)
            case "--listen": options.listen.append(value); accepted = true
            case "--proxy-from": options.proxyFrom.append(value); accepted = true
            case "--proxy-timeout": accepted = set(\.proxyTimeout)
            case "--aphorisms": accepted = set(\.aphorisms)
            case "--max-aphorism-file-bytes": accepted = set(\.maxAphorismFileBytes)
            case "--threads": accepted = set(\.threads)
            case "--max-request-bytes": accepted = set(\.maxRequestBytes)
            case "--idle-timeout": accepted = set(\.idleTimeout)
            case "--request-timeout": accepted = set(\.requestTimeout)
            case "--max-connections": accepted = set(\.maxConnections)
            case "--max-connections-per-client": accepted = set(\.maxConnectionsPerClient)
            case "--max-buffer-memory": accepted = set(\.maxBufferMemory)
            case "--send-queue-bytes": accepted = set(\.sendQueueBytes)
            case "--drain-timeout": accepted = set(\.drainTimeout)
            case "--exit-when-idle": accepted = set(\.exitWhenIdle)
            case "--control": accepted = set(\.control)
            case "--log-level": accepted = set(\.logLevel)
            case "--log-target": accepted = set(\.logTarget)
            default: accepted = false
            }
            guard accepted else { return nil }
            index += 2
        }
        return options.problem == nil ? options : nil
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
