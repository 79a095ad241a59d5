import Glibc
import LinuxIO
import Reactor
import ZenProtocol

/// Everything the daemon needs, validated and resolved from the command line.
struct DaemonSettings {
    static let defaultAddress = SocketAddress.ipv4(address: 0x7f00_0001, port: 1060)

    var aphorismPath: String?
    var table: AphorismTable
    var maxRequestBytes: Int
    /// Addresses asked for with `--listen` or `HOST`/`-p`; empty means "the passed
    /// sockets, or 127.0.0.1:1060 when none were passed".
    var addresses: [SocketAddress]
    var threads: Int
    var reactor: ReactorConfiguration
    var exitWhenIdle: Duration?

    /// A configuration problem, said so an admin can fix it, with the errno behind it.
    struct Problem: Error, CustomStringConvertible {
        var description: String
        var errno: Int32 = EINVAL
    }

    init(_ command: ZendOptions) throws(Problem) {
        aphorismPath = command.aphorisms
        maxRequestBytes = command.maxRequestBytes
        if let path = command.aphorisms {
            table = try Self.loadTable(path)
        } else {
            table = .default
        }
        var addresses: [SocketAddress] = []
        for text in command.listen {
            do {
                addresses += try SocketAddress.parse(text)
            } catch {
                throw Problem(description: "--listen \(error)")
            }
        }
        if command.host != nil || command.port != nil {
            do {
                addresses += try SocketAddress.resolve(host: command.host ?? "127.0.0.1", port: command.port ?? 1060)
            } catch {
                throw Problem(description: "host \(error)")
            }
        }
        self.addresses = addresses
        threads = command.threads ?? ProcessFacts.availableCPUs
        var reactor = ReactorConfiguration()
        // 0 means never: a century is "never" and keeps deadline arithmetic far from overflow.
        reactor.idleTimeout = command.idleTimeout == 0 ? .seconds(100 * 365 * 86400) : .seconds(command.idleTimeout)
        reactor.drainTimeout = .seconds(command.drainTimeout)
        let openFiles = ProcessFacts.raiseOpenFileLimit()
        reactor.maxConnections = command.maxConnections
            ?? ReactorConfiguration.defaultMaxConnections(openFileLimit: openFiles, threads: threads)
        exitWhenIdle = command.exitWhenIdle.map { .seconds($0) }
        reactor.reportIdle = exitWhenIdle != nil
        self.reactor = reactor
    }

    /// Reads and parses an aphorism file; errors name the file and line.
    static func loadTable(_ path: String) throws(Problem) -> AphorismTable {
        let contents: [UInt8]
        do {
            contents = try FileDescriptor.readFile(path)
        } catch {
            throw Problem(description: "cannot read aphorism file \(path): \(error.reason)", errno: error.errno)
        }
        do {
            return try AphorismFile.parse(contents, name: path)
        } catch {
            throw Problem(description: "bad aphorism file: \(error)")
        }
    }

    /// Questions a client can never ask, because they are longer than a request may be.
    func unreachableQuestions(_ table: AphorismTable) -> [String] {
        table.entries.map(\.question).filter { $0.utf8.count > maxRequestBytes }
    }

    /// The service answering requests with `table`.
    func service(_ table: AphorismTable) -> ZenService {
        ZenService(table: table, maxRequestBytes: maxRequestBytes)
    }

    /// One line for `--check` and the start-up log.
    var summary: String {
        let source = aphorismPath ?? "the built-in table"
        let listen = addresses.isEmpty
            ? "sockets passed by systemd, else \(Self.defaultAddress)"
            : addresses.map(\.description).joined(separator: ", ")
        return "\(table.count) aphorisms from \(source); listen \(listen); \(threads) reactor thread(s); "
            + "max \(reactor.maxConnections) connections"
    }
}
