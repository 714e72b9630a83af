import Membership
