import Glibc
import LinuxIO
import Testing
import TestSupport

/// One logfmt line, read strictly: `key=value` pairs separated by one space; a value is
/// bare (no space, `"`, `=`, `\` or control character) or in double quotes with `\"`,
/// `\\`, `\n`, `\r`, `\t` and `\uXXXX` escapes. Nil when the line is anything else.
func parseLogfmt(_ line: Substring) -> [(key: String, value: String)]? {
    var pairs: [(key: String, value: String)] = []
    var scalars = Array(line.unicodeScalars)[...]
    func isBare(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value > 0x20 && scalar.value != 0x7F && !(0x80 ... 0x9F).contains(scalar.value)
            && scalar != "\"" && scalar != "=" && scalar != "\\" && scalar.value != 0x2028 && scalar.value != 0x2029
    }
    while !scalars.isEmpty {
        let key = scalars.prefix { $0 != "=" && $0 != " " }
        guard !key.isEmpty, key.allSatisfy({ ("a" ... "z").contains($0) || $0 == "_" || ("0" ... "9").contains($0) }) else {
            return nil
        }
        scalars = scalars.dropFirst(key.count)
        guard scalars.first == "=" else { return nil }
        scalars = scalars.dropFirst()
        var value = String.UnicodeScalarView()
        if scalars.first == "\"" {
            scalars = scalars.dropFirst()
            while true {
                guard let scalar = scalars.popFirst() else { return nil }
                if scalar == "\"" { break }
                guard scalar != "\\" else {
                    switch scalars.popFirst() {
                    case "\""?: value.append("\"")
                    case "\\"?: value.append("\\")
                    case "n"?: value.append("\n")
                    case "r"?: value.append("\r")
                    case "t"?: value.append("\t")
                    case "u"?:
                        let hex = String(String.UnicodeScalarView(scalars.prefix(4)))
                        guard hex.count == 4, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else { return nil }
                        value.append(decoded)
                        scalars = scalars.dropFirst(4)
                    default: return nil
                    }
                    continue
                }
                guard isBare(scalar) || scalar == " " || scalar == "=" || scalar.value >= 0xA0 else { return nil }
                value.append(scalar)
            }
        } else {
            let bare = scalars.prefix(while: isBare)
            guard !bare.isEmpty else { return nil }
            value.append(contentsOf: bare)
            scalars = scalars.dropFirst(bare.count)
        }
        pairs.append((String(String.UnicodeScalarView(key)), String(value)))
        guard let next = scalars.popFirst() else { break }
        guard next == " ", !scalars.isEmpty else { return nil }
    }
    return pairs
}

extension EndToEnd {
    @Suite("console log lines are logfmt")
    struct LogfmtTests {
        @Test("the parser used here rejects what is not logfmt")
        func parserRejects() {
            #expect(parseLogfmt("time=1 level=info msg=\"a b\" n=1")?.map(\.value) == ["1", "info", "a b", "1"])
            #expect(parseLogfmt("level=info msg=a b") == nil)
            #expect(parseLogfmt("msg=\"open") == nil)
            #expect(parseLogfmt("msg=a\"b") == nil)
            #expect(parseLogfmt("msg=\"a\nb\"") == nil)
        }

        @Test("file names, questions and errors with spaces, quotes, '=', tabs, escapes and newlines: every line parses and keeps its values")
        func hostileValues() throws {
            let base = Paths.scratchDirectory("logfmt")
            defer { Paths.remove(base) }
            // A directory whose name holds everything a value must not pass through raw.
            let directory = base + "/a \"b\"=c\\d\te\nf"
            #expect(mkdir(directory, 0o755) == 0)
            let table = directory + "/t \"x\".conf"
            let question = "Say \"hi\" =there\t\u{1B}[31m \\ ok?"
            Paths.write("\(question) Yes.\nBeautiful is better than? Ugly.\n", to: table)
            let socket = directory + "/s k"
            let zend = try ZendServer(
                ["--aphorisms", table, "--max-request-bytes", "20", "--log-level", "debug", "--log-target", "console",
                 "--control", directory + "/c"],
                listen: ["unix:" + socket], expectListening: false)
            try zend.waitForLog("msg=ready")
            // A client problem, a connection opened and closed, a reload that fails.
            let client = try TestClient(connectingTo: .unix(path: socket))
            client.send(String(repeating: "x", count: 40))
            _ = client.receiveToEnd()
            Paths.write("\(question) Yes.\nbad \"line\" \u{1B}\n", to: table)
            zend.process.signal(SIGHUP)
            try zend.waitForLog("reload failed")
            zend.process.signal(SIGTERM)
            #expect(zend.process.wait(timeout: .seconds(10)) == 0)

            let lines = zend.log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(lines.count >= 10, "\(zend.log)")
            var parsed: [[String: String]] = []
            for line in lines {
                let pairs = parseLogfmt(line)
                #expect(pairs != nil, "not logfmt: \(line)")
                #expect(pairs?.prefix(3).map(\.key) == ["time", "level", "msg"], "\(line)")
                parsed.append(Dictionary((pairs ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }))
            }
            func entry(_ message: String) -> [String: String]? { parsed.first { $0["msg"]?.hasPrefix(message) == true } }
            #expect(entry("listening on")?["msg"] == "listening on unix:\(socket)")
            #expect(entry("control socket on")?["msg"] == "control socket on unix:\(directory)/c")
            #expect(entry("a question is longer")?["question"] == question)
            #expect(entry("reloading")?["file"] == table)
            #expect(entry("reload failed")?["error"]?.hasPrefix("\(table):2: expected 'question? answer'") == true, "\(zend.log)")
            #expect(entry("request too long")?["max_request_bytes"] == "20")
            #expect(entry("connection closed")?["reason"] == "request too long")
        }
    }
}
