import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("unix socket files: replaced only when stale, removed only when zend's own, mode")
    struct UnixSocketTests {
        /// Runs zend under `umask 077`, so a mode wider than 0700 needs zend to set it.
        static let strictUmask = ["/bin/sh", "-c", "umask 077; exec \"$0\" \"$@\""]

        @Test("a regular file at the path is refused with a clear message (EX_UNAVAILABLE) and not deleted")
        func regularFileRefused() throws {
            let directory = Paths.scratchDirectory("unixfile")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            Paths.write("precious data\n", to: path)
            let result = try runCommand(Paths.product("zend"), ["--listen", "unix:\(path)"])
            #expect(result.code == 69)
            #expect(result.output.contains("cannot listen on unix:\(path): \(path) exists and is a regular file, not a socket"),
                    "\(result.output)")
            #expect(Paths.read(path) == "precious data\n")
            // Also when zend had opened another unix listener first (cleanup after the failure).
            let other = directory + "/other.sock"
            let both = try runCommand(Paths.product("zend"), ["--listen", "unix:\(other)", "--listen", "unix:\(path)"])
            #expect(both.code == 69)
            #expect(Paths.read(path) == "precious data\n")
            #expect(access(other, F_OK) != 0, "zend's own socket file is removed after the failed start")
        }

        @Test("a directory or a symbolic link at the path is refused naming what is there")
        func otherThingsRefused() throws {
            let directory = Paths.scratchDirectory("unixdir")
            defer { Paths.remove(directory) }
            #expect(mkdir(directory + "/dir", 0o755) == 0)
            let dir = try runCommand(Paths.product("zend"), ["--listen", "unix:\(directory)/dir"])
            #expect(dir.code == 69)
            #expect(dir.output.contains("\(directory)/dir exists and is a directory, not a socket"), "\(dir.output)")
            Paths.write("x", to: directory + "/target")
            #expect(symlink(directory + "/target", directory + "/link") == 0)
            let link = try runCommand(Paths.product("zend"), ["--listen", "unix:\(directory)/link"])
            #expect(link.code == 69)
            #expect(link.output.contains("\(directory)/link exists and is a symbolic link to \(directory)/target, not a socket"),
                    "\(link.output)")
            #expect(Paths.read(directory + "/link") == "x")
        }

        @Test("a second zend that finds the socket in use exits and leaves the live zend's socket working")
        func liveSocketKept() throws {
            let directory = Paths.scratchDirectory("unixlive")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let first = try ZendServer([], listen: ["unix:\(path)"], label: "unixlive-a")
            var before = stat()
            #expect(lstat(path, &before) == 0)
            let second = try runCommand(Paths.product("zend"), ["--listen", "unix:\(path)"])
            #expect(second.code == 69)
            #expect(second.output.contains("cannot listen on unix:\(path): bind: Address already in use"), "\(second.output)")
            var after = stat()
            #expect(lstat(path, &after) == 0)
            #expect(after.st_ino == before.st_ino)
            let client = try TestClient(connectingTo: .unix(path: path))
            #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            #expect(first.process.isRunning)
        }

        @Test("rolling restart: the old zend exiting leaves the newer zend's socket file, which still answers")
        func rollingRestart() throws {
            let directory = Paths.scratchDirectory("unixroll")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let old = try ZendServer([], listen: ["unix:\(path)"], label: "unixroll-a")
            // The deploy moves the old socket out of the way and starts the new zend on the path.
            #expect(unlink(path) == 0)
            let new = try ZendServer([], listen: ["unix:\(path)"], label: "unixroll-b")
            var newFile = stat()
            #expect(lstat(path, &newFile) == 0)
            old.stop()
            #expect(old.process.exitCode == 0)
            var after = stat()
            #expect(lstat(path, &after) == 0, "the old zend removed the new zend's socket file")
            #expect(after.st_ino == newFile.st_ino)
            let client = try TestClient(connectingTo: .unix(path: path))
            #expect(client.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            client.close()
            // The new zend still removes its own file when it stops.
            new.stop()
            #expect(access(path, F_OK) != 0)
        }

        @Test("another socket bound at the path while zend ran is left at exit")
        func replacedBySocketKept() throws {
            let directory = Paths.scratchDirectory("unixreplace")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let zend = try ZendServer([], listen: ["unix:\(path)"], label: "unixreplace")
            #expect(unlink(path) == 0)
            let other = try Socket.listen(on: .unix(path: path))
            defer { other.close() }
            zend.stop()
            #expect(zend.process.exitCode == 0)
            var info = stat()
            #expect(lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK, "the other socket file was removed")
            let client = try Socket.connect(to: .unix(path: path))
            client.close()
        }

        @Test("a regular file put at the path while zend ran is not deleted at exit")
        func replacedByFileKept() throws {
            let directory = Paths.scratchDirectory("unixreplacefile")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let zend = try ZendServer([], listen: ["unix:\(path)"], label: "unixreplacefile")
            #expect(unlink(path) == 0)
            Paths.write("someone's file\n", to: path)
            zend.stop()
            #expect(zend.process.exitCode == 0)
            #expect(Paths.read(path) == "someone's file\n")
        }

        @Test("mode=OCTAL gives the socket file that mode even under umask 077; the default is 0660")
        func mode() throws {
            let directory = Paths.scratchDirectory("unixmode")
            defer { Paths.remove(directory) }
            for (suffix, expected) in [("", 0o660), (",mode=0600", 0o600), (",mode=0666", 0o666), (",mode=777", 0o777)]
                as [(String, mode_t)] {
                let path = directory + "/zend.sock"
                let zend = try ZendServer([], listen: ["unix:\(path)\(suffix)"], launcher: Self.strictUmask, label: "unixmode")
                var info = stat()
                #expect(lstat(path, &info) == 0)
                #expect(info.st_mode & 0o7777 == expected, "unix:\(path)\(suffix): \(String(info.st_mode & 0o7777, radix: 8))")
                let client = try TestClient(connectingTo: .unix(path: path))
                #expect(client.ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
                client.close()
                zend.stop()
                #expect(access(path, F_OK) != 0)
            }
        }

        @Test("a bad mode is refused before anything is opened, saying why (EX_CONFIG, like any bad address)")
        func badMode() throws {
            let directory = Paths.scratchDirectory("unixbadmode")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            for (value, reason) in [("0999", "mode '0999' is not an octal number such as 0660"),
                                    ("u+rw", "mode 'u+rw' is not an octal number such as 0660"),
                                    ("01660", "mode 01660 is more than 0777")] {
                let result = try runCommand(Paths.product("zend"), ["--listen", "unix:\(path),mode=\(value)"])
                #expect(result.code == 78, "\(value)")
                #expect(result.output.contains("invalid address 'unix:\(path),mode=\(value)': \(reason)"), "\(result.output)")
                #expect(access(path, F_OK) != 0)
            }
            let check = try runCommand(Paths.product("zend"), ["--check", "--listen", "unix:\(path),mode=0640"])
            #expect(check.code == 0)
            #expect(check.output.contains("listen unix:\(path),mode=0640"), "\(check.output)")
        }
    }
}
