import ArgumentParser
import ZenProtocol

/// Runs the `zen` client with this process's command line: for the `zen` executable, and
/// for zend when it is run under the name `zen` (one installed binary serves both).
public enum ZenCommandLine {
    /// Parses the arguments, runs the subcommand and exits with its status.
    public static func main() {
        ZenCommand.main()
    }
}

/// The `zen` client: asks zend questions, loads it, shows its counters.
struct ZenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zen",
        abstract: "Client for zend, the Zen-of-Python question/answer server.",
        version: "zen \(ZendVersion.string)",
        subcommands: [Ask.self, BenchCommand.self, StatsCommand.self]
    )
}
