// zen-nio PORT [THREADS]
// A SwiftNIO server speaking zend's Zen-of-Python protocol on 127.0.0.1:PORT.
import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func eprint(_ message: String) {
    var message = message + "\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func usage() -> Never {
    eprint("usage: zen-nio PORT [THREADS]")
    exit(2)
}

func run() throws {
    let args = CommandLine.arguments
    guard args.count >= 2, args.count <= 3, let port = Int(args[1]), (0...65535).contains(port) else { usage() }
    var threads = System.coreCount
    if args.count == 3 {
        guard let n = Int(args[2]), n >= 1 else { usage() }
        threads = n
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let bootstrap = ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ZenDecoder()))
                try channel.pipeline.syncOperations.addHandler(ZenHandler())
            }
        }

    let server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()

    // SIGTERM / SIGINT: stop accepting, shut the loops down, exit 0.
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { server.close(promise: nil) }
        source.resume()
        sources.append(source)
    }

    let bound = server.localAddress?.port ?? port
    print("listening on 127.0.0.1:\(bound)")
    fflush(nil)  // flush stdout at once, even into a pipe

    try server.closeFuture.wait()
    try group.syncShutdownGracefully()
    withExtendedLifetime(sources) {}
}

do {
    try run()
    exit(0)
} catch {
    eprint("zen-nio: \(error)")
    exit(1)
}
