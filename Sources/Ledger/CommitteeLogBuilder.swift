import Consensus
import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// Builds valid decision logs from a committee whose secret keys it holds: for tests, the audit
/// benchmark and the crash-test harness (`prunemesh dev append-log`). Keys come from public,
/// deterministic seeds — NEVER use them for a real mesh.
///
/// Every entry is fully signed: contributions by their contributors, invites by a validator, and a
/// certificate with a precommit from every validator in force (or the signers asked for). Signing
/// is deterministic (Ed25519), so the same builder produces the same bytes every time: a harness
/// can resume a log by regenerating its entries and comparing head hashes.
public struct CommitteeLogBuilder {
    public let genesis: LedgerGenesis
    /// Secret keys of the genesis validators and of the spare members the script admits.
    public let keys: [PublicKey: SigningKey]
    /// Keys the script admits and removes after the freeze, in order.
    public let spares: [PublicKey]
    /// Mask rounds the script runs before it freezes.
    public let maskRounds: Int
    public let seed: UInt64

    public private(set) var height: UInt64 = 0
    public private(set) var headHash: Digest32
    public private(set) var validators: ValidatorSet
    public private(set) var mask: PruneMask
    public private(set) var lastMaskRound: UInt64 = 0
    public private(set) var frozen = false
    public private(set) var releaseCounts: [PublicKey: UInt32] = [:]
    /// Entries produced by `next()`.
    public private(set) var scriptPosition = 0

    /// `count` deterministic keys for `seed` (stream i gives key i).
    public static func keys(count: Int, seed: UInt64) -> [SigningKey] {
        (0..<count).map { i in
            var g = SeededGenerator(seed: seed, stream: UInt64(i))
            var bytes: [UInt8] = []
            for _ in 0..<4 { withUnsafeBytes(of: g.next().littleEndian) { bytes.append(contentsOf: $0) } }
            return try! SigningKey(seed: bytes) // 32 bytes: cannot fail
        }
    }

    /// A builder for `genesis`, whose validators must all be among `signers`.
    public init(genesis: LedgerGenesis, signers: [SigningKey], spares: [SigningKey] = [], maskRounds: Int = 3, seed: UInt64 = 1) {
        var keys: [PublicKey: SigningKey] = [:]
        for k in signers + spares { keys[k.publicKey] = k }
        for v in genesis.validators.keys { precondition(keys[v] != nil, "builder lacks the key of validator \(v.fingerprint)") }
        self.genesis = genesis
        self.keys = keys
        self.spares = spares.map(\.publicKey)
        self.maskRounds = maskRounds
        self.seed = seed
        self.headHash = genesis.firstPreviousHash
        self.validators = genesis.validators
        self.mask = PruneMask.full(genesis.model)
    }

    /// A small test model (24 prunable units: conv 8, dense 16) and mesh of `validators` keys
    /// derived from `seed`, with `spareCount` spare keys; the genesis parameters are given.
    public static func demo(
        validators count: Int, spareCount: Int = 2, seed: UInt64 = 1, maskRounds: Int = 3,
        model: ModelSpec = try! ModelSpec(parsing: "8x8x1:conv3x8,relu,pool2,dense16,relu,dense4"),
        boundary: BoundaryRule = .keep(fractionMicro: 750_000),
        privacy: LedgerGenesis.PrivacyTerms = .init(
            clipBound: 16, noiseMultiplier: 5, scaleLog2: 10,
            delta: 1e-5, epsilonBudget: 10),
        meshID: MeshID? = nil, federation: FederationTerms? = nil
    ) -> CommitteeLogBuilder {
        let all = keys(count: count + spareCount, seed: seed)
        let signers = Array(all.prefix(count)), spares = Array(all.suffix(spareCount))
        let set = try! ValidatorSet(keys: signers.map(\.publicKey))
        let id = meshID ?? MeshID(genesisBytes: Array("committee-log-builder \(seed) \(count)".utf8))
        let genesis = LedgerGenesis(
            meshID: id, validators: set, model: model, boundary: boundary, privacy: privacy, federation: federation)
        return CommitteeLogBuilder(genesis: genesis, signers: signers, spares: spares, maskRounds: maskRounds, seed: seed)
    }

    public func signingKey(_ key: PublicKey) -> SigningKey {
        guard let k = keys[key] else { preconditionFailure("builder holds no secret key for \(key.fingerprint)") }
        return k
    }

    // MARK: Pieces

    /// The release values `key` contributes in pruning round `pruningRound`: a per-unit importance
    /// shared by all (so pruning is meaningful) plus per-node jitter, on the genesis grid; 0 for
    /// pruned units.
    public func releaseValues(for key: PublicKey, pruningRound: UInt64) -> [Int32] {
        let rule = genesis.maskRule
        var shared = SeededGenerator(seed: seed, stream: 0xC0FFEE)
        let base = (0..<rule.dimension).map { _ in 0.2 + 1.6 * shared.nextUnitDouble() }
        var own = SeededGenerator(
            seed: seed ^ pruningRound &* 0x9E37_79B9_7F4A_7C15, stream: UInt64(key.bytes[0]) << 8 | UInt64(key.bytes[1]))
        let grid = FixedPoint(scaleLog2: genesis.privacy.scaleLog2)
        var kept = Set<Int>()
        for (layer, units) in mask.kept.enumerated() { for u in units { kept.insert(rule.layerOffsets[layer] + u) } }
        return base.indices.map { j in
            let jitter = 0.1 * own.nextGaussian()
            return kept.contains(j) ? grid.quantise(base[j] + jitter) : grid.quantise(jitter)
        }
    }

    /// `key`'s signed contribution for `pruningRound` (release count: one more than its last, unless
    /// given). With DP-SGD training in the genesis it states `trainingSteps` DP-SGD steps, by
    /// default one round's steps per release (an honest node that trained once per release).
    public func contribution(
        by key: PublicKey, pruningRound: UInt64, releaseCount: UInt32? = nil,
        values: [Int32]? = nil, trainingSteps: UInt64? = nil
    ) -> SignedContribution {
        let count = releaseCount ?? (releaseCounts[key] ?? 0) + 1
        let steps = trainingSteps ?? genesis.privacy.training.map { UInt64(count) &* $0.stepsPerRound }
        let release = ImportanceRelease(
            pruningRound: pruningRound, releaseCount: count,
            noiseMultiplier: genesis.privacy.noiseMultiplier,
            clipNorm: genesis.privacy.clipBound, scaleLog2: UInt8(genesis.privacy.scaleLog2),
            values: values ?? releaseValues(for: key, pruningRound: pruningRound),
            trainingSteps: steps)
        return try! SignedContribution.sign(release: release, meshID: genesis.meshID, signer: signingKey(key))
    }

    /// The honest mask decision for the next pruning round, from every validator in force.
    public func honestMaskDecision() -> MaskDecision {
        let pruningRound = lastMaskRound + 1
        let contributions = validators.keys.map { contribution(by: $0, pruningRound: pruningRound) }
        return try! MaskDecision.make(
            pruningRound: pruningRound, contributions: contributions, trim: validators.maxFaulty,
            current: mask, rule: genesis.maskRule)
    }

    /// A certificate for `decision` at the next height, signed by `signers` (default: every
    /// validator in force) — signers need not be validators (for negative tests).
    public func certificate(
        for decision: Decision, signers: [PublicKey]? = nil, round: UInt32 = 0,
        against set: ValidatorSet? = nil
    ) -> CommitCertificate {
        let set = set ?? validators
        let digest = decision.digest
        let votes = (signers ?? set.keys).map { key in
            Vote.sign(
                height: height + 1, round: round, type: .precommit, decisionDigest: digest, meshID: genesis.meshID,
                signer: signingKey(key))
        }
        let indexed = votes.compactMap { v -> IndexedSignature? in
            guard let i = set.index(of: v.voter) else { return nil }
            return IndexedSignature(validatorIndex: UInt16(i), signature: v.signature)
        }.sorted { $0.validatorIndex < $1.validatorIndex }
        return CommitCertificate(height: height + 1, round: round, decisionDigest: digest, signatures: indexed)
    }

    /// The next entry for `decision`, without committing it to the builder's state.
    public func entry(for decision: Decision, certificate: CommitCertificate? = nil) -> LogEntry {
        LogEntry(
            height: height + 1, previousHash: headHash, decision: decision,
            certificate: certificate ?? self.certificate(for: decision))
    }

    /// Advances the builder's state past `entry` (which it trusts: use entries it built).
    public mutating func commit(_ entry: LogEntry) {
        switch entry.decision {
        case let .mask(m):
            for c in m.contributions {
                if let r = try? c.release() { releaseCounts[c.contributor] = max(releaseCounts[c.contributor] ?? 0, r.releaseCount) }
            }
            mask = m.mask
            lastMaskRound = m.pruningRound
        case let .admit(member, _): validators = (try? validators.adding(member)) ?? validators
        case let .remove(member, _): validators = (try? validators.removing(member)) ?? validators
        case .freeze: frozen = true
        case .evidence, .model: break
        }
        height = entry.height
        headHash = entry.hash
    }

    /// Builds and commits the entry for `decision`.
    @discardableResult
    public mutating func append(_ decision: Decision) -> LogEntry {
        let e = entry(for: decision)
        commit(e)
        return e
    }

    public func admitDecision(_ member: PublicKey, inviter: PublicKey? = nil, validFor: UInt64 = 10) -> Decision {
        let invite = Invite.sign(
            invitee: member, validUntilHeight: height + validFor, meshID: genesis.meshID,
            inviter: signingKey(inviter ?? validators.keys[0]))
        return .admit(member: member, invite: invite)
    }

    /// Evidence that `key` prevoted two different digests at the current height.
    public func evidenceDecision(against key: PublicKey) -> Decision {
        let h = max(1, height)
        let a = Vote.sign(
            height: h, round: 7, type: .prevote, decisionDigest: Blake2b256.hash(.decision, [1]),
            meshID: genesis.meshID, signer: signingKey(key))
        let b = Vote.sign(
            height: h, round: 7, type: .prevote, decisionDigest: nil, meshID: genesis.meshID,
            signer: signingKey(key))
        return .evidence(Equivocation(a, b)!)
    }

    // MARK: Script

    /// The scripted next decision: `maskRounds` mask rounds, the freeze, then cycles of admitting
    /// a spare, evidence against the last genesis validator, and removing the spare.
    public func nextDecision() -> Decision {
        let i = scriptPosition
        if i < maskRounds { return .mask(honestMaskDecision()) }
        if i == maskRounds { return .freeze(pruningRound: lastMaskRound) }
        let j = i - maskRounds - 1
        let spare = spares.isEmpty ? nil : spares[(j / 3) % spares.count]
        switch (j % 3, spare) {
        case (0, let s?): return admitDecision(s)
        case (2, let s?): return .remove(member: s, reason: .requested)
        default: return evidenceDecision(against: genesis.validators.keys[genesis.validators.count - 1])
        }
    }

    /// Builds and commits the scripted next entry.
    public mutating func next() -> LogEntry {
        let e = append(nextDecision())
        scriptPosition += 1
        return e
    }
}
