import ArgumentParser
import Glibc

/// zend's entry point. swift-argument-parser builds its whole model of the command
/// (reflection over every option, protocol-conformance look-ups, generic metadata) on
/// each run, which took about two thirds of the instructions from exec to the first
/// answer. So the command lines a service manager, a script or the book gives (no
/// arguments, `--aphorisms FILE`, `--listen ADDR --threads N`, `HOST -p PORT`,
/// `--version`) are read here; any other (help, completion scripts, `--name=value`,
/// short options other than `-p`, repeated options, empty values or values starting
/// with '-', anything unknown or invalid) goes to `ZendCommand`, unchanged, so its
/// output and exit code are the parser's own.
@main
enum ZendMain {
    static func main() {
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
            // Every option but --listen may be given once here; the parser decides the rest.
            if name != "--listen" {
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
            switch name {
            case "--port": guard let port = UInt16(argument: value) else { return nil }; options.port = port
            case "--listen": options.listen.append(value)
            case "--aphorisms": options.aphorisms = value
            case "--max-aphorism-file-bytes":
                guard let bytes = Int(argument: value) else { return nil }
                options.maxAphorismFileBytes = bytes
            case "--request-timeout":
                guard let seconds = Double(argument: value) else { return nil }
                options.requestTimeout = seconds
            case "--max-connections-per-client":
                guard let connections = Int(argument: value) else { return nil }
                options.maxConnectionsPerClient = connections
            case "--max-buffer-memory":
                guard let bytes = Int(argument: value) else { return nil }
                options.maxBufferMemory = bytes
            case "--send-queue-bytes":
                guard let bytes = Int(argument: value) else { return nil }
                options.sendQueueBytes = bytes
            case "--threads": guard let threads = Int(argument: value) else { return nil }; options.threads = threads
            case "--max-request-bytes":
                guard let bytes = Int(argument: value) else { return nil }
                options.maxRequestBytes = bytes
            case "--idle-timeout":
                guard let seconds = Double(argument: value) else { return nil }
                options.idleTimeout = seconds
            case "--max-connections":
                guard let connections = Int(argument: value) else { return nil }
                options.maxConnections = connections
            case "--drain-timeout":
                guard let seconds = Double(argument: value) else { return nil }
                options.drainTimeout = seconds
            case "--exit-when-idle":
                guard let seconds = Double(argument: value) else { return nil }
                options.exitWhenIdle = seconds
            case "--log-level":
                guard let level = LogLevelOption(argument: value) else { return nil }
                options.logLevel = level
            case "--log-target":
                guard let target = LogTargetOption(argument: value) else { return nil }
                options.logTarget = target
            default:
                return nil
            }
            index += 2
        }
        return options.problem == nil ? options : nil
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
