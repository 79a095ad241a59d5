/// The report as people and scripts read it.
extension BenchReport {
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9 and max.
    public var percentiles: (p50: UInt64, p90: UInt64, p99: UInt64, p999: UInt64, max: UInt64) {
        guard latency.totalCount > 0 else { return (0, 0, 0, 0, 0) }
        return (latency.valueAtPercentile(50), latency.valueAtPercentile(90), latency.valueAtPercentile(99),
                latency.valueAtPercentile(99.9), latency.max)
    }

    /// The lines `zen bench` prints.
    public func humanReadable(_ configuration: BenchConfiguration) -> String {
        let p = percentiles
        return """
          requests     \(requests) answered (\(errors) errors, \(mismatches) mismatches)
          throughput   \(Int(requestsPerSecond.rounded())) requests/s over \(Self.decimal(seconds, 2)) s
          latency µs   p50 \(p.p50)  p90 \(p.p90)  p99 \(p.p99)  p99.9 \(p.p999)  max \(p.max)
          client CPU   \(Int(clientCPUPercent.rounded()))% of one core
        """
    }

    /// One JSON object (the last line of `zen bench --json`).
    public func json(_ configuration: BenchConfiguration) -> String {
        let p = percentiles
        return "{\"requests\":\(requests),\"errors\":\(errors),\"mismatches\":\(mismatches),"
            + "\"rps\":\(Self.decimal(requestsPerSecond, 1)),"
            + "\"latency_us\":{\"p50\":\(p.p50),\"p90\":\(p.p90),\"p99\":\(p.p99),\"p999\":\(p.p999),\"max\":\(p.max)},"
            + "\"client_cpu_pct\":\(Self.decimal(clientCPUPercent, 1)),"
            + "\"connections\":\(configuration.connections),\"pipeline\":\(configuration.pipeline),"
            + "\"threads\":\(configuration.threads),\"seconds\":\(Self.decimal(seconds, 3))}"
    }

    /// `value` with `places` decimals (no Foundation formatter needed).
    static func decimal(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0 ..< places { scale *= 10 }
        let scaled = Int((abs(value) * scale).rounded())
        let whole = scaled / Int(scale)
        let fraction = scaled % Int(scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + "\(whole)"
        if places > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: places - digits.count) + digits
        }
        return text
    }
}
