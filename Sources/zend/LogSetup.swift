import Logging
import SystemdSupport

/// Chooses and installs the swift-log backend once at start.
enum LogSetup {
    static func start(level: Logger.Level, target: LogTargetOption) -> Logger {
        let sink = DirectLogSink()
        LoggingSystem.bootstrap { _ in ConsoleLogHandler(level: level, sink: sink) }
        return Logger(label: "zend")
    }
}
