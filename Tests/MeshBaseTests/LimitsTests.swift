import Testing
@testable import MeshBase

@Suite struct LimitsTests {
    @Test func relationsHold() {
        Limits.checkRelations()
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
}
