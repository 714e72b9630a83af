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
}
