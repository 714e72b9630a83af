import Testing

@testable import MeshBase

@Suite struct LimitsTests {
    @Test func relationsHold() {
        #expect(Limits.violatedRelations == [])
    }

    @Test func datagramNeverFragments() {
        #expect(Limits.datagram_bytes_max <= 1400)
    }

    @Test func largestMessageFitsItsChunks() {
        // Each chunk carries at most datagram_bytes_max minus a worst-case envelope.
        let payloadPerChunk = Limits.datagram_bytes_max - 256
        #expect(Limits.chunks_per_message_max * payloadPerChunk >= Limits.message_bytes_max)
    }

    @Test func sealedPayloadFillsOneDatagram() {
        // The largest sealed datagram (79-byte header, payload, 16-byte tag) is exactly the
        // largest datagram, and carries at least a chunk's worth (datagram minus 256 bytes).
        #expect(Limits.sealed_overhead_bytes == 79 + 16)
        #expect(Limits.sealed_payload_bytes_max + Limits.sealed_overhead_bytes == Limits.datagram_bytes_max)
        #expect(Limits.sealed_payload_bytes_max == 1305)
        #expect(Limits.sealed_payload_bytes_max >= Limits.datagram_bytes_max - 256)
        // Every member's pair keys fit the gate's cache.
        #expect(Limits.sealed_pair_keys_count_max >= Limits.members_count_max)
        // A bulk message (the plaintext of one sealed datagram) fits one, within the overhead
        // the bulk layer budgets for sealing.
        #expect(Limits.bulk_message_bytes_max <= Limits.sealed_payload_bytes_max)
        #expect(Limits.sealed_overhead_bytes <= Limits.bulk_datagram_overhead_bytes_max)
    }

    @Test func fullImportanceVectorFitsOneMessage() {
        #expect(Limits.importance_units_count_max * 4 <= Limits.message_bytes_max)
    }

    @Test func reassemblyHoldsTwoLargestMessages() {
        #expect(Limits.reassembly_bytes_max >= 2 * Limits.message_bytes_max)
    }

    @Test func signingGuardLimitsRelate() {
        // The guard keeps no round of own votes the engine has already dropped, two votes a round
        // fit its one-byte count, and the largest guard (a lock on a one-message proposal proven by
        // a prevote of every validator, 16 own votes) fits the file limit the shell reads with.
        #expect(Limits.consensus_guard_vote_rounds_max >= 1)
        #expect(Limits.consensus_guard_vote_rounds_max <= Limits.consensus_vote_rounds_kept_max + 1)
        #expect(2 * Limits.consensus_guard_vote_rounds_max <= 255)
        let largest =
            13 + 4 + 4 + Limits.message_bytes_max + 2 + Limits.members_count_max * Limits.vote_bytes_max
            + 1 + 2 * Limits.consensus_guard_vote_rounds_max * Limits.vote_bytes_max
        #expect(largest <= Limits.signing_guard_bytes_max)
        #expect(Limits.consensus_conflicting_votes_per_slot_max >= 1)
    }

    @Test func membershipLimitsRelate() {
        // A full sync (flag, count, every member as the largest update) fits one logical message.
        #expect(3 + Limits.members_count_max * Limits.swim_member_update_bytes_max <= Limits.message_bytes_max)
        // The probe timeout leaves room for indirect probes within the period.
        #expect(Limits.swim_probe_timeout_ms_default < Limits.swim_probe_interval_ms_default)
        #expect(Limits.swim_indirect_probes_count_default <= Limits.swim_indirect_probes_count_max)
        #expect(Limits.swim_piggyback_updates_count_max <= 255)
        // Each of the largest updates fits one datagram's payload many times over.
        #expect(Limits.swim_member_update_bytes_max * 8 < Limits.datagram_bytes_max)
    }

    @Test func controlEndpointLimitsRelate() {
        // Two endpoints (control and metrics) full of connections stay well inside a 64-descriptor
        // limit, leaving room for the node's sockets, files and event loops.
        #expect(2 * Limits.control_connections_count_max <= 32)
        #expect(Limits.control_connections_count_max >= 2, "an operator command must get in beside a scrape")
        // The shortest idle timeout (tests) is positive and below the default.
        #expect(Limits.control_idle_timeout_ms_min >= 1)
        #expect(Limits.control_idle_timeout_ms_min < Limits.control_idle_timeout_ms)
        // The token file holds the token in hex and a newline.
        #expect(Limits.control_token_bytes >= 32, "256 bits, not guessable")
        #expect(2 * Limits.control_token_bytes + 1 <= Limits.control_token_file_bytes_max)
        // A request's headers carry the token (Authorization: Bearer HEX) with room to spare.
        #expect(2 * Limits.control_token_bytes + 64 < Limits.control_request_bytes_max)
    }
}

@Suite struct CommandLineLimitsTests {
    @Test func commandLineBoundsRelate() {
        // simulate's workers are threads like the learner's.
        #expect(Limits.simulate_jobs_count_max <= Limits.cli_threads_count_max)
        // A delay drawn fits in the fault phase a run may have.
        #expect(Limits.simulate_delay_ms_max < Limits.simulate_time_ms_max)
        // Each demo node is a member of the demo mesh; its ports (node i at base + i, plus a
        // late joiner and a stranger) stay below the largest port from the largest base port.
        #expect(Limits.demo_nodes_count_max <= Limits.members_count_max)
        #expect(65_000 + Limits.demo_nodes_count_max + 2 <= Limits.port_max)
        // A local prune allows no more rounds than a mesh genesis.
        #expect(Limits.prune_rounds_count_max <= Limits.pruning_rounds_count_max)
        // DP-SGD: the solver's z stays below its search cap, and z·C (the noise std) and its
        // square are finite Floats.
        #expect(Limits.dp_noise_multiplier_max < 0x1p40)
        let noiseStdMax = Limits.dp_noise_multiplier_max * Limits.dp_clip_norm_max
        #expect(noiseStdMax * noiseStdMax < Double(Float.greatestFiniteMagnitude))
        #expect(Limits.dp_target_epsilon_max > 0 && Limits.dp_clip_norm_max > 0)
        // Release counts are exact in the accountant's Doubles.
        #expect(Double(Limits.privacy_releases_count_max) + 1 != Double(Limits.privacy_releases_count_max))
        // The largest seed count from a first seed near the top of UInt64 is refused, not wrapped:
        // the CLI checks first + count − 1 ≤ UInt64.max, which needs the count to fit a UInt64.
        #expect(UInt64(exactly: Limits.simulate_seeds_count_max) != nil)
        #expect(Limits.simulate_seeds_count_max >= 1)
    }
}

@Suite struct VerifyGateLimitsTests {
    @Test func verificationBudgetsRelate() {
        // One address cannot take the whole unproven budget, and the unproven budget leaves a
        // proven member its full rate within the total.
        #expect(Limits.verify_unproven_address_rate_per_s < Limits.verify_unproven_rate_per_s)
        #expect(Limits.verify_unproven_rate_per_s + Limits.verify_proven_source_rate_per_s <= Limits.verify_total_rate_per_s)
        // The total stays below one core of Ed25519 verification (~18,000 a second).
        #expect(Limits.verify_total_rate_per_s <= 18_000)
        // Bursts are at least a second's rate (or a member's burst could never be used) and
        // at most what the next bucket up can grant at once.
        #expect(Limits.verify_proven_source_burst_count >= Limits.verify_proven_source_rate_per_s)
        #expect(Limits.verify_proven_source_burst_count <= Limits.verify_total_burst_count)
        #expect(Limits.verify_unproven_address_burst_count >= Limits.verify_unproven_address_rate_per_s)
        #expect(Limits.verify_unproven_address_burst_count <= Limits.verify_unproven_burst_count)
        #expect(Limits.verify_unproven_burst_count >= Limits.verify_unproven_rate_per_s)
        #expect(Limits.verify_total_burst_count >= Limits.verify_total_rate_per_s)
        // Every member can be proven at once; and tables are bounded.
        #expect(Limits.verify_gate_proven_sources_count_max >= Limits.members_count_max)
        #expect(Limits.verify_gate_addresses_count_max >= Limits.members_count_max)
        #expect(Limits.verify_gate_addresses_count_max <= 65_536 && Limits.verify_gate_proven_sources_count_max <= 65_536)
        // A swept table is refilled no faster than a second.
        #expect(Limits.verify_gate_sweep_interval_ms >= 1 && Limits.verify_gate_sweep_interval_ms <= 1_000)
    }
}
