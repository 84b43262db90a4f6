"""The in-use lock: servers and commands share it, a restore takes it alone."""

from __future__ import annotations

import pytest

from vault.storage.db import Database
from vault.storage.inuse import InUse, VaultInUse


def test_shared_holders_block_a_restore_and_a_restore_blocks_them(database: Database) -> None:
    """Two holders share the lock; the exclusive take is refused while one holds it, and
    once it is held alone a new holder is refused; released, the lock is free again."""
    server, command, restore = (InUse(database.engine) for _ in range(3))
    server.share()
    command.share()
    with pytest.raises(VaultInUse, match="the vault is in use"):
        restore.exclusive()
    server.release()
    command.release()
    restore.exclusive()
    late = InUse(database.engine)
    with pytest.raises(VaultInUse, match="a restore is running"):
        late.share()
    restore.release()
    late.share()
    assert (late.held, restore.held) == (True, False)
    late.release()
