import Glibc
import LinuxIO
import Testing
import TestSupport

/// Decodes journald's native protocol: `NAME=value\n`, or `NAME\n` + 64-bit little-endian
/// length + value + `\n` for values holding newlines.
func journalEntry(_ datagram: [UInt8]) -> [(name: String, value: String)] {
    var fields: [(String, String)] = []
    var position = 0
    while position < datagram.count {
        guard let end = datagram[position...].firstIndex(where: { $0 == 0x0A || $0 == 0x3D }) else { break }
        let name = String(decoding: datagram[position ..< end], as: UTF8.self)
        if datagram[end] == 0x3D {
            let valueEnd = datagram[(end + 1)...].firstIndex(of: 0x0A) ?? datagram.count
            fields.append((name, String(decoding: datagram[(end + 1) ..< valueEnd], as: UTF8.self)))
            position = valueEnd + 1
        } else {
            var length = 0
            for index in 0 ..< 8 { length |= Int(datagram[end + 1 + index]) << (8 * index) }
            let start = end + 9
            fields.append((name, String(decoding: datagram[start ..< start + length], as: UTF8.self)))
            position = start + length + 1
        }
    }
    return fields
}

extension EndToEnd {
    /// zend's journal output, received on a socket the test binds where journald's would be:
    /// zend runs in its own mount namespace with the test's directory over /run/systemd.
    @Suite("journald native protocol", .enabled(if: runningAsRoot, "needs root for a private mount namespace"))
    struct JournalTests {
        /// A zend whose /run/systemd/journal/socket is `journal`, the test's own socket.
        private final class JournaledZend {
            let directory = Paths.scratchDirectory("journal")
            let journal: NotifyListener
            let port: UInt16
            let zend: ZendServer

            init(_ arguments: [String]) throws {
                mkdir(directory + "/journal", 0o755)
                journal = try NotifyListener(path: directory + "/journal/socket")
                port = try freePort()
                zend = try ZendServer(["--listen", "127.0.0.1:\(port)", "--log-target", "journal"] + arguments, listen: [],
                                      launcher: ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                                                 "dir=$1; shift; mount --bind \"$dir\" /run/systemd && exec \"$@\"",
                                                 "sh", directory],
                                      expectListening: false)
            }

            deinit {
                zend.stop()
                Paths.remove(directory)
            }
        }

        @Test("entries carry MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_*, MESSAGE_ID and metadata as valid field names")
        func fields() throws {
            let rig = try JournaledZend(["--log-level", "debug", "--max-request-bytes", "64"])
            let (journal, port, zend) = (rig.journal, rig.port, rig.zend)
            let client = try TestClient.connecting(port: port)
            journal.collect()
            #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            client.shutdownWrite()
            _ = client.receiveToEnd()
            let rude = try TestClient.connecting(port: port)
            rude.send(String(repeating: "x", count: 100))
            _ = rude.receiveToEnd()
            journal.collect()
            zend.process.signal(SIGTERM)
            // Read as journald would, while zend runs: the socket queue is short.
            let deadline = ContinuousClock.now + .seconds(10)
            while zend.process.isRunning, ContinuousClock.now < deadline {
                journal.collect()
                usleep(5_000)
            }
            #expect(zend.process.exitCode == 0)
            #expect(zend.log.isEmpty, "console output although the journal was chosen: \(zend.log)")
            #expect(journal.waitFor("MESSAGE=stopped", timeout: .seconds(2)) != nil)
            let entries = journal.datagrams.map(journalEntry)
            func entry(_ message: String) -> [String: String]? {
                entries.first { $0.contains { $0.name == "MESSAGE" && $0.value.hasPrefix(message) } }
                    .map { Dictionary($0.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }) }
            }
            let started = try #require(entry("starting version=0.1.0"))
            #expect(started["MESSAGE_ID"] == "c43a29d444624522ab7b58c6adc9871b")
            #expect(started["PRIORITY"] == "6")
            #expect(started["SYSLOG_IDENTIFIER"] == "zend")
            #expect(started["CODE_FILE"]?.hasSuffix("Daemon.swift") == true)
            #expect(Int(started["CODE_LINE"] ?? "") != nil)
            #expect(started["CODE_FUNC"]?.isEmpty == false)
            let ready = try #require(entry("ready"))
            #expect(ready["MESSAGE_ID"] == "92f4efcf23954625bdfcc7898dd33726")
            #expect(ready["LISTENERS"] == "1")
            #expect(ready["APHORISMS"] == "3")
            let closed = try #require(entry("connection closed"))
            #expect(closed["PRIORITY"] == "7")
            #expect(closed["CLIENT_ADDRESS"]?.hasPrefix("127.0.0.1:") == true)
            #expect(Int(closed["CONNECTION_ID"] ?? "") != nil)
            #expect(closed["REQUESTS"] == "1")
            #expect(closed["BYTES_RECEIVED"] == "22")
            #expect(closed["BYTES_SENT"] == "8")
            let tooLong = try #require(entry("request too long"))
            #expect(tooLong["MESSAGE_ID"] == "f54d6bcc279145fcbf04073d0de2cc55")
            #expect(tooLong["PRIORITY"] == "5", "a client's problem is a notice")
            #expect(tooLong["CLIENT_ADDRESS"]?.hasPrefix("127.0.0.1:") == true)
            let stopping = try #require(entry("SIGTERM: draining"))
            #expect(stopping["MESSAGE_ID"] == "c42069910768418bb5481b3d2d0508fd")
            // Every field name is one journald accepts from a client, and none claims a unit.
            for fields in entries {
                for (name, _) in fields {
                    #expect(name.allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" } && !name.isEmpty, "\(name)")
                    #expect(!name.hasPrefix("_") && !name.first!.isNumber, "\(name)")
                    #expect(name != "UNIT", "UNIT= set")
                }
            }
        }

        @Test("a journal that does not read never stalls the reactor; dropped entries are reported once it drains")
        func blockedJournal() throws {
            let rig = try JournaledZend(["--log-level", "debug"])
            let (journal, port) = (rig.journal, rig.port)
            _ = try TestClient.connecting(port: port)
            // The socket queue holds a handful of datagrams; then sd_journal_sendv blocks,
            // as it does while journald is stopped. Clients must not notice.
            let (worst, wrong) = try shortConnections(port: port, rounds: 3000)
            #expect(wrong == 0)
            #expect(worst < 500, "slowest answer took \(worst) ms with the journal blocked")
            let report = try #require(journal.waitFor("log messages were dropped", timeout: .seconds(20)))
            #expect(report.contains("MESSAGE_ID=b0c83045e6b94328b850f33ec17b7170"))
            #expect(report.contains("PRIORITY=4"))
        }
    }

    @Suite("watchdog", .enabled(if: runningAsRoot, "needs root to ptrace one reactor thread (CI runs as root, so it always runs there)"))
    struct WatchdogTests {
        @Test("a stuck reactor stops the WATCHDOG=1 keep-alives; they resume when it moves again")
        func stuckReactor() throws {
            let directory = Paths.scratchDirectory("watchdog")
            defer { Paths.remove(directory) }
            let notify = try NotifyListener(directory: directory)
            let zend = try ZendServer(["--threads", "2"], environment: ZendServer.environment([
                "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000",
            ]))
            #expect(notify.waitFor("READY=1") != nil)
            usleep(500_000)
            #expect(notify.count("WATCHDOG=1") >= 2)

            // Stop only reactor 0 (PTRACE_SEIZE + PTRACE_INTERRUPT stops one thread, not the process).
            let reactor = try #require(Paths.threads(of: zend.process.pid).first { $0.name == "zend-reactor-0" })
            let script = """
            import ctypes, os, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
            tid = int(sys.argv[1])
            if libc.ptrace(0x4206, tid, None, None) != 0: sys.exit("PTRACE_SEIZE: errno %d" % ctypes.get_errno())
            if libc.ptrace(0x4207, tid, None, None) != 0: sys.exit("PTRACE_INTERRUPT: errno %d" % ctypes.get_errno())
            os.waitpid(tid, 0x40000000)
            print("stopped", flush=True)
            time.sleep(float(sys.argv[2]))
            libc.ptrace(17, tid, None, None)
            print("resumed", flush=True)
            """
            let output = directory + "/ptrace.out"
            let tracer = try ChildProcess("/usr/bin/python3", ["-c", script, "\(reactor.id)", "1.5"],
                                          stdout: output, stderr: output)
            defer { tracer.stop() }
            let deadline = ContinuousClock.now + .seconds(5)
            while !Paths.read(output).contains("stopped"), ContinuousClock.now < deadline { usleep(5_000) }
            #expect(Paths.read(output).contains("stopped"), "\(Paths.read(output))")
            // One keep-alive may already be on its way; after that, none while the reactor is stuck.
            usleep(300_000)
            let during = notify.count("WATCHDOG=1")
            usleep(900_000)
            #expect(notify.count("WATCHDOG=1") == during, "keep-alives sent while a reactor was stuck")
            try zend.waitForLog("made no progress; withholding the watchdog keep-alive")
            tracer.wait(timeout: .seconds(5))
            #expect(Paths.read(output).contains("resumed"))
            let after = notify.count("WATCHDOG=1")
            usleep(800_000)
            #expect(notify.count("WATCHDOG=1") > after, "keep-alives did not resume")
            #expect(try zend.connect().ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }
    }
}
