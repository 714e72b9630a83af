// Placeholder until the decision log lands (issue 5).
import Consensus
