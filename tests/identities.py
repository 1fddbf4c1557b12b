"""Keys shared by the approval tests (one module, so every importer sees the same keys)."""

from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.approvals._load import TrustedClient

#: The client (a portal) the workers trust to say whom a run acts for.
PORTAL = SigningIdentity.generate("portal")

#: How the test workers' approvals configs trust it (the approval tests narrow it in YAML).
TRUSTED_PORTAL = TrustedClient(id="portal", public_key=PORTAL.public_key, acts_for=("*",))
