import LogEvents
import Logging
import TestSupport
import Testing
@testable import SystemdSupport

private func record(_ message: String = "hello", level: Logger.Level = .info,
                    _ metadata: [(String, String)] = []) -> LogRecord {
    LogRecord(level: level, message: message, metadata: metadata.map { (key: $0.0, value: $0.1) },
              file: "zend/Daemon.swift", function: "run()", line: 42)
}

@Suite("journal fields")
struct JournalFieldsTests {
    @Test("swift-log metadata keys become valid journal field names")
    func fieldNames() {
        #expect(JournalFields.fieldName("client_address") == "CLIENT_ADDRESS")
        #expect(JournalFields.fieldName("client.address") == "CLIENT_ADDRESS")
        #expect(JournalFields.fieldName("bytes-sent") == "BYTES_SENT")
        #expect(JournalFields.fieldName("_private") == "PRIVATE")
        #expect(JournalFields.fieldName("2fast") == "ZEND_2FAST")
        #expect(JournalFields.fieldName("café") == "CAF_")
        #expect(JournalFields.fieldName("") == "FIELD")
        #expect(JournalFields.fieldName("___") == "FIELD")
        #expect(JournalFields.fieldName(String(repeating: "a", count: 100)).count == 64)
    }

    @Test("keys the journal reserves are prefixed, never dropped: UNIT= is never set")
    func reservedNames() {
        #expect(JournalFields.fieldName("unit") == "ZEND_UNIT")
        #expect(JournalFields.fieldName("message") == "ZEND_MESSAGE")
        #expect(JournalFields.fieldName("priority") == "ZEND_PRIORITY")
        #expect(JournalFields.fieldName("syslog_identifier") == "ZEND_SYSLOG_IDENTIFIER")
        let fields = JournalFields.make(record("x", [("unit", "x.service")]))
        #expect(!fields.contains { $0.hasPrefix("UNIT=") })
        #expect(fields.contains("ZEND_UNIT=x.service"))
    }

    @Test("every entry has MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and CODE_* fields")
    func standardFields() {
        let fields = JournalFields.make(record("request too long", level: .warning, [("client_address", "127.0.0.1:5")]))
        #expect(fields == [
            "MESSAGE=request too long client_address=127.0.0.1:5", "PRIORITY=4", "SYSLOG_IDENTIFIER=zend",
            "CODE_FILE=zend/Daemon.swift", "CODE_LINE=42", "CODE_FUNC=run()",
            "CLIENT_ADDRESS=127.0.0.1:5",
        ])
    }

    @Test("lifecycle events get their fixed MESSAGE_ID")
    func messageIDs() {
        let fields = JournalFields.make(record("ready", [("event", "ready")]))
        #expect(fields.contains("MESSAGE_ID=92f4efcf23954625bdfcc7898dd33726"))
        #expect(fields.contains("EVENT=ready"))
        #expect(!JournalFields.make(record("x", [("event", "no-such-event")])).contains { $0.hasPrefix("MESSAGE_ID=") })
        // Every ID is distinct and 128 bits of hex.
        let ids = LifecycleEvent.allCases.map(\.messageID)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("swift-log levels map to syslog priorities")
    func priorities() {
        #expect([Logger.Level.trace, .debug, .info, .notice, .warning, .error, .critical].map(JournalFields.priority)
                == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("the journald catalog explains every MESSAGE_ID")
    func catalog() throws {
        let catalog = Paths.read(Paths.repository + "/systemd/zend.catalog")
        #expect(!catalog.isEmpty, "systemd/zend.catalog is missing")
        for event in LifecycleEvent.allCases {
            #expect(catalog.contains("-- \(event.messageID)\n"), "\(event) missing from the catalog")
        }
    }
}

@Suite("console format")
struct ConsoleFormatTests {
    @Test("a line is logfmt: time, level, msg and the sorted metadata, but not the event name")
    func line() {
        var entry = record("request too long", level: .warning, [("client_address", "127.0.0.1:5"), ("event", "client-error")])
        entry.seconds = 0
        entry.nanoseconds = 5_000_000
        #expect(ConsoleBackend.format(entry)
            == "time=1970-01-01T00:00:00.005Z level=warning msg=\"request too long\" client_address=127.0.0.1:5\n")
    }

    @Test("values with spaces, quotes, '=', backslashes or control characters are quoted and escaped")
    func hostileValues() {
        var entry = record("line one\nlevel=critical msg=forged", [
            ("file", "/tmp/a b\"c\\d"), ("empty", ""), ("question", "x=y\r\n\u{1b}[31m\u{85}\u{2028}"), ("plain", "ok"),
        ])
        entry.seconds = 0
        entry.nanoseconds = 0
        let line = ConsoleBackend.format(entry)
        #expect(line == "time=1970-01-01T00:00:00.000Z level=info msg=\"line one\\nlevel=critical msg=forged\" "
            + "file=\"/tmp/a b\\\"c\\\\d\" empty=\"\" question=\"x=y\\r\\n\\u001b[31m\\u0085\\u2028\" plain=ok\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test("a journal MESSAGE carries the metadata the same way, after the message")
    func journalMessage() {
        let fields = JournalFields.make(record("reload failed", [("error", "a\nb"), ("event", "reload-failed")]))
        #expect(fields.first == "MESSAGE=reload failed error=\"a\\nb\"")
        #expect(fields.contains("ERROR=a\nb"))
    }
}
