import MeshBase
import Testing

@Suite struct DomainTagTests {
    @Test func tagsAreUnique() {
        #expect(Set(DomainTag.all).count == DomainTag.all.count)
        #expect(Set(DomainTag.all.map(\.name)).count == DomainTag.all.count)
    }

    @Test func noTagIsAPrefixOfAnother() {
        for a in DomainTag.all {
            for b in DomainTag.all where a != b {
                #expect(!b.bytes.starts(with: a.bytes), "\(a) is a prefix of \(b)")
            }
        }
    }

    @Test func tagsAreVersionedAndFitTheLengthByte() {
        for tag in DomainTag.all {
            #expect(tag.name.hasPrefix("prunemesh/v1/"))
            #expect(tag.name.count > "prunemesh/v1/".count)
            #expect(tag.bytes.count <= 255)
            #expect(tag.prefix == [UInt8(tag.bytes.count)] + Array(tag.name.utf8))
        }
        #expect(DomainTag.envelope.name == "prunemesh/v1/envelope")
    }
}
