import Testing
import TestSupport

extension EndToEnd {
    /// zend reads the plain forms of its command line itself (start-up time) and leaves
    /// every other form to swift-argument-parser; `--name=VALUE` is one it leaves. So
    /// the same options written both ways must give the same output and exit code.
    @Suite("the command line: read without the parser as with it")
    struct CommandLineTests {
        static let commandLines: [[String]] = [
            ["--check", "--log-target", "auto"],
            ["--check", "--threads", "3", "--max-connections", "100", "--log-level", "debug"],
            ["--check", "--idle-timeout", "0", "--drain-timeout", "1.5", "--exit-when-idle", "2.5",
             "--max-request-bytes", "64", "--log-target", "console"],
            ["--check", "--listen", "127.0.0.1:1", "--listen", "[::1]:2", "--listen", "unix:/tmp/zend-cli.sock"],
            ["--check", "localhost", "-p", "99"],
            ["--check", "--aphorisms", "/nonexistent/aphorisms.conf"],
            ["--check", "--listen", "127.0.0.1"],
            ["--threads", "0"],
            ["--check", "--idle-timeout", "nan"],
            ["--check", "--idle-timeout", "1e10"],
            ["--check", "--max-request-bytes", "16777217"],
            ["--check", "--max-connections", "0"],
            ["--check", "--exit-when-idle", "0"],
            ["--check", "--log-level", "loud"],
            ["--check", "--threads", "many"],
            ["--check", "--port", "70000"],
            ["--check", "--request-timeout", "2.5", "--max-connections-per-client", "8", "--send-queue-bytes", "0",
             "--max-aphorism-file-bytes", "4096"],
            ["--check", "--request-timeout", "1e9"],
            ["--check", "--max-connections-per-client", "0"],
            ["--check", "--send-queue-bytes", "100"],
            ["--check", "--max-aphorism-file-bytes", "0"],
            ["--check", "--max-buffer-memory", "1048576"],
            ["--check", "--max-buffer-memory", "100"],
            ["--check", "--control", "/tmp/zend-cli-control.sock", "--listen", "proxy:127.0.0.1:1", "--proxy-from", "10.0.0.0/8",
             "--proxy-from", "::1", "--proxy-timeout", "1.5"],
            ["--check", "--proxy-from", "10.0.0.0/33"],
            ["--check", "--proxy-timeout", "0"],
            ["--check", "--listen", "proxy:nowhere"],
        ]

        /// The same command line with every `--name VALUE` written `--name=VALUE`.
        static func parserForm(_ arguments: [String]) -> [String] {
            var result: [String] = []
            var index = 0
            while index < arguments.count {
                let name = arguments[index] == "-p" ? "--port" : arguments[index]
                if name.hasPrefix("--"), name != "--check", index + 1 < arguments.count {
                    result.append(name + "=" + arguments[index + 1])
                    index += 2
                } else {
                    result.append(name)
                    index += 1
                }
            }
            return result
        }

        /// Output without the timestamps that start console log lines.
        static func comparable(_ output: String) -> String {
            output.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                guard line.hasPrefix("time="), let space = line.firstIndex(of: " ") else { return String(line) }
                return String(line[line.index(after: space)...])
            }.joined(separator: "\n")
        }

        @Test("same output and exit code", arguments: commandLines)
        func sameResult(_ arguments: [String]) throws {
            let parsed = Self.parserForm(arguments)
            #expect(parsed != arguments)
            let fast = try runCommand(Paths.product("zend"), arguments)
            let parser = try runCommand(Paths.product("zend"), parsed)
            #expect(fast.code == parser.code, "\(arguments)")
            #expect(Self.comparable(fast.output) == Self.comparable(parser.output), "\(arguments)")
        }

        @Test("--version alone is answered without the parser, as the parser answers it")
        func version() throws {
            let fast = try runCommand(Paths.product("zend"), ["--version"])
            let parser = try runCommand(Paths.product("zend"), ["--check", "--version"])
            #expect(fast.code == 0 && parser.code == 0)
            #expect(fast.output == "zend 0.1.0\n")
            #expect(parser.output == fast.output)
        }
    }
}
