// Placeholder until the agreement layer lands (issue 5).
import MeshBase
