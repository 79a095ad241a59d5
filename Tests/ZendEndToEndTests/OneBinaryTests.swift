import Glibc
import Testing
import TestSupport

extension EndToEnd {
    /// The package installs one executable, /usr/bin/zend, and /usr/bin/zen as a symlink
    /// to it: run under the name `zen`, zend is the client (as redis-server is also
    /// redis-check-aof). Here the built zend is run through such a symlink.
    @Suite("one executable: zend run as zen is the client")
    struct OneBinaryTests {
        /// A scratch directory holding a symlink named `name` to the built zend.
        private func link(_ name: String) throws -> (path: String, directory: String) {
            let directory = Paths.scratchDirectory("onebin")
            let path = directory + "/" + name
            guard symlink(Paths.product("zend"), path) == 0 else {
                Paths.remove(directory)
                throw SymlinkFailed(errno: errno)
            }
            return (path, directory)
        }

        private struct SymlinkFailed: Error { let errno: Int32 }

        @Test("zen --version through the symlink is the client's version")
        func version() throws {
            let (zen, directory) = try link("zen")
            defer { Paths.remove(directory) }
            let result = try runCommand(zen, ["--version"])
            #expect(result.code == 0)
            #expect(result.output == (try runCommand(Paths.product("zen"), ["--version"]).output))
            #expect(result.output.hasPrefix("zen "))
        }

        @Test("zen ask through the symlink answers; -e makes an error answer exit 1")
        func ask() throws {
            let (zen, directory) = try link("zen")
            defer { Paths.remove(directory) }
            let zend = try ZendServer()
            let answered = try runCommand(zen, ["ask", "--port", "\(zend.port)", "Beautiful is better than?", "Who?"])
            #expect(answered.code == 0)
            #expect(answered.output == "Ugly.\n\(unknownAnswer)\n")
            let strict = try runCommand(zen, ["ask", "-e", "--port", "\(zend.port)", "Beautiful is better than?", "Who?"])
            #expect(strict.code == 1)
            #expect(strict.output == "Ugly.\n\(unknownAnswer)\n")
        }

        @Test("zen stats --help through the symlink is the client's help, byte for byte")
        func statsHelp() throws {
            let (zen, directory) = try link("zen")
            defer { Paths.remove(directory) }
            let linked = try runCommand(zen, ["stats", "--help"])
            let own = try runCommand(Paths.product("zen"), ["stats", "--help"])
            #expect(linked.code == 0)
            #expect(linked.output == own.output)
            #expect(linked.output.contains("USAGE: zen stats [--control <PATH>]"))
        }

        @Test("only the name zen selects the client: under another name zend is zend", arguments: ["zend", "zen2", "zen.old"])
        func otherNames(_ name: String) throws {
            let (path, directory) = try link(name)
            defer { Paths.remove(directory) }
            let result = try runCommand(path, ["--version"])
            #expect(result.code == 0)
            #expect(result.output.hasPrefix("zend "), "\(name): \(result.output)")
        }
    }

    /// `zen ask -e` (`--fail-on-error`), as `redis-cli -e`: the answers are printed as
    /// always, and an error answer among them makes the exit status 1.
    @Suite("zen ask -e")
    struct AskFailOnErrorTests {
        @Test("without an error answer the exit status is 0", arguments: ["-e", "--fail-on-error"])
        func clean(_ flag: String) throws {
            let zend = try ZendServer()
            let result = try runCommand(Paths.product("zen"), ["ask", flag, "--port", "\(zend.port)",
                                                               "Beautiful is better than?", "Simple is better than?"])
            #expect(result.code == 0)
            #expect(result.output == "Ugly.\nComplex.\n")
        }

        @Test("an error answer anywhere makes it 1, after every answer is printed", arguments: ["-e", "--fail-on-error"])
        func errorAnswer(_ flag: String) throws {
            let zend = try ZendServer(["--max-request-bytes", "32"])
            let long = String(repeating: "x", count: 40) + "?"
            let result = try runCommand(Paths.product("zen"), ["ask", flag, "--port", "\(zend.port)",
                                                               "Who?", long, "Explicit is better than?"])
            #expect(result.code == 1)
            #expect(result.output == "\(unknownAnswer)\n\(tooLongAnswer)\nImplicit.\n")
        }
    }
}
