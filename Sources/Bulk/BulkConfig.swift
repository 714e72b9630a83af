import MeshBase

/// The tunables of one node's bulk transfer. Defaults are in `Limits` (`bulk_…_default`);
/// `problems` names every value outside its bounds (a config is input: checked, never trusted).
public struct BulkConfig: Sendable, Hashable {
    /// Bytes a second of bulk messages this node serves (manifest parts, pieces, don't-haves), and
    /// the burst its token bucket allows.
    public var serveRateBytesPerS = Limits.bulk_serve_rate_bytes_per_s_default
    public var serveBurstBytes = Limits.bulk_serve_burst_bytes_default
    /// The cap (and the starting value) of the adaptive repair timeout, and the unit of silence
    /// after which a source is left (`switchAfterTimeouts` of them).
    public var requestIdleTimeoutMs = Limits.bulk_request_idle_timeout_ms_default
    /// After the last piece a request asked for arrives, pieces still missing are asked for again
    /// this much later (they may only be reordered behind it).
    public var reorderGraceMs = Limits.bulk_reorder_grace_ms_default
    /// Idle timeouts of silence (no piece of a request) before the request moves to another source.
    public var switchAfterTimeouts = Limits.bulk_switch_after_timeouts_default
    /// A source that said "don't have" (or went silent) rests this long for that blob.
    public var dontHaveRetryMs = Limits.bulk_dont_have_retry_ms_default
    /// A want without a deadline of its own fails this long after it was made.
    public var wantDeadlineMs = Limits.bulk_want_deadline_ms_default
    /// One fetch's window, in segments' worth of expected pieces (× 64).
    public var windowSegments = Limits.bulk_fetch_window_segments_default

    public init() {}

    public static let standard = BulkConfig()

    /// Every value outside its bounds, as a sentence; empty when the config is usable.
    public var problems: [String] {
        var out: [String] = []
        func check(_ ok: Bool, _ what: String) { if !ok { out.append(what) } }
        check(
            (1...Limits.bulk_serve_rate_bytes_per_s_max).contains(serveRateBytesPerS),
            "serve rate \(serveRateBytesPerS) B/s outside 1…\(Limits.bulk_serve_rate_bytes_per_s_max)")
        check(
            (Limits.bulk_message_bytes_max...Limits.bulk_serve_burst_bytes_max).contains(serveBurstBytes),
            "serve burst \(serveBurstBytes) B outside \(Limits.bulk_message_bytes_max)…\(Limits.bulk_serve_burst_bytes_max) (it must admit the largest message)"
        )
        check(
            (1...Limits.genesis_timing_ms_max).contains(requestIdleTimeoutMs),
            "request idle timeout \(requestIdleTimeoutMs) ms outside 1…\(Limits.genesis_timing_ms_max)")
        check(
            (0...requestIdleTimeoutMs).contains(reorderGraceMs),
            "reorder grace \(reorderGraceMs) ms outside 0…\(requestIdleTimeoutMs) (the idle timeout)")
        check((1...1000).contains(switchAfterTimeouts), "switch after \(switchAfterTimeouts) timeouts outside 1…1000")
        check(
            (1...Limits.genesis_timing_ms_max).contains(dontHaveRetryMs),
            "don't-have retry \(dontHaveRetryMs) ms outside 1…\(Limits.genesis_timing_ms_max)")
        check(
            (1...Limits.genesis_timing_ms_max).contains(wantDeadlineMs),
            "want deadline \(wantDeadlineMs) ms outside 1…\(Limits.genesis_timing_ms_max)")
        check(
            (1...Limits.bulk_fetch_window_segments_max).contains(windowSegments),
            "window \(windowSegments) segments outside 1…\(Limits.bulk_fetch_window_segments_max)")
        return out
    }
}
