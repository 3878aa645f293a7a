# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the persistent profile cache (cnnext.io.cache)."""

import multiprocessing
import os

import numpy as np
import pytest

from cnnext import conf
from cnnext.exceptions import CnnextWarning
from cnnext.io.cache import COMPACT_THRESHOLD, ProfileCache, default_cache_root
from cnnext.profiles import FLAG_FEW_STARS, ProfileMap

D = np.array([0.5, 1.0, 1.5])
SHA = "0123456789abcdef" * 4


def profiles(cells, scale=1.0):
    cells = np.asarray(cells, dtype=np.int64)
    av = scale * (cells[:, None] % 97 + 1) * D / 10.0
    return ProfileMap(cells=cells, order=7, distances=D, av=av, sigma=0.1 * av + 0.05,
                      n_stars=cells % 1000, flags=np.where(cells % 5 == 0, FLAG_FEW_STARS, 0),
                      dmin=np.full(cells.size, 0.5), dmax=np.full(cells.size, 1.5))


def make_cache(root, **kwargs):
    args = dict(model_sha256=SHA, source_key="vizier:host:II/246/out", order=7, distances=D)
    args.update(kwargs)
    return ProfileCache(root, **args)


def assert_same(a, b):
    np.testing.assert_array_equal(a.cells, b.cells)
    for name in ("av", "sigma", "n_stars", "flags", "dmin", "dmax"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def files(cache):
    return sorted(p for p in cache.directory.rglob("*") if p.is_file())


def test_round_trip_and_tiles(tmp_path):
    cache = make_cache(tmp_path)
    # cells in three tiles (tile order 3: 256 cells of order 7 per tile)
    cells = np.array([3, 17, 255, 256, 300, 256 * 40 + 1])
    cache.put(profiles(cells))
    assert len(files(cache)) == 3
    other = make_cache(tmp_path)
    got = other.load([17])
    assert got.cells.tolist() == [3, 17, 255]  # the whole tile is read
    got = got.merge(other.load(cells))
    assert_same(got, profiles(cells))
    # nothing new since: a second load reads nothing
    assert len(other.load(cells)) == 0
    assert not any(p.name.startswith(".") for p in files(cache))


def test_keys_separate_entries(tmp_path):
    make_cache(tmp_path).put(profiles([1, 2]))
    assert len(make_cache(tmp_path, model_sha256="f" * 64).load([1, 2])) == 0
    assert len(make_cache(tmp_path, source_key="table:other").load([1, 2])) == 0
    assert len(make_cache(tmp_path).load([1, 2])) == 2


def test_put_checks_shape(tmp_path):
    bad = ProfileMap(cells=[1], order=7, distances=[1.0, 2.0], av=[[0, 1]], sigma=[[0, 1]],
                     n_stars=[3])
    with pytest.raises(ValueError, match="order and distances"):
        make_cache(tmp_path).put(bad)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "content", "header"])
def test_corrupt_entry_is_reported_and_removed(tmp_path, damage):
    cache = make_cache(tmp_path)
    cache.put(profiles([1, 2, 3]))
    (path,) = files(cache)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if damage == "content":
            arrays["av"] = arrays["av"] + 1.0  # digest no longer matches
        else:
            arrays["header"] = np.array(str(arrays["header"]).replace(SHA, "e" * 64))
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    with pytest.warns(CnnextWarning, match=f"profile cache file .*{path.name}.* corrupt"):
        got = make_cache(tmp_path).load([1])
    assert len(got) == 0
    assert not path.exists()
    # a fresh entry can be written and read again
    cache.put(profiles([1, 2, 3]))
    assert_same(make_cache(tmp_path).load([1]), profiles([1, 2, 3]))


def test_compaction(tmp_path):
    cache = make_cache(tmp_path)
    n = COMPACT_THRESHOLD + 3
    for cell in range(n):
        cache.put(profiles([cell]))
    assert len(files(cache)) == n
    got = make_cache(tmp_path).load([0])
    assert_same(got, profiles(np.arange(n)))
    assert len(files(cache)) == 1
    assert_same(make_cache(tmp_path).load([0]), profiles(np.arange(n)))


def test_default_root(tmp_path):
    with conf.set_temp("cache_dir", str(tmp_path / "c")):
        assert default_cache_root() == tmp_path / "c" / "profiles"


def _writer(root, start, n):
    cache = make_cache(root)
    for cell in range(start, start + n):
        # both processes write overlapping cells of the same tiles
        cache.put(profiles([cell, cell + 1]))
        cache.load([cell])


@pytest.mark.slow
def test_two_processes_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), start, 40))
             for start in (0, 20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    got = make_cache(tmp_path).load(np.arange(61))
    assert_same(got, profiles(np.arange(61)))
    assert not any(name.startswith(".") for _, _, names in os.walk(tmp_path)
                   for name in names)


def test_file_vanishing_during_read_is_found_again(tmp_path, monkeypatch):
    cache = make_cache(tmp_path)
    cache.put(profiles([1, 2]))
    cache.put(profiles([3]))
    reader = make_cache(tmp_path)
    original = ProfileCache._read
    state = {"done": False}

    def racing_read(self, path):
        if not state["done"]:
            # another process compacts the tile right now: merged file in, old ones out
            state["done"] = True
            old = list(path.parent.glob("*.npz"))
            make_cache(tmp_path)._write(path.parent, profiles([1, 2, 3]))
            for p in old:
                p.unlink()
            raise FileNotFoundError(path)
        return original(self, path)

    monkeypatch.setattr(ProfileCache, "_read", racing_read)
    got = reader.load([1])
    assert sorted(set(got.cells.tolist())) == [1, 2, 3]


def test_files_get_umask_permissions(tmp_path):
    cache = make_cache(tmp_path)
    old = os.umask(0o022)
    try:
        cache.put(profiles([10, 20]))
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in files(cache)] == [oct(0o644)]


def test_unwritable_cache_warns_once(tmp_path, monkeypatch):
    # a file where the cache folder should be (root cannot be denied a folder)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    cache = make_cache(blocker)
    with pytest.warns(CnnextWarning, match="not-a-folder.*cannot be used.*without caching"
                      ) as record:
        assert len(cache.load([10, 20])) == 0
        cache.put(profiles([10, 20]))
        cache.put(profiles([30]))
        assert len(cache.load([10])) == 0
    assert len(record) == 1
    # a folder that refuses writes (read-only home): one warning, no error
    cache = make_cache(tmp_path / "ro")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ProfileCache, "_write", refuse)
    with pytest.warns(CnnextWarning, match="PermissionError") as record:
        cache.put(profiles([10, 20, 5000]))
        cache.put(profiles([40]))
    assert len(record) == 1
