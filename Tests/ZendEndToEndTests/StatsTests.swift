import Foundation
import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    /// `zen stats` through `--control PATH`: the counters match a known load.
    @Suite("stats over the control socket")
    struct StatsTests {
        /// zend with two reactors and a control socket in a scratch directory of its own.
        private func startZend(_ extra: [String] = []) throws -> (zend: ZendServer, control: String, directory: String) {
            let directory = Paths.scratchDirectory("stats")
            let control = directory + "/control.sock"
            do {
                return (try ZendServer(["--threads", "2", "--control", control] + extra), control, directory)
            } catch {
                Paths.remove(directory)
                throw error
            }
        }

        private func stats(_ control: String, _ arguments: [String] = []) throws -> (code: Int32?, output: String) {
            try runCommand(Paths.product("zen"), ["stats", "--control", control] + arguments)
        }

        private func fields(_ report: String) -> [String: String] { statsFields(report) }

        @Test("after a known load, every counter says what happened, in text and in JSON")
        func knownLoad() throws {
            let (zend, control, directory) = try startZend(["--max-request-bytes", "64"])
            defer { Paths.remove(directory) }
            // 600 known and 40 unknown questions, pipelined on one connection, then a half-close.
            let known = try zend.connect()
            let questions = String(repeating: "Beautiful is better than?", count: 600) + String(repeating: "Who?", count: 40)
            known.send(questions)
            known.shutdownWrite()
            let (answers, end) = known.receiveToEnd()
            #expect(answers.count == 600 * 5 + 40 * unknownAnswer.utf8.count && end == .endOfFile)
            // One too-long request on a second connection.
            let long = try zend.connect()
            let tooLong = String(repeating: "x", count: 100)
            long.send(tooLong)
            _ = long.receiveToEnd()
            long.close()
            // A third connection stays open.
            let open = try zend.connect()
            #expect(open.ask("Simple is better than?", expecting: "Complex.") == "Complex.")

            // The closes happened before zen stats started; give zend's reactors a moment to
            // have handled them (they may be in a later wakeup than the stats request).
            var text = try stats(control)
            let deadline = ContinuousClock.now + .seconds(2)
            while fields(text.output)["connections_open"] != "1", ContinuousClock.now < deadline {
                usleep(20_000)
                text = try stats(control)
            }
            #expect(text.code == 0, "\(text.output)")
            let report = fields(text.output)
            let expected: [String: String] = [
                "requests_answered": "641", "unknown_questions": "40", "requests_too_long": "1",
                "connections_accepted": "3", "connections_open": "1", "closed_client": "1", "closed_too_long": "1",
                "bytes_received": "\(questions.utf8.count + tooLong.utf8.count + 22)",
                "bytes_sent": "\(answers.count + tooLongAnswer.utf8.count + 8)",
                "reactor_threads": "2", "aphorisms": "3", "reloads": "0", "stale_reactors": "0",
                "refused_max_connections": "0", "log_entries_dropped": "0",
            ]
            for (key, value) in expected.sorted(by: { $0.key < $1.key }) {
                #expect(report[key] == value, "\(key)")
            }
            #expect(report["pid"] == "\(zend.process.pid)")
            #expect(text.output.contains("# Server\n") && text.output.contains("# Reactors\nreactor0: "))

            let json = try stats(control, ["--json"])
            #expect(json.code == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
            #expect(object["requests_answered"] as? Int == 641)
            #expect(object["unknown_questions"] as? Int == 40)
            let reactors = try #require(object["reactors"] as? [[String: Any]])
            #expect(reactors.count == 2)
            #expect(reactors.reduce(0) { $0 + ($1["requests_answered"] as? Int ?? 0) } == 641, "the reactors' counts sum to the total")
            #expect(reactors.reduce(0) { $0 + ($1["connections_accepted"] as? Int ?? 0) } == 3)
        }

        @Test("--watch prints a header and one line of rates per interval")
        func watch() throws {
            let (zend, control, directory) = try startZend()
            defer { Paths.remove(directory) }
            let client = try zend.connect()
            #expect(client.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            let result = try stats(control, ["--watch", "0.2", "--count", "3"])
            #expect(result.code == 0)
            let lines = result.output.split(separator: "\n")
            #expect(lines.count == 4, "\(result.output)")
            #expect(lines.first?.contains("requests/s") == true)
            // One connection is open throughout: the first column of every line is 1.
            #expect(lines.dropFirst().allSatisfy { $0.split(separator: " ").first == "1" }, "\(result.output)")
        }

        @Test("a request other than 'stats' or 'stats json' gets an error line")
        func unknownRequest() throws {
            let (zend, control, directory) = try startZend()
            defer { Paths.remove(directory) }
            let client = try TestClient(connectingTo: .unix(path: control))
            client.send("shutdown\n")
            let (reply, _) = client.receiveToEnd()
            #expect(String(decoding: reply, as: UTF8.self) == "error: unknown request \"shutdown\"; ask \"stats\" or \"stats json\"\n")
            #expect(zend.process.isRunning)
        }

        @Test("the socket file is mode 0600, and zend answers only root and its own user",
              .enabled(if: runningAsRoot, "needs root to connect as another user (CI runs as root)"))
        func rootOnly() throws {
            let (zend, control, directory) = try startZend()
            defer { Paths.remove(directory) }
            var status = stat()
            #expect(stat(control, &status) == 0 && status.st_mode & 0o777 == 0o600)
            chmod(directory, 0o755)
            // Opened up by hand, the file no longer protects it: zend's own check still does.
            chmod(control, 0o666)
            let asNobody = try runCommand("/usr/bin/setpriv", [
                "--reuid=65534", "--regid=65534", "--clear-groups", Paths.product("zen"), "stats", "--control", control,
            ])
            #expect(asNobody.code == 77, "\(asNobody.output)")
            #expect(asNobody.output.contains("permission denied: the control socket answers root only"))
            try zend.waitForLog("refused a client that is not root\" pid=")
            #expect(zend.log.contains("uid=65534"))
            #expect(try stats(control).code == 0, "root is still answered")
        }

        @Test("zen stats without a control socket says so (exit 69)")
        func noControlSocket() throws {
            let result = try runCommand(Paths.product("zen"), ["stats", "--control", "/nonexistent/control.sock"])
            #expect(result.code == 69)
            #expect(result.output.contains("cannot connect to /nonexistent/control.sock"))
        }
    }
}
