# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Safe file operations for work directories, caches and checkpoints: complete-or-absent
writes, and an advisory lock held by one process at a time.
"""

import os
import tempfile

from .exceptions import CheckpointError

__all__ = ["atomic_write_bytes", "take_lock"]


def atomic_write_bytes(path, data):
    """
    Write ``data`` to ``path`` (a `~pathlib.Path`) so that ``path`` is either
    absent or complete: a temporary file in the same directory, flushed to disk,
    then renamed over ``path``. Readers never see half a file, and an interrupted
    write leaves no temporary behind.
    """
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # the rename below must not reach the disk before the data
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def take_lock(path, what):
    """
    Take the exclusive advisory lock of the file ``path`` (created if needed).

    The operating system releases the lock when the returned file is closed or
    the process ends, however it ends (even SIGKILL), so an interrupted run never
    leaves a stale lock behind. The file holds the owner's process id.

    Parameters
    ----------
    path : path-like
        The lock file, usually ``<work directory>/lock``.
    what : str
        The work, for the error message (e.g. ``"build"``).

    Returns
    -------
    file or None
        Keep it open while working; close it to release the lock. `None` where
        the platform has no advisory locks (Windows).

    Raises
    ------
    `~cnnext.exceptions.CheckpointError`
        Another process holds the lock; the message gives its process id.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        return None
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        pid = fh.read().strip() or "?"
        fh.close()
        raise CheckpointError(f"another {what} (process {pid}) is using "
                              f"{str(os.path.dirname(os.fspath(path)))!r}; wait for it to "
                              f"finish or stop it") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh
