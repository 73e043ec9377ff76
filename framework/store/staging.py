"""Where the tick store stages a write until every file of it is complete.

Each write gets a folder ``<root>/.staging/<pid>-<hex>/`` and holds an exclusive lock on
the file ``lock`` inside it for as long as it runs. Its files are written there, then
``os.replace``\\ d into place: the folder is on the same file system as the store, so each
rename is atomic, and no reader looks in ``.staging`` (dot-names are never venues). A write
killed at any moment leaves at most its folder; the next write removes every folder whose
lock nobody holds (the kernel drops a dead process's locks), and never the folder of a
writer that is alive, whatever its pid. A folder is made and locked, and stale folders are
removed, only while ``.staging/.lock`` is held, so a cleaner cannot catch a live writer
between making its folder and locking it.

Locks are ``flock`` locks (POSIX). ``HFTLAB_STORE_PAUSE_AT=STAGE`` makes a writer stop at
``STAGE`` (see :func:`checkpoint`) so that tests can kill it there.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

STAGING_DIR = ".staging"
_LOCK = "lock"
#: pre-staging versions wrote ``.tmp-<hex>-<name>`` beside the final file
LEGACY_TMP_PREFIX = ".tmp-"
#: a legacy temporary file untouched this long belongs to no running write
LEGACY_TMP_AGE_S = 15 * 60
#: the environment variable naming the stage a writer stops at (tests kill it there)
PAUSE_ENV = "HFTLAB_STORE_PAUSE_AT"
#: how long a paused writer waits to be killed before it carries on
PAUSE_S = 120.0


def checkpoint(stage: str) -> None:
    """Stop here for a while when ``$HFTLAB_STORE_PAUSE_AT`` names ``stage``.

    The writer prints ``hftlab-store: paused at STAGE`` to stderr first, so a test can wait
    for that line and kill the process at exactly this point of the write.
    """
    if os.environ.get(PAUSE_ENV) == stage:
        print(f"hftlab-store: paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(PAUSE_S)


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None when another process holds it
    (or the file is gone: its owner is removing its own folder)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def clean_stale(root: Path) -> list[Path]:
    """Remove the staging folders of writes that died; returns what was removed.

    Call it with ``.staging/.lock`` held (:class:`Staging` does).
    """
    base = root / STAGING_DIR
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for d in sorted(base.iterdir()):
        if not d.is_dir():
            continue
        lock = d / _LOCK
        if lock.exists():
            fd = _try_lock(lock)
            if fd is None:
                continue  # a live writer holds it (or is removing its own folder)
            try:
                shutil.rmtree(d, ignore_errors=True)
            finally:
                os.close(fd)
        else:
            # made but never locked: its writer died inside the setup, which holds .lock
            shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def clean_legacy_tmp(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove old ``.tmp-*`` files that writes of earlier versions left beside day files."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time() if now is None else now
    for f in folder.iterdir():
        if not f.name.startswith(LEGACY_TMP_PREFIX) or not f.is_file():
            continue
        try:
            if now - f.stat().st_mtime >= LEGACY_TMP_AGE_S:
                f.unlink()
                removed.append(f)
        except FileNotFoundError:
            continue
    return removed


class Staging:
    """The staging folder of one write: a context manager that makes and locks it, cleans
    up after dead writers, and removes its own folder on exit (with anything left in it).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with Staging(root) as st:
    ...     tmp = st.file_for(root / "SIM" / "ABC" / "2024-01-02.parquet")
    ...     tmp.parent.parent.name
    '.staging'
    >>> sorted(p.name for p in (root / ".staging").iterdir())
    ['.lock']
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder: Path | None = None
        self._fd: int | None = None
        self._n = 0

    def __enter__(self) -> Staging:
        base = self.root / STAGING_DIR
        base.mkdir(parents=True, exist_ok=True)
        gfd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(gfd, fcntl.LOCK_EX)
            clean_stale(self.root)
            folder = base / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            folder.mkdir()
            fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(gfd)  # releases .lock
        self.folder, self._fd = folder, fd
        return self

    def file_for(self, final: Path) -> Path:
        """A new temporary path in the staging folder for the file that becomes ``final``."""
        if self.folder is None:
            msg = "Staging.file_for outside its `with` block"
            raise RuntimeError(msg)
        self._n += 1
        return self.folder / f"{self._n:04d}-{final.name}.tmp"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
        self.folder, self._fd = None, None
