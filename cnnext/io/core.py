# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Safe file operations for work directories, caches and checkpoints: complete-or-absent
writes, an advisory lock held by one process at a time, and the one cache root.

Every file cnnext writes goes through `atomic_open`; every work directory that one
process at a time may write is guarded by `take_lock`; every cache lives under
`cache_root`.
"""

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from ..exceptions import CheckpointError

__all__ = ["atomic_open", "atomic_write_bytes", "take_lock", "manifest_format",
           "remove_own_files", "cache_root"]


def cache_root():
    """
    Return cnnext's cache directory: ``cnnext.conf.cache_dir`` when set, else astropy's
    cache directory + ``cnnext`` (not created here).

    The profile cache, the photometry answers and the isochrone grid live in
    sub-folders of it.
    """
    from ..config import conf

    if conf.cache_dir:
        return Path(conf.cache_dir).expanduser()
    from astropy.config.paths import get_cache_dir

    return Path(get_cache_dir()) / "cnnext"


@contextmanager
def atomic_open(path):
    """
    Open a binary file that replaces ``path`` when the ``with`` block ends without
    an error, so that ``path`` is either absent or complete: a temporary file in the
    same directory, flushed to disk, then renamed over ``path``. Readers never see
    half a file, and an interrupted write leaves no temporary behind.

    The file gets the permissions of an ordinary new file (``0o666`` less the umask),
    so a map or catalogue written for a group can be read by the group.
    """
    path = Path(path)
    while True:
        # not tempfile.mkstemp: it creates the file 0600 whatever the umask
        tmp = path.parent / f"{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            # the rename below must not reach the disk before the data
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path, data):
    """
    Write ``data`` to ``path`` (a `~pathlib.Path`) atomically (see `atomic_open`).
    """
    with atomic_open(path) as fh:
        fh.write(data)


def manifest_format(directory):
    """
    Return the ``"format"`` of ``directory/manifest.json``: the marker of a
    directory cnnext wrote (a catalogue, a build checkpoint). `None` where there is
    no such file or it is not a JSON object with a ``format``.
    """
    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


def remove_own_files(directory, patterns):
    """
    Delete the files of ``directory`` that match the glob ``patterns`` (the names
    cnnext writes there), and ``directory`` itself if it is left empty. Anything
    else in it stays where it is.
    """
    directory = Path(directory)
    for pattern in patterns:
        for path in directory.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:  # not empty: someone else's files, or the lock we hold
        pass


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
