"""Hot profile reads on the event loop: one customer and its newest interactions.

Owns the one-statement read (the customer, its external ids, its data key, its consent
and objection for the caller's purpose and its newest interactions, joined LATERAL) on
the asyncio pool of :mod:`vault.storage.aio`, and the decisions the ordinary services
make about what it read: policy, ownership, the processing gate, decryption and
masking, and the audit entries. Every decision calls the same helpers as
``CustomerService.get`` and ``InteractionService.timeline``; whenever one of those would
refuse, raise or follow a merge, :meth:`ProfileReader.decide` answers None before
anything was written and the caller takes the ordinary path, which decides and audits
it. May import customers, interactions, privacy and the kernel below them.
"""

from vault.profiles.reader import HotProfile, ProfileReader

__all__ = ["HotProfile", "ProfileReader"]
