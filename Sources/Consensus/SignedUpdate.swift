import MeshBase
import Sodium
import Wire

/// One node's announcement of its model update for one model round, signed for the record.
///
/// In a federated mesh (the genesis `federation` section) every validator trains, each model
/// round, from the shared model the round starts from (`base`), and offers its update
/// (trained − shared weights) as a content-addressed blob: the update bytes travel by bulk
/// transfer, and only this 188-byte announcement travels through agreement and into the log.
/// `root` names the update's bytes (the bulk layer's hash-tree root, which verifies every piece
/// fetched), `bytes` their length, `samples` the FedAvg weight. `base` is the root of the shared
/// model's canonical bytes that the update was trained from: a model decision records only
/// updates that all name its own base, so the log states, round by round, which shared model
/// the mesh trained from, signed by each contributor.
///
/// `trainingSteps` is the contributor's cumulative DP-SGD steps once this update was trained
/// (the same counter its importance releases state), or 0 in a mesh without DP-SGD training:
/// the log then holds every training job that left the node, and the audit recomputes its
/// record-level ε from them.
///
/// Encoding (little-endian, 188 bytes = `Limits.signed_update_bytes`):
///
///     contributor key (32) ‖ model round (u64, ≥ 1) ‖ base (32) ‖ root (32)
///     ‖ bytes (u64, 1 … Limits.model_update_bytes_max) ‖ samples (u32, 1 … Limits.model_update_samples_max)
///     ‖ training steps (u64) ‖ signature (64)
///
/// The signature is Ed25519 by the contributor under `DomainTag.modelUpdate` over
/// `mesh id (32) ‖ the first 124 bytes of the encoding` (everything before the signature).
public struct SignedUpdate: Sendable, Hashable {
    public let contributor: PublicKey
    public let modelRound: UInt64
    public let base: Digest32
    public let root: Digest32
    public let bytes: UInt64
    public let samples: UInt32
    /// Cumulative DP-SGD steps after this update's training (0: the mesh trains without DP-SGD).
    public let trainingSteps: UInt64
    public let signature: Signature

    /// The length of the signed fields (the encoding without its signature).
    static let fieldsByteCount = 124

    public init(
        contributor: PublicKey, modelRound: UInt64, base: Digest32, root: Digest32, bytes: UInt64, samples: UInt32,
        trainingSteps: UInt64 = 0, signature: Signature
    ) {
        self.contributor = contributor
        self.modelRound = modelRound
        self.base = base
        self.root = root
        self.bytes = bytes
        self.samples = samples
        self.trainingSteps = trainingSteps
        self.signature = signature
    }

    /// Signs an announcement of the update `root` (`bytes` long, trained on `samples` samples from
    /// the shared model `base`, the node's DP-SGD steps then at `trainingSteps`) for `modelRound`
    /// of `meshID`.
    public static func sign(
        modelRound: UInt64, base: Digest32, root: Digest32, bytes: UInt64, samples: UInt32, trainingSteps: UInt64 = 0,
        meshID: MeshID, signer: SigningKey
    ) -> SignedUpdate {
        precondition(modelRound >= 1, "model rounds start at 1")
        let unsigned = SignedUpdate(
            contributor: signer.publicKey, modelRound: modelRound, base: base, root: root, bytes: bytes, samples: samples,
            trainingSteps: trainingSteps, signature: Signature(bytes: [UInt8](repeating: 0, count: Signature.byteCount))!)
        let signature = signer.sign(.modelUpdate, meshID.bytes + unsigned.fields())
        return SignedUpdate(
            contributor: signer.publicKey, modelRound: modelRound, base: base, root: root, bytes: bytes, samples: samples,
            trainingSteps: trainingSteps, signature: signature)
    }

    /// The signed fields: the encoding without its signature.
    func fields() -> [UInt8] {
        var w = ByteWriter(capacity: Self.fieldsByteCount)
        w.write(raw: contributor.bytes)
        w.write(modelRound)
        w.write(raw: base.bytes)
        w.write(raw: root.bytes)
        w.write(bytes)
        w.write(samples)
        w.write(trainingSteps)
        return w.bytes
    }

    /// Whether the signature is the contributor's over these fields in `meshID`.
    public func isValid(meshID: MeshID) -> Bool {
        contributor.isValidSignature(signature, .modelUpdate, meshID.bytes + fields())
    }

    public func encode(into w: inout ByteWriter) {
        w.write(raw: fields())
        w.write(raw: signature.bytes)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Limits.signed_update_bytes)
        encode(into: &w)
        return w.bytes
    }

    /// Strict decode of the fixed-size fields; the ranges of round, bytes and samples are checked
    /// here (the signature is not: `isValid`).
    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> SignedUpdate {
        let u = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            let key = PublicKey(bytes: try r.readRaw(32, "update.contributor"))!
            let round = try r.readUInt64("update.modelRound")
            let base = Digest32(bytes: try r.readRaw(32, "update.base"))!
            let root = Digest32(bytes: try r.readRaw(32, "update.root"))!
            let bytes = try r.readUInt64("update.bytes")
            let samples = try r.readUInt32("update.samples")
            let steps = try r.readUInt64("update.trainingSteps")
            let signature = Signature(bytes: try r.readRaw(Signature.byteCount, "update.signature"))!
            return SignedUpdate(
                contributor: key, modelRound: round, base: base, root: root, bytes: bytes, samples: samples, trainingSteps: steps,
                signature: signature)
        }
        guard u.modelRound >= 1 else { throw .outOfRange("update.modelRound is 0 (model rounds start at 1)") }
        guard (1...Limits.model_update_bytes_max).contains(u.bytes) else {
            throw .outOfRange("update.bytes \(u.bytes) outside 1…\(Limits.model_update_bytes_max)")
        }
        guard (1...Limits.model_update_samples_max).contains(u.samples) else {
            throw .outOfRange("update.samples \(u.samples) outside 1…\(Limits.model_update_samples_max)")
        }
        return u
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> SignedUpdate {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

/// One model round's outcome: the shared model it started from and the updates that make the
/// next one. Every node holding the updates' bytes computes the same next shared model bit for
/// bit: the base model plus the genesis aggregation rule (`Learner.Aggregation`) over the
/// updates in canonical order (ascending contributor key), then, in a round that also decided a
/// mask, the surgery to that mask. The next round's decision records the root of the result as
/// its `base`.
///
/// Encoding (little-endian): model round (u64, ≥ 1) ‖ base (32) ‖ update count (u16,
/// 1 … `Limits.model_decision_updates_count_max`) ‖ the updates (`SignedUpdate`, 188 bytes each),
/// strictly ascending by contributor key.
public struct ModelDecision: Sendable, Hashable {
    public let modelRound: UInt64
    public let base: Digest32
    public let updates: [SignedUpdate]

    /// A decision as proposed; updates are put in canonical order. Precondition: no contributor twice.
    public init(modelRound: UInt64, base: Digest32, updates: [SignedUpdate]) {
        let sorted = updates.sorted { $0.contributor < $1.contributor }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            precondition(a.contributor != b.contributor, "contributor \(a.contributor.fingerprint) appears twice in one model decision")
        }
        self.modelRound = modelRound
        self.base = base
        self.updates = sorted
    }

    private init(canonical modelRound: UInt64, base: Digest32, updates: [SignedUpdate]) {
        self.modelRound = modelRound
        self.base = base
        self.updates = updates
    }

    /// Total samples behind the updates.
    public var samples: UInt64 { updates.reduce(0) { $0 + UInt64($1.samples) } }

    public func encode(into w: inout ByteWriter) {
        precondition(!updates.isEmpty && updates.count <= Limits.model_decision_updates_count_max)
        w.write(modelRound)
        w.write(raw: base.bytes)
        w.write(UInt16(updates.count))
        for u in updates { u.encode(into: &w) }
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> ModelDecision {
        let (round, base, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            (
                try r.readUInt64("model.round"), Digest32(bytes: try r.readRaw(32, "model.base"))!,
                Int(try r.readUInt16("model.updates.count"))
            )
        }
        guard round >= 1 else { throw .outOfRange("model.round is 0 (model rounds start at 1)") }
        guard (1...Limits.model_decision_updates_count_max).contains(count) else {
            throw .outOfRange("model.updates.count \(count) outside 1…\(Limits.model_decision_updates_count_max)")
        }
        var updates: [SignedUpdate] = []
        updates.reserveCapacity(count)
        for i in 0..<count {
            let u = try SignedUpdate.decode(from: &r)
            if i > 0, !(updates[i - 1].contributor < u.contributor) {
                throw .nonCanonical("model.updates not strictly ascending by contributor at \(i)")
            }
            updates.append(u)
        }
        return ModelDecision(canonical: round, base: base, updates: updates)
    }
}
