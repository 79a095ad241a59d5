// Compiled into every fuzz target by Tests/Fuzz/run.sh.

/// Stops with `message` when `condition` is false (`precondition` drops its message in -O builds).
func check(_ condition: Bool, _ message: @autoclosure () -> String = "check failed",
           file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

func fail(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}
