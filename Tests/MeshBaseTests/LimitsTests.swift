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
        let largest = 13 + 4 + 4 + Limits.message_bytes_max + 2 + Limits.members_count_max * Limits.vote_bytes_max
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
