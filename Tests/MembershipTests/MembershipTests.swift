import Testing
@testable import Membership
