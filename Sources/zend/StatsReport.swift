import LogEvents
import Reactor
import ZenProtocol

/// What the supervisor knows that the reactors do not, for `zen stats`.
struct ServerFacts {
    var version: String
    var pid: Int32
    var uptimeSeconds: Int64
    var threads: Int
    var listeners: [String]
    var aphorismFile: String?
    var aphorisms: Int
    var reloads: UInt64 = 0
    var reloadFailures: UInt64 = 0
    /// Why the last failed reload failed; empty when none has.
    var lastReloadFailure = ""
    var logEntriesDropped: UInt64 = 0
}

/// The answer to `stats`: the server's facts and every reactor's counters, summed, as
/// redis-`INFO`-style `key: value` lines in sections, or as one JSON object.
///
/// Both forms come from one ordered list of fields, so they always hold the same keys.
struct StatsReport {
    /// A field's value: a count, or text.
    enum Value {
        case number(UInt64)
        case text(String)
    }

    typealias Field = (key: String, value: Value)

    /// Sections of fields, in order; the title heads the section in the text form.
    let sections: [(title: String, fields: [Field])]
    /// Per reactor, the fields that show how the load spreads.
    let reactors: [[Field]]

    init(facts: ServerFacts, reactors stats: [ReactorStats], staleReactors: Int) {
        var total = ReactorStats()
        for reactor in stats { total.add(reactor) }
        sections = [
            ("Server", [
                ("version", .text(facts.version)),
                ("pid", .number(UInt64(facts.pid))),
                ("uptime_seconds", .number(UInt64(max(0, facts.uptimeSeconds)))),
                ("reactor_threads", .number(UInt64(facts.threads))),
                ("listeners", .text(facts.listeners.joined(separator: ","))),
                ("aphorism_file", .text(facts.aphorismFile ?? "")),
                ("aphorisms", .number(UInt64(facts.aphorisms))),
                ("stale_reactors", .number(UInt64(staleReactors))),
            ]),
            ("Connections", [
                ("connections_open", .number(UInt64(total.connectionsOpen))),
                ("connections_accepted", .number(total.connectionsServed)),
                ("refused_max_connections", .number(total.refusedAtLimit)),
                ("refused_per_client", .number(total.refusedPerClient)),
                ("refused_out_of_descriptors", .number(total.refusedOutOfDescriptors)),
                ("accept_pauses", .number(total.acceptPauses)),
            ] + CloseReason.Counted.allCases.map { ("closed_\($0.name)", .number(total.closed($0))) }),
            ("Requests", [
                ("requests_answered", .number(total.requests)),
                ("unknown_questions", .number(total.unknownRequests)),
                ("requests_too_long", .number(total.tooLongRequests)),
                ("bytes_received", .number(total.bytesReceived)),
                ("bytes_sent", .number(total.bytesSent)),
            ]),
            ("PROXY protocol", [
                ("proxy_headers_accepted", .number(total.proxyHeadersAccepted)),
                ("proxy_rejected_untrusted", .number(total.proxyRejectedUntrusted)),
                ("proxy_rejected_timeout", .number(total.proxyRejectedTimeout)),
                ("proxy_rejected_incomplete", .number(total.proxyRejectedIncomplete)),
            ] + (ProxyHeaderError.allCases.map(Optional.some) + [nil]).map { error in
                ("proxy_rejected_\(error?.reason ?? ReactorStats.tooLargeProxyHeader)", .number(total.proxyRejected(error)))
            }),
            ("Reloads", [
                ("reloads", .number(facts.reloads)),
                ("reload_failures", .number(facts.reloadFailures)),
                ("last_reload_failure", .text(facts.lastReloadFailure)),
            ]),
            ("Logging", [
                ("log_entries_dropped", .number(facts.logEntriesDropped)),
            ]),
        ]
        reactors = stats.map { reactor in [
            ("connections_open", .number(UInt64(reactor.connectionsOpen))),
            ("connections_accepted", .number(reactor.connectionsServed)),
            ("requests_answered", .number(reactor.requests)),
            ("bytes_received", .number(reactor.bytesReceived)),
            ("bytes_sent", .number(reactor.bytesSent)),
        ] }
    }

    /// `# Section` headers and `key: value` lines; text values are escaped as logfmt values
    /// (quoted when they hold spaces or control characters). Each reactor is one line,
    /// `reactorN: key=value,…`, as redis writes its keyspace lines.
    var text: String {
        var lines: [String] = []
        for (title, fields) in sections {
            if !lines.isEmpty { lines.append("") }
            lines.append("# \(title)")
            for (key, value) in fields { lines.append("\(key): \(Self.plain(value))") }
        }
        lines.append("")
        lines.append("# Reactors")
        for (index, fields) in reactors.enumerated() {
            lines.append("reactor\(index): " + fields.map { "\($0.key)=\(Self.plain($0.value))" }.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object on one line: every section's fields, then `"reactors": [{…}, …]`.
    var json: String {
        let fields = sections.flatMap(\.fields).map(Self.jsonMember)
        let reactorObjects = reactors.map { "{" + $0.map(Self.jsonMember).joined(separator: ",") + "}" }
        return "{" + (fields + ["\"reactors\":[" + reactorObjects.joined(separator: ",") + "]"]).joined(separator: ",") + "}\n"
    }

    private static func plain(_ value: Value) -> String {
        switch value {
        case .number(let number): String(number)
        case .text(let text): text.isEmpty ? "" : TextEscaping.logfmt(text)
        }
    }

    private static func jsonMember(_ field: Field) -> String {
        switch field.value {
        case .number(let number): "\"\(field.key)\":\(number)"
        case .text(let text): "\"\(field.key)\":\(TextEscaping.json(text))"
        }
    }
}
