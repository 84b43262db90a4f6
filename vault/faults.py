"""Named fault points: where crash tests stop a real process to kill it.

A process started with ``CVAULT_ENV=test``, ``CVAULT_FAULT_AT=NAME[:N]`` and
``CVAULT_FAULT_FILE=PATH`` stops the N-th time (default: the first) it reaches the
point ``NAME``: it writes ``NAME`` to ``PATH`` (the test waits for that file) and then
waits there until it is killed. The test knows the operation is in the middle of the
step the point names, kills the process with SIGKILL, and checks what survived. No
sleeps, no guessing at timing.

Outside ``CVAULT_ENV=test`` the variables are ignored: a production process never
stops at a point. The points:

- ``unit.commit``: a unit of work wrote everything, its audit entries included, and
  is about to commit (a GraphQL request, an import batch, a CLI command's unit);
- ``erasure.shredded``: an erasure put the customer on the keyring's shred list and
  destroyed its data key; its transaction has not committed;
- ``erasure.purge``: an erasure committed; the purge of the customer's interactions
  has not started.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["POINTS", "reach"]

POINTS = frozenset({"unit.commit", "erasure.shredded", "erasure.purge"})


class _Armed:
    """The point this process stops at, read once from the environment."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.remaining = 0
        self.file: Path | None = None
        self.lock = threading.Lock()
        if os.environ.get("CVAULT_ENV") != "test":
            return
        spec = os.environ.get("CVAULT_FAULT_AT", "")
        target = os.environ.get("CVAULT_FAULT_FILE", "")
        if not spec or not target:
            return
        name, _, count = spec.partition(":")
        if name not in POINTS:
            raise ValueError(f"CVAULT_FAULT_AT names no fault point: {sorted(POINTS)}")
        self.name, self.remaining, self.file = name, int(count or "1"), Path(target)


_armed = _Armed()


def reach(name: str) -> None:
    """Mark that the process reached the point ``name``; returns at once unless a crash
    test armed it (then, the N-th time, it announces the point and never returns)."""
    if _armed.name != name:
        return
    with _armed.lock:
        _armed.remaining -= 1
        if _armed.remaining != 0:
            return
    assert _armed.file is not None  # noqa: S101 - set together with the name
    partial = _armed.file.with_name(_armed.file.name + ".part")
    partial.write_text(name)
    partial.replace(_armed.file)  # the test sees the whole name or nothing
    threading.Event().wait()  # until SIGKILL
