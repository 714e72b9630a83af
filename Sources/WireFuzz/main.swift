import MeshBase
import Sodium
import Wire

// libFuzzer harness for the wire decoder (decode, receive path, chunk reassembly, importance
// release payloads, sealed datagrams and their gate). Built two ways:
//   - plain `swift build`: an ordinary executable that replays the files named on its command
//     line through the same checks (regression runs), or writes a seed corpus (--make-corpus DIR);
//   - with `-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING`: libFuzzer drives
//     `LLVMFuzzerTestOneInput`. Swift's own `main` replaces libFuzzer's, so under FUZZING this
//     file calls `LLVMFuzzerRunDriver` itself. See Tests/Fuzz/run-wire-fuzz.sh.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fixed identity and mesh, so that corpus entries signed by it keep verifying and libFuzzer's
/// mutations of them exercise everything after the signature check.
let fuzzKey = try! SigningKey(seed: [UInt8](repeating: 0x5A, count: 32))
let otherKey = try! SigningKey(seed: [UInt8](repeating: 0xA5, count: 32))
let fuzzMesh = MeshID(genesisBytes: Array("prunemesh wire fuzz mesh".utf8))
/// Inputs starting with this are a sequence of datagrams: [u16 length][datagram]…
let sequenceMagic: [UInt8] = Array("PMFZ".utf8)
/// Inputs starting with this are a sequence of datagram bodies that the harness signs itself:
/// [u16 length][body]…, body = flags u8 | sequence u64 | payload. Mutated bodies therefore pass
/// the signature check, so chunk inconsistencies, reassembly eviction and completion are fuzzed,
/// not just the signature rejecting every mutation. flags: bit 7 = sign with `secondKey`
/// (another admitted sender, for per-sender limits), bits 0…6 = index into `MessageKind.allCases`.
let resignMagic: [UInt8] = Array("PMFR".utf8)
/// A second admitted identity for re-signed sequences.
let secondKey = try! SigningKey(seed: [UInt8](repeating: 0x3C, count: 32))
/// Inputs starting with this are a sequence of sealed datagrams through one `SealedGate` of
/// `fuzzKey`: [u16 length][datagram]…
let sealedSequenceMagic: [UInt8] = Array("PMFS".utf8)
/// Inputs starting with this are a sequence of bodies the harness seals itself for `fuzzKey`:
/// [u16 length][body]…, body = flags u8 | sequence u64 | payload; flags bit 0 = sealed by
/// `secondKey` (else `otherKey`), bit 1 = sealed for `secondKey` instead (must not open).
let resealMagic: [UInt8] = Array("PMFE".utf8)
/// The pair keys of the sealed modes, derived once (a derivation is an X25519 exchange).
let fuzzPairs: [PublicKey: PairKeys] = [
    otherKey.publicKey: try! PairKeys.derive(own: otherKey, peer: fuzzKey.publicKey, context: fuzzMesh.bytes),
    secondKey.publicKey: try! PairKeys.derive(own: secondKey, peer: fuzzKey.publicKey, context: fuzzMesh.bytes),
]
/// otherKey's pair with secondKey: a datagram sealed for secondKey, delivered to fuzzKey.
let misdirectedPair = try! PairKeys.derive(own: otherKey, peer: secondKey.publicKey, context: fuzzMesh.bytes)
/// Small tables so that the gate's evictions are reached by short inputs.
func fuzzSealedGate() -> SealedGate {
    SealedGate(own: fuzzKey, meshID: fuzzMesh, pairsCountMax: 1, sendersCountMax: 1)
}

/// Small reassembly bounds so that eviction paths are reached by short inputs.
let fuzzReassemblyLimits = ReassemblyLimits(
    buffersCountMax: 4, bytesMax: Limits.message_bytes_max,
    buffersPerSenderCountMax: 2, timeoutMs: 50)

func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        printError("WireFuzz invariant violated: \(message())")
        abort()
    }
}

/// Everything one input goes through. Any crash, trap or `check` failure is a finding.
func fuzzOne(_ data: [UInt8]) {
    // 1. The input as one datagram: strict decode, then the whole receive path.
    let decoded = Envelope.decode(datagram: data, meshID: fuzzMesh)
    if case let .success(envelope) = decoded {
        check(data.count == EnvelopeFormat.overheadByteCount + envelope.payload.count, "decoded length")
        check(envelope.payload.count <= EnvelopeFormat.payloadBytesMax, "decoded payload bound")
    }
    var receiver = Receiver(meshID: fuzzMesh, reassemblyLimits: fuzzReassemblyLimits)
    let outcome = receiver.receive(data, nowMs: 0) { _, _ in true }
    if case let .failure(reason) = decoded {
        check(outcome == .rejected(reason), "receiver and decoder disagree: \(outcome) vs \(reason)")
    }

    // 2. The input as a chunk payload, into a reassembler.
    var reassembler = Reassembler(limits: fuzzReassemblyLimits)
    if let chunk = try? ChunkPayload.decode(data) {
        check(chunk.encode() == data, "chunk payload does not re-encode to its input")
        let outcome = reassembler.insert(
            chunk, from: fuzzKey.publicKey, sequence: chunk.messageID &+ UInt64(chunk.index),
            nowMs: 0)
        check(outcome == .pending, "a single chunk cannot complete a message: \(outcome)")
        check(reassembler.bufferedBytes == chunk.totalLength, "reassembly accounting")
    }

    // 3. The input as an importance release payload: a decoded release re-encodes to the input
    // (the encoding is canonical).
    if let release = try? ImportanceRelease.decode(data) {
        check((try? release.encode()) == data, "release payload does not re-encode to its input")
    }

    // 4. The input as a payload we sign ourselves: must verify and round-trip exactly.
    if data.count <= EnvelopeFormat.payloadBytesMax {
        let kind = MessageKind.envelopeKinds[Int(data.first ?? 0) % MessageKind.envelopeKinds.count]
        let datagram = Envelope.seal(kind: kind, payload: data, sequence: 1 << 32, signer: fuzzKey, meshID: fuzzMesh)
        check(datagram.count <= Limits.datagram_bytes_max, "sealed datagram too large")
        guard case let .success(back) = Envelope.decode(datagram: datagram, meshID: fuzzMesh) else {
            check(false, "own datagram rejected"); return
        }
        check(back.payload == data && back.kind == kind && back.sender == fuzzKey.publicKey, "own datagram round trip")
    }

    // 5. A sequence of datagrams through one receiver, time advancing 7 ms per datagram.
    if data.starts(with: sequenceMagic) {
        var r = ByteReader(Array(data.dropFirst(4)))
        var receiver = Receiver(meshID: fuzzMesh, reassemblyLimits: fuzzReassemblyLimits)
        var nowMs: UInt64 = 0
        var accepted = 0
        while let length = try? r.readUInt16("length"), let datagram = try? r.readRaw(Int(length), "datagram") {
            let outcome = receiver.receive(datagram, nowMs: nowMs) { key, _ in key != otherKey.publicKey }
            if case let .message(message) = outcome {
                accepted += 1
                if message.kind == .importanceRelease, let release = try? ImportanceRelease.decode(message.payload) {
                    check(release.values.count <= Limits.importance_units_count_max, "release bound")
                }
            }
            check(receiver.reassembler.bufferCount <= fuzzReassemblyLimits.buffersCountMax, "reassembly buffer bound")
            check(receiver.reassembler.bufferedBytes <= fuzzReassemblyLimits.bytesMax, "reassembly byte bound")
            nowMs += 7
        }
        check(receiver.counters.total + UInt64(accepted) <= UInt64(data.count), "counters bounded by input")
    }

    // 6. A sequence of bodies re-signed by the harness (see `resignMagic`) through one receiver.
    if data.starts(with: resignMagic) {
        fuzzResignedSequence(Array(data.dropFirst(4)))
    }

    // 7. The input as one sealed datagram into a gate: the header check and the gate agree,
    // at most one open, none for a non-member, and an accepted datagram is authentic.
    do {
        let header = SealedCodec.checkHeader(datagram: data, meshID: fuzzMesh)
        var gate = fuzzSealedGate()
        let outcome = gate.receive(data) { $0 != secondKey.publicKey }
        if case let .failure(reason) = header {
            check(outcome == .rejected(reason), "sealed gate and header check disagree: \(outcome) vs \(reason)")
        }
        check(gate.openAttemptCount <= 1, "more than one open for one datagram")
        if outcome == .rejected(.notMember) || outcome == .rejected(.noPairKey) {
            check(gate.openAttemptCount == 0, "an open before the membership check")
        }
        if case let .message(m) = outcome {
            check(fuzzPairs[m.sender] != nil, "accepted a sealed datagram from a key with no pair")
            check(data.count == SealedFormat.overheadByteCount + m.payload.count, "sealed payload length")
        }
        if case .message = outcome {
            check(gate.counters.total == 0, "an accepted datagram was counted as rejected")
        } else {
            check(gate.counters.total == 1, "a rejected datagram counted other than once")
        }
    }

    // 8. A sequence of sealed datagrams through one gate.
    if data.starts(with: sealedSequenceMagic) {
        var r = ByteReader(Array(data.dropFirst(4)))
        var gate = fuzzSealedGate()
        var datagrams: UInt64 = 0, accepted: UInt64 = 0
        while let length = try? r.readUInt16("length"), let datagram = try? r.readRaw(Int(length), "datagram") {
            datagrams += 1
            if case .message = gate.receive(datagram, isMember: { _ in true }) { accepted += 1 }
            check(gate.trackedSenderCount <= 1 && gate.cachedPairCount <= 1, "sealed gate table bounds")
        }
        check(gate.counters.total + accepted == datagrams, "exactly one outcome per sealed datagram")
        check(gate.openAttemptCount <= datagrams, "at most one open per sealed datagram")
    }

    // 9. A sequence of bodies sealed by the harness (see `resealMagic`) through one gate.
    if data.starts(with: resealMagic) {
        fuzzResealedSequence(Array(data.dropFirst(4)))
    }
}

/// Mode 9: every body is sealed with a real pair key, so every datagram reaches the replay
/// window and the open with mutated sequences and payloads; misdirected ones must never open.
/// The gate keeps a window for both senders here (one pair key, so pairs are still evicted and
/// derived again): with one window, evicting a sender's window reopens its recent numbers to
/// replay — the documented residual risk of a full table, which the fuzzer found at once when
/// this mode ran with one window — so "never accepted twice" holds only without that eviction.
func fuzzResealedSequence(_ bytes: [UInt8]) {
    var r = ByteReader(bytes)
    var gate = SealedGate(own: fuzzKey, meshID: fuzzMesh, pairsCountMax: 1, sendersCountMax: 2)
    var datagrams: UInt64 = 0, accepted: UInt64 = 0
    var acceptedNumbers = Set<[UInt8]>()
    while let length = try? r.readUInt16("length"), let body = try? r.readRaw(Int(length), "body") {
        var b = ByteReader(body)
        guard let flags = try? b.readUInt8("flags"), let sequence = try? b.readUInt64("sequence") else { continue }
        let payload = Array(body.dropFirst(9))
        guard payload.count <= SealedFormat.payloadBytesMax else { continue }
        let sender = flags & 1 != 0 ? secondKey.publicKey : otherKey.publicKey
        let misdirected = flags & 2 != 0 && sender == otherKey.publicKey
        let keys = misdirected ? misdirectedPair : fuzzPairs[sender]!
        let datagram = try! SealedCodec.seal(payload: payload, sequence: sequence, keys: keys, meshID: fuzzMesh)
        datagrams += 1
        let opensBefore = gate.openAttemptCount
        let outcome = gate.receive(datagram) { _ in true }
        switch outcome {
        case let .message(m):
            accepted += 1
            check(!misdirected, "a datagram sealed for another node was accepted")
            check(m.sender == sender && m.sequence == sequence && m.payload == payload, "sealed round trip")
            let number = sender.bytes + withUnsafeBytes(of: sequence) { Array($0) }
            check(acceptedNumbers.insert(number).inserted, "a sealed datagram accepted twice")
        case .rejected(.sealedOpenFailed):
            check(misdirected, "a correctly sealed datagram did not open")
        case .rejected(.replayed), .rejected(.sequenceTooOld):
            check(gate.openAttemptCount <= opensBefore + 1, "replay check")
        case .rejected:
            check(false, "a sealed datagram from a member was rejected before the replay window: \(outcome)")
        }
        check(gate.trackedSenderCount <= 2 && gate.cachedPairCount <= 1, "sealed gate table bounds")
    }
    check(gate.evictedSenderCount == 0, "a window was evicted with room for both senders")
    check(gate.counters.total + accepted == datagrams, "exactly one outcome per sealed datagram")
}

/// Mode 6: every body is sealed with a fuzz key, so every datagram verifies and reaches the
/// replay window, chunk parsing and reassembly with the mutated fields.
func fuzzResignedSequence(_ bytes: [UInt8]) {
    var r = ByteReader(bytes)
    var receiver = Receiver(meshID: fuzzMesh, reassemblyLimits: fuzzReassemblyLimits)
    var nowMs: UInt64 = 0
    var datagrams: UInt64 = 0
    var accepted: UInt64 = 0
    while let length = try? r.readUInt16("length"), let body = try? r.readRaw(Int(length), "body") {
        var b = ByteReader(body)
        guard let flags = try? b.readUInt8("flags"), let sequence = try? b.readUInt64("sequence") else { continue }
        let payload = Array(body.dropFirst(9))
        guard payload.count <= EnvelopeFormat.payloadBytesMax else { continue }
        let kind = MessageKind.envelopeKinds[Int(flags & 0x7F) % MessageKind.envelopeKinds.count]
        let signer = flags & 0x80 != 0 ? secondKey : fuzzKey
        let datagram = Envelope.seal(kind: kind, payload: payload, sequence: sequence, signer: signer, meshID: fuzzMesh)
        datagrams += 1
        let outcome = receiver.receive(datagram, nowMs: nowMs) { _, _ in true }
        switch outcome {
        case let .message(message):
            accepted += 1
            check(message.sender == signer.publicKey, "message attributed to the wrong sender")
            check(message.payload.count <= Limits.message_bytes_max, "message bound")
            if !message.wasChunked {
                check(
                    message.kind == kind && message.payload == payload && message.sequence == sequence,
                    "an unchunked message must be the datagram itself")
            }
            if message.kind == .importanceRelease, let release = try? ImportanceRelease.decode(message.payload) {
                check((try? release.encode()) == message.payload, "reassembled release does not re-encode")
            }
        case .rejected(.badSignature), .rejected(.wrongMesh), .rejected(.notMember):
            check(false, "a datagram the harness signed was rejected before the replay window: \(outcome)")
        case .pending, .rejected:
            break
        }
        check(receiver.reassembler.bufferCount <= fuzzReassemblyLimits.buffersCountMax, "reassembly buffer bound")
        check(receiver.reassembler.bufferedBytes <= fuzzReassemblyLimits.bytesMax, "reassembly byte bound")
        nowMs += 7
    }
    check(receiver.counters.total + accepted <= datagrams, "at most one outcome per datagram")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    fuzzOne(bytes)
    return 0
}

// MARK: Seed corpus

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { printError("cannot write \(path)"); exit(1) }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        out += buffer[0..<n]
    }
    return out
}

/// Valid datagrams of every kind, chunked releases, release and chunk payloads, and datagram
/// sequences (in order, reordered, with duplicates) — all signed by `fuzzKey` for `fuzzMesh`.
func makeCorpus(_ directory: String) {
    var generator = SeededGenerator(seed: 2024)
    var allocator = SequenceAllocator(bootEpoch: 1)
    var files = 0
    func emit(_ name: String, _ bytes: [UInt8]) {
        writeFile("\(directory)/\(name)", bytes)
        files += 1
    }
    for kind in MessageKind.envelopeKinds where kind != .chunk {
        for size in [0, 1, 40, 300, EnvelopeFormat.payloadBytesMax] {
            let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let datagrams = try! Envelope.encode(kind: kind, payload: payload, sequence: &allocator, signer: fuzzKey, meshID: fuzzMesh)
            emit("datagram-\(kind)-\(size)", datagrams[0])
        }
    }
    for units in [1, 7, 700, 2000] {
        let release = ImportanceRelease(
            pruningRound: UInt64(units), releaseCount: 3, noiseMultiplier: 1.1, clipNorm: 1,
            scaleLog2: 10,
            values: (0..<units).map { _ in Int32.random(in: -3000...3000, using: &generator) })
        let payload = try! release.encode()
        emit("release-payload-\(units)", payload)
        let datagrams = try! Envelope.encode(
            kind: .importanceRelease, payload: payload, sequence: &allocator,
            signer: fuzzKey, meshID: fuzzMesh)
        for (i, d) in datagrams.prefix(3).enumerated() { emit("release-\(units)-datagram-\(i)", d) }
        if datagrams.count > 1 {
            let chunk = try! ChunkPayload.decode(Array(d0Payload(datagrams[0])))
            emit("chunk-payload-\(units)", chunk.encode())
            var orders: [[Int]] = [Array(datagrams.indices), Array(datagrams.indices.reversed())]
            orders.append(datagrams.indices.flatMap { [$0, $0] })
            var shuffled = Array(datagrams.indices)
            shuffled.shuffle(using: &generator)
            orders.append(shuffled)
            for (o, order) in orders.enumerated() {
                var w = ByteWriter()
                w.write(raw: sequenceMagic)
                for i in order {
                    w.write(UInt16(datagrams[i].count))
                    w.write(raw: datagrams[i])
                }
                if w.count <= 16 * 1024 { emit("sequence-\(units)-\(o)", w.bytes) }
            }
            // The same orders as bodies for the harness to re-sign (mode 6), once from each key.
            for (o, order) in orders.enumerated() {
                for flagsHigh: UInt8 in [0, 0x80] {
                    var w = ByteWriter()
                    w.write(raw: resignMagic)
                    for i in order {
                        let payload = Array(d0Payload(datagrams[i]))
                        let kindIndex = MessageKind.envelopeKinds.firstIndex(of: .chunk)!
                        w.write(UInt16(9 + payload.count))
                        w.write(UInt8(kindIndex) | flagsHigh)
                        w.write(sequenceNumber(datagrams[i]))
                        w.write(raw: payload)
                    }
                    if w.count <= 16 * 1024 { emit("resign-\(units)-\(o)-\(flagsHigh >> 7)", w.bytes) }
                }
            }
        }
    }
    // Sealed datagrams from both members to fuzzKey, one misdirected, as single inputs, as a
    // sequence through one gate, and as bodies for the harness to seal (mode 9).
    var sealed: [[UInt8]] = []
    var bodies = ByteWriter()
    bodies.write(raw: resealMagic)
    for (i, size) in [0, 1, 100, SealedFormat.payloadBytesMax].enumerated() {
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for (j, keys) in [fuzzPairs[otherKey.publicKey]!, fuzzPairs[secondKey.publicKey]!, misdirectedPair].enumerated() {
            let sequence = UInt64(1) << 32 | UInt64(3 * i + j)
            let d = try! SealedCodec.seal(payload: payload, sequence: sequence, keys: keys, meshID: fuzzMesh)
            emit("sealed-\(size)-\(j)", d)
            sealed.append(d)
            if size < 200 {
                bodies.write(UInt16(9 + payload.count))
                bodies.write(UInt8(j == 1 ? 1 : j == 2 ? 2 : 0))
                bodies.write(sequence)
                bodies.write(raw: payload)
            }
        }
    }
    var w = ByteWriter()
    w.write(raw: sealedSequenceMagic)
    for d in sealed + sealed.reversed() where d.count < 400 {
        w.write(UInt16(d.count))
        w.write(raw: d)
    }
    emit("sealed-sequence", w.bytes)
    emit("resealed-sequence", bodies.bytes)
    print("wrote \(files) corpus files to \(directory)")
}

/// The sequence number field of a datagram we built (see `EnvelopeFormat`).
func sequenceNumber(_ datagram: [UInt8]) -> UInt64 {
    guard case let .success(envelope) = Envelope.decode(datagram: datagram, meshID: fuzzMesh) else {
        preconditionFailure("corpus datagram does not verify")
    }
    return envelope.sequence
}

func d0Payload(_ datagram: [UInt8]) -> ArraySlice<UInt8> {
    datagram[EnvelopeFormat.headerByteCount..<(datagram.count - EnvelopeFormat.signatureByteCount)]
}

// MARK: Entry point

let arguments = CommandLine.arguments
if arguments.count == 3 && arguments[1] == "--make-corpus" {
    makeCorpus(arguments[2])
    exit(0)
}

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    var fuzzArgc = CommandLine.argc
    var fuzzArgv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv) { data, size in fuzzTestOneInput(data, size) })
#else
    // Without libFuzzer: replay the given files (e.g. a corpus or a crash reproducer).
    var replayed = 0
    for path in arguments.dropFirst() {
        guard let bytes = readFile(path) else { printError("cannot read \(path)"); exit(1) }
        fuzzOne(bytes)
        replayed += 1
    }
    print("replayed \(replayed) inputs without a finding")
#endif
