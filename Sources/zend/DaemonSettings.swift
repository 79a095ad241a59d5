import Glibc
import LinuxIO
import Logging
import Reactor
import ZenProtocol

/// Everything the daemon needs, validated and resolved from the command line.
struct DaemonSettings {
    static let defaultAddress = SocketAddress.ipv4(address: 0x7f00_0001, port: 1060)
    /// The largest aphorism file zend reads: 16 MiB, thousands of times the book's table
    /// (a full table of 4 KiB answers is about 4,000 entries), yet read and parsed in well
    /// under a second, so a reload never holds up signal handling for long.
    static let defaultMaxAphorismFileBytes = 16 << 20

    var aphorismPath: String?
    /// The largest aphorism file accepted, in bytes (`--max-aphorism-file-bytes`); a larger
    /// file is an error at start, on `--check` and on reload.
    var maxAphorismFileBytes: Int = DaemonSettings.defaultMaxAphorismFileBytes
    var table: AphorismTable
    var maxRequestBytes: Int
    /// Addresses asked for with `--listen` or `HOST`/`-p`; empty means "the passed
    /// sockets, or 127.0.0.1:1060 when none were passed".
    var addresses: [ListenAddress]
    var threads: Int
    var reactor: ReactorConfiguration
    var exitWhenIdle: Duration?
    /// Where to create the control socket (`--control`); nil for none of zend's own.
    var controlPath: String?

    /// A configuration problem, said so an admin can fix it, with the errno behind it.
    struct Problem: Error, CustomStringConvertible {
        var description: String
        var errno: Int32 = EINVAL
    }

    init(_ command: ZendOptions) throws(Problem) {
        aphorismPath = command.aphorisms
        maxRequestBytes = command.maxRequestBytes
        maxAphorismFileBytes = command.maxAphorismFileBytes
        if let path = command.aphorisms {
            table = try Self.loadTable(path, maxBytes: maxAphorismFileBytes)
        } else {
            table = .default
        }
        var addresses: [ListenAddress] = []
        for text in command.listen {
            // `proxy:ADDR`: that listener requires a PROXY protocol header first.
            let proxied = text.hasPrefix(ListenAddress.proxyPrefix)
            do {
                addresses += try SocketAddress.parse(proxied ? String(text.dropFirst(ListenAddress.proxyPrefix.count)) : text)
                    .map { ListenAddress(address: $0, proxied: proxied) }
            } catch {
                throw Problem(description: "--listen \(error)")
            }
        }
        if command.host != nil || command.port != nil {
            do {
                addresses += try SocketAddress.resolve(host: command.host ?? "127.0.0.1", port: command.port ?? 1060)
                    .map { ListenAddress(address: $0, proxied: false) }
            } catch {
                throw Problem(description: "host \(error)")
            }
        }
        self.addresses = addresses
        threads = command.threads ?? ProcessFacts.availableCPUs
        var reactor = ReactorConfiguration()
        // 0 means never: a century is "never" and keeps deadline arithmetic far from overflow.
        let never = Duration.seconds(100 * 365 * 86400)
        reactor.idleTimeout = command.idleTimeout == 0 ? never : .seconds(command.idleTimeout)
        reactor.drainTimeout = .seconds(command.drainTimeout)
        reactor.requestTimeout = command.requestTimeout == 0 ? never : .seconds(command.requestTimeout)
        reactor.maxConnectionsPerClient = command.maxConnectionsPerClient ?? 0
        reactor.sendQueueBytes = command.sendQueueBytes
        reactor.maxBufferMemory = command.maxBufferMemory
        if !command.proxyFrom.isEmpty {
            reactor.proxyFrom = []
            for text in command.proxyFrom {
                guard let range = AddressRange(text) else {
                    throw Problem(description: "--proxy-from '\(text)' is not an address or ADDRESS/PREFIX (10.0.0.0/8, ::1/128)")
                }
                reactor.proxyFrom.append(range)
            }
        }
        reactor.proxyHeaderTimeout = .seconds(command.proxyTimeout)
        let openFiles = ProcessFacts.raiseOpenFileLimit()
        reactor.maxConnections = command.maxConnections
            ?? ReactorConfiguration.defaultMaxConnections(openFileLimit: openFiles, threads: threads)
        exitWhenIdle = command.exitWhenIdle.map { .seconds($0) }
        controlPath = command.control
        reactor.reportIdle = exitWhenIdle != nil
        self.reactor = reactor
    }

    /// Reads and parses an aphorism file; errors name the file (and the line).
    ///
    /// Only a regular file of at most `maxBytes` bytes is read, opened without blocking:
    /// a FIFO, a device (`/dev/zero`), a directory or an oversized file is refused at
    /// once, so neither start-up, `--check` nor a SIGHUP reload can hang or run out of memory.
    static func loadTable(_ path: String, maxBytes: Int) throws(Problem) -> AphorismTable {
        let contents: [UInt8]
        do {
            contents = try FileDescriptor.readRegularFile(path, maxBytes: maxBytes)
        } catch {
            switch error {
            case .system(let failure):
                throw Problem(description: "cannot read aphorism file \(path): \(failure.reason)", errno: error.errno)
            case .notRegular:
                throw Problem(description: "aphorism file \(path) \(error.reason)", errno: error.errno)
            case .tooLarge:
                throw Problem(description: "aphorism file \(path) \(error.reason) (--max-aphorism-file-bytes)",
                              errno: error.errno)
            }
        }
        do {
            return try AphorismFile.parse(contents, name: path)
        } catch {
            // The parser's error names the file and line: FILE:LINE: reason.
            throw Problem(description: "\(error)")
        }
    }

    /// Questions a client can never ask, because they are longer than a request may be,
    /// shortened for a log line: a long question shows its first 60 bytes and its length.
    func unreachableQuestions(_ table: AphorismTable) -> [String] {
        table.entries.map(\.question).filter { $0.utf8.count > maxRequestBytes }
            .map { AphorismFile.abbreviated($0) }
    }

    /// Logs a warning for each question of `table` no client can ask.
    func warnAboutUnreachableQuestions(_ table: AphorismTable, logger: Logger) {
        for question in unreachableQuestions(table) {
            logger.warning("a question is longer than --max-request-bytes; no client can ask it", metadata: [
                "question": "\(question)", "max_request_bytes": "\(maxRequestBytes)",
            ])
        }
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
        let proxies = addresses.contains(where: \.proxied)
            ? "; PROXY headers from \(reactor.proxyFrom.map(\.description).joined(separator: ", "))" : ""
        return "\(table.count) aphorisms from \(source); listen \(listen); \(threads) reactor thread(s); "
            + "max \(reactor.maxConnections) connections" + (controlPath.map { "; control socket \($0)" } ?? "") + proxies
    }
}

/// An address to listen on, and whether its connections start with a PROXY header.
struct ListenAddress: CustomStringConvertible {
    /// What marks a PROXY listener on the command line: `proxy:127.0.0.1:1060`.
    static let proxyPrefix = "proxy:"

    var address: SocketAddress
    var proxied: Bool

    var description: String { (proxied ? Self.proxyPrefix : "") + address.description }
}
