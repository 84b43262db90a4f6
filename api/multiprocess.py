"""The metrics folder of one ``cvault serve`` run: where prometheus_client's multiprocess
mode keeps every worker's values, so ``/metrics`` shows the whole server whichever
worker answers.

``cvault serve`` makes a fresh folder ``<data dir>/metrics/<start time>-<pid>`` (mode
0700), holds an ``flock`` on its ``serve.lock`` while it runs, and names it in
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts. At start it deletes the folders
of earlier runs whose lock nobody holds (a server that ended, or was killed); a folder
another server on the same data directory still uses is left alone. An orderly stop
deletes its own folder.

This module imports nothing of prometheus_client: the variable must be set before that
library is first imported in a worker (it picks its value store once, at import).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ENV", "metrics_folder"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LOCK = "serve.lock"


def _clean(root: Path) -> None:
    """Delete the folders of earlier runs: those whose lock can be taken."""
    for folder in root.iterdir():
        lock = folder / _LOCK
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            shutil.rmtree(folder, ignore_errors=True)  # a run that never took its lock
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a server running now
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def metrics_folder(data_dir: Path) -> Iterator[Path]:
    """A fresh metrics folder for this server run, named in ``PROMETHEUS_MULTIPROC_DIR``
    for the block (and the workers it starts); deleted afterwards."""
    root = data_dir / "metrics"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _clean(root)
    folder = root / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    folder.mkdir(mode=0o700)
    fd = os.open(folder / _LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    previous = os.environ.get(ENV)
    os.environ[ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
