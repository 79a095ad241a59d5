import ArgumentParser
import ZenProtocol

/// The `zen` client: asks zend questions (and, later, loads it).
@main
struct ZenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zen",
        abstract: "Client for zend, the Zen-of-Python question/answer server.",
        version: "zen \(ZendVersion.string)",
        subcommands: [Ask.self, BenchCommand.self, StatsCommand.self]
    )
}
