import ArgumentParser
import Glibc
import LinuxIO

/// `zen stats`: zend's counters from its control socket, as redis-cli's `INFO` shows redis's.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show zend's counters: connections, requests, bytes, closes by reason, reloads.",
        discussion: """
        Reads zend's control socket (root only). Without --watch it prints `key: value` \
        lines in sections, as redis's INFO does, or one JSON object with --json. With \
        --watch SECONDS it prints one line per interval with rates, as vmstat does: the \
        first line is the average since zend started.
        """
    )

    /// Where the packaged zend-control.socket puts the control socket.
    static let defaultControlPath = "/run/zend/control.sock"

    @Option(help: ArgumentHelp("zend's control socket.", valueName: "PATH"), completion: .file())
    var control: String = StatsCommand.defaultControlPath

    @Flag(help: "Print one JSON object (with --watch, one per line).")
    var json = false

    @Option(help: ArgumentHelp("Print rates every SECONDS until interrupted.", valueName: "SECONDS"))
    var watch: Double?

    @Option(help: ArgumentHelp("With --watch, stop after N lines.", valueName: "N"))
    var count: Int?

    @Option(help: ArgumentHelp("Give up waiting for zend's answer after this long.", valueName: "SECONDS"))
    var timeout: Double = 5

    func validate() throws {
        if let watch, !(watch >= 0.1 && watch <= 86400) { throw ValidationError("--watch must be from 0.1 to 86400 seconds.") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        if count != nil && watch == nil { throw ValidationError("--count needs --watch.") }
        if !(timeout > 0 && timeout <= 3600) { throw ValidationError("--timeout must be more than 0 and at most 3600 seconds.") }
    }

    func run() throws {
        guard let watch else {
            print(try query(json ? "stats json" : "stats"), terminator: "")
            return
        }
        var previous = try Sample(query("stats"))
        print(json ? previous.jsonRates(since: nil) : Sample.header + "\n" + previous.rateLine(since: nil))
        var printed = 1
        let interval = Int64(watch * 1e9)
        while count.map({ printed < $0 }) ?? true {
            // Wake at fixed times from the first sample, so the intervals do not drift.
            let wake = previous.taken.advanced(byNanoseconds: interval).nanoseconds
            var until = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nil) == EINTR {}
            let sample = try Sample(query("stats"))
            print(json ? sample.jsonRates(since: previous) : sample.rateLine(since: previous))
            fflush(nil)
            previous = sample
            printed += 1
        }
    }

    /// Sends `request` to the control socket and returns the answer.
    private func query(_ request: String) throws -> String {
        let fd: FileDescriptor
        do {
            fd = try Socket.connect(to: .unix(path: control))
        } catch {
            if error.errno == EACCES {
                throw fail("cannot connect to \(control): \(error.reason) (the control socket is root only)", code: ZenExit.noPermission)
            }
            throw fail("cannot connect to \(control): \(error.reason) (is zend running with a control socket?)", code: ZenExit.unavailable)
        }
        defer { fd.close() }
        let answer: [UInt8]
        do {
            try fd.setReceiveTimeout(seconds: timeout)
            try fd.sendAll(Array((request + "\n").utf8))
            try fd.shutdown(Int32(SHUT_WR))
            answer = try fd.readToEnd()
        } catch {
            if error.errno == EAGAIN { throw fail("no answer from \(control) within \(timeout) s", code: ZenExit.timedOut) }
            throw fail("\(control): \(error)", code: ZenExit.ioError)
        }
        let text = String(decoding: answer, as: UTF8.self)
        if text.hasPrefix("error: ") {
            let message = text.dropFirst(7).trimmingSuffix("\n")
            throw fail("zend refused: \(message)", code: message.hasPrefix("permission denied") ? ZenExit.noPermission : ZenExit.protocolError)
        }
        guard !text.isEmpty else { throw fail("\(control) closed the connection without answering", code: ZenExit.protocolError) }
        return text
    }

    private func fail(_ message: String, code: Int32) -> ExitCode {
        ZenExit.fail(message, code: code, command: "stats")
    }
}

/// One reading of the counters, for `--watch`.
private struct Sample {
    var values: [String: String] = [:]
    var taken = MonotonicInstant.now()

    /// Parses the `key: value` lines of the text report.
    init(_ report: String) {
        for line in report.split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            guard !key.hasPrefix("reactor") || key == "reactor_threads" else { continue }
            values[key] = String(line[line.index(after: colon)...].drop { $0 == " " })
        }
    }

    private func number(_ key: String) -> Double { values[key].flatMap(Double.init) ?? 0 }

    /// The counters shown, as (column, key or keys summed, rate or level).
    private static let columns: [(title: String, keys: [String], rate: Bool)] = [
        ("conns", ["connections_open"], false),
        ("accepted/s", ["connections_accepted"], true),
        ("requests/s", ["requests_answered"], true),
        ("unknown/s", ["unknown_questions"], true),
        ("too_long/s", ["requests_too_long"], true),
        ("in_kB/s", ["bytes_received"], true),
        ("out_kB/s", ["bytes_sent"], true),
        ("refused/s", ["refused_max_connections", "refused_per_client", "refused_out_of_descriptors"], true),
        ("timeouts/s", ["closed_idle_timeout", "closed_request_timeout"], true),
        ("resets/s", ["closed_reset"], true),
    ]

    static var header: String {
        columns.map { pad($0.title) }.joined(separator: " ")
    }

    /// Each column's value: a level as it is now, or a rate since `previous` (since zend
    /// started when nil).
    private func figures(since previous: Sample?) -> [Double] {
        let seconds = previous.map { Double(taken.duration(since: $0.taken).nanoseconds) / 1e9 }
            ?? max(number("uptime_seconds"), 1)
        return Self.columns.map { column in
            let now = column.keys.reduce(0) { $0 + number($1) }
            guard column.rate else { return now }
            let before = previous.map { sample in column.keys.reduce(0) { $0 + sample.number($1) } } ?? 0
            let scale = column.title.contains("kB") ? 1000.0 : 1
            return max(0, now - before) / max(seconds, 0.001) / scale
        }
    }

    func rateLine(since previous: Sample?) -> String {
        figures(since: previous).map { Self.pad(Self.format($0)) }.joined(separator: " ")
    }

    func jsonRates(since previous: Sample?) -> String {
        let names = Self.columns.map { $0.title.replacingSlash() }
        return "{" + zip(names, figures(since: previous)).map { "\"\($0)\":\(Self.format($1))" }.joined(separator: ",") + "}"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(Double(Int(value * 10)) / 10)
    }

    private static func pad(_ text: String) -> String {
        String(repeating: " ", count: max(0, 10 - text.count)) + text
    }
}

private extension String {
    /// `requests/s` → `requests_per_s`, for JSON keys.
    func replacingSlash() -> String {
        split(separator: "/").joined(separator: "_per_")
    }
}

private extension Substring {
    func trimmingSuffix(_ suffix: String) -> Substring {
        hasSuffix(suffix) ? dropLast(suffix.count) : self
    }
}
