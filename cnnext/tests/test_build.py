# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.build.build_map: tiling, checkpoints, resume, failures."""

import json
import os
import shutil

import numpy as np
import pytest

from cnnext import build_map, conf
from cnnext.build import checkpoint_path, default_tile_order, tile_cells
from cnnext.exceptions import CheckpointError, MapFileError, PhotometryError
from cnnext.io.mapfile import read_map
from cnnext.model import CNNModel
from cnnext.photometry import TableSource
from cnnext.photometry.base import PhotometrySource
from cnnext.profiles import FLAG_FEW_STARS
from cnnext.region import region_to_cells
from cnnext.sightlines import predict_cells
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import random_stars

REGION = "galactic; box(280, 0, 3, 1.6, 0)"
TILE_ORDER = 6  # 4 cells per tile: several tiles in a small region


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def model(model_path):
    return CNNModel(model_path, providers="cpu")


@pytest.fixture(scope="module")
def stars():
    # ~250 stars per order-7 cell; the corner cells of the box see fewer
    return random_stars(12000, l=(278.0, 282.0), b=(-1.2, 1.2), seed=3)


@pytest.fixture(scope="module")
def source(stars):
    return TableSource(stars, key="table:test")


@pytest.fixture(autouse=True)
def fast_retries():
    with conf.set_temp("retry_backoff", 0.001):
        yield


class FlakySource(PhotometrySource):
    """Wraps a source; fails (PhotometryError) on requests touching ``fail_cells``."""

    key = "table:test"

    def __init__(self, inner, fail_cells=(), n_failures=None):
        self.inner = inner
        self.fail_cells = np.asarray(list(fail_cells), dtype=np.int64)
        self.n_failures = n_failures  # None: always fail on those cells
        self.calls = []

    def fetch_cells(self, cells, order, *, progress_bar=False):
        cells = np.asarray(cells, dtype=np.int64)
        self.calls.append(cells)
        if np.intersect1d(cells, self.fail_cells).size and (
                self.n_failures is None or self.n_failures > 0):
            if self.n_failures is not None:
                self.n_failures -= 1
            raise PhotometryError(f"server down for cells {cells[:2].tolist()}")
        return self.inner.query_cells(cells, order)

    def fetch_cone(self, centre, radius_deg):
        return self.inner.fetch_cone(centre, radius_deg)


def reference_map(source, model, region=REGION):
    cells = region_to_cells(region, model.order)
    return predict_cells(source.query_cells(cells, model.order), cells, model,
                         source_key=source.key)


def assert_maps_equal(a, b, exact=True):
    np.testing.assert_array_equal(a.cells, b.cells)
    np.testing.assert_array_equal(a.n_stars, b.n_stars)
    np.testing.assert_array_equal(a.flags, b.flags)
    if exact:
        np.testing.assert_array_equal(a.av, b.av)
        np.testing.assert_array_equal(a.sigma, b.sigma)
        np.testing.assert_array_equal(a.dmax, b.dmax)
    else:
        np.testing.assert_allclose(a.av, b.av, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-6, atol=1e-6)


def test_tile_helpers():
    assert default_tile_order(7) == 4
    assert default_tile_order(2) == 0
    tiles, groups = tile_cells(np.array([100, 3, 1, 64]), 7, 5)
    assert tiles.tolist() == [0, 4, 6]
    assert [g.tolist() for g in groups] == [[1, 3], [64], [100]]
    with pytest.raises(ValueError, match="tile_order"):
        tile_cells([1], 5, 6)
    assert checkpoint_path("/x/carina.fits").name == "carina.fits.partial"


def test_build_equals_pipeline_and_file(tmp_path, source, model):
    out = tmp_path / "map.fits"
    got = build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                    progress_bar=False)
    ref = reference_map(source, model)
    assert len(got) == len(region_to_cells(REGION, 7)) == 20
    assert_maps_equal(got, ref, exact=False)
    assert np.all(got.n_stars > 50)
    assert not np.any(got.flags & FLAG_FEW_STARS)
    assert got.meta["model_sha256"] == model.sha256
    assert got.meta["source"] == "table:test"
    assert got.meta["region"] == REGION
    assert got.meta["build"]["tile_order"] == TILE_ORDER
    assert got.meta["build"]["n_tiles"] == len(tile_cells(got.cells, 7, TILE_ORDER)[0])
    back = read_map(out)
    assert_maps_equal(back, got)
    assert back.meta["region"] == REGION
    assert not checkpoint_path(out).exists()


def test_tile_order_does_not_change_the_map(tmp_path, source, model):
    a = build_map(REGION, source=source, model=model, output=tmp_path / "a.fits",
                  tile_order=7, progress_bar=False)
    b = build_map(REGION, source=source, model=model, output=tmp_path / "b.fits",
                  tile_order=3, progress_bar=False)
    assert_maps_equal(a, b, exact=False)


def test_model_path_and_progress_bar(tmp_path, source, model_path, capsys):
    m = build_map(REGION, source=source, model=model_path, output=tmp_path / "m.fits",
                  tile_order=TILE_ORDER, providers="cpu")
    assert len(m) == 20
    err = capsys.readouterr().err
    assert "build_map" in err and "20/20" in err


def test_cells_region_and_arguments(tmp_path, source, model):
    cells = region_to_cells("galactic; circle(280, 0, 0.5)", 7)
    m = build_map(cells, source=source, model=model, output=tmp_path / "c.fits",
                  order=7, progress_bar=False)
    np.testing.assert_array_equal(m.cells, cells)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_map(cells, source=source, model=model, output=tmp_path / "c.fits",
                  progress_bar=False)
    build_map(cells[:2], source=source, model=model, output=tmp_path / "c.fits",
              overwrite=True, progress_bar=False)
    assert len(read_map(tmp_path / "c.fits")) == 2
    with pytest.raises(ValueError, match="model's HEALPix order 7"):
        build_map(cells, source=source, model=model, order=8, output=tmp_path / "d.fits")
    with pytest.raises(ValueError, match="contains no HEALPix cell"):
        build_map(np.zeros(0, np.int64), source=source, model=model,
                  output=tmp_path / "d.fits")
    with pytest.raises(FileNotFoundError, match="directory"):
        build_map(cells, source=source, model=model, output=tmp_path / "no" / "d.fits")
    with pytest.raises(ValueError, match="tile_order"):
        build_map(cells, source=source, model=model, output=tmp_path / "d.fits",
                  tile_order=8, progress_bar=False)
    assert not (tmp_path / "d.fits").exists()


def test_failed_tiles_are_listed_then_resumed(tmp_path, source, model, clean_map):
    cells = region_to_cells(REGION, 7)
    bad = cells[[0, -1]]
    flaky = FlakySource(source, fail_cells=bad)
    out = tmp_path / "map.fits"
    with pytest.raises(PhotometryError, match=r"2 of \d+ tiles failed") as info:
        build_map(REGION, source=flaky, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False, tile_retries=1)
    tiles, groups = tile_cells(cells, 7, TILE_ORDER)
    bad_tiles = sorted({int(c) >> 2 for c in bad})
    assert info.value.failed_tiles == bad_tiles
    assert "rerun" in str(info.value)
    # every tile was tried; each failed tile twice (tile_retries=1)
    assert len(flaky.calls) == len(tiles) + len(bad_tiles)
    saved = sorted(p.name for p in checkpoint_path(out).glob("tile-*.npz"))
    assert len(saved) == len(tiles) - 2
    assert not out.exists()

    # the server is back: only the failed tiles are asked again
    healed = FlakySource(source)
    got = build_map(REGION, source=healed, model=model, output=out, tile_order=TILE_ORDER,
                    progress_bar=False)
    assert sorted(int(c[0]) >> 2 for c in healed.calls) == bad_tiles
    assert_maps_equal(got, clean_map[0])
    assert_maps_equal(read_map(out), clean_map[0])
    assert not checkpoint_path(out).exists()


def test_transient_tile_failure_is_retried(tmp_path, source, model):
    cells = region_to_cells(REGION, 7)
    flaky = FlakySource(source, fail_cells=cells[:1], n_failures=2)
    got = build_map(REGION, source=flaky, model=model, output=tmp_path / "m.fits",
                    tile_order=TILE_ORDER, progress_bar=False, tile_retries=2)
    assert len(got) == len(cells)


def test_programming_errors_are_not_retried(tmp_path, source, model):
    class Broken(FlakySource):
        def query_cells(self, cells, order, *, progress_bar=False):
            self.calls.append(cells)
            raise KeyError("bug")

    broken = Broken(source)
    with pytest.raises(KeyError, match="bug"):
        build_map(REGION, source=broken, model=model, output=tmp_path / "m.fits",
                  tile_order=TILE_ORDER, progress_bar=False)
    assert len(broken.calls) == 1


@pytest.fixture(scope="module")
def _partial_checkpoint(tmp_path_factory, source, model):
    """A build whose last tile failed: a checkpoint with all other tiles."""
    out = tmp_path_factory.mktemp("partial") / "map.fits"
    cells = region_to_cells(REGION, 7)
    with conf.set_temp("retry_backoff", 0.001), pytest.raises(PhotometryError):
        build_map(REGION, source=FlakySource(source, fail_cells=cells[-1:]), model=model,
                  output=out, tile_order=TILE_ORDER, progress_bar=False, tile_retries=0)
    return checkpoint_path(out)


@pytest.fixture
def partial(tmp_path, _partial_checkpoint):
    """A fresh copy of that checkpoint: returns (output, checkpoint directory)."""
    out = tmp_path / "map.fits"
    shutil.copytree(_partial_checkpoint, checkpoint_path(out))
    return out, checkpoint_path(out)


@pytest.fixture(scope="module")
def clean_map(tmp_path_factory, source, model):
    out = tmp_path_factory.mktemp("clean") / "clean.fits"
    return build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                     progress_bar=False), out


def test_checkpoint_of_another_build_is_refused(tmp_path, source, model, partial):
    out, ckpt = partial
    other = CNNModel(write_tiny_model(tmp_path / "other.onnx", seed=5), providers="cpu")
    with pytest.raises(CheckpointError, match="another build.*model.*resume=False"):
        build_map(REGION, source=source, model=other, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)
    with pytest.raises(CheckpointError, match=r"region \(cells\)"):
        build_map("galactic; box(280, 0, 2, 1.6, 0)", source=source, model=model,
                  output=out, tile_order=TILE_ORDER, progress_bar=False)
    with pytest.raises(CheckpointError, match="tile order"):
        build_map(REGION, source=source, model=model, output=out, tile_order=5,
                  progress_bar=False)
    assert ckpt.exists()
    # resume=False discards it and starts over
    m = build_map(REGION, source=source, model=other, output=out, tile_order=TILE_ORDER,
                  progress_bar=False, resume=False)
    assert m.meta["model_sha256"] == other.sha256
    assert not ckpt.exists()


def test_other_source_key_warns(source, model, partial):
    from cnnext.exceptions import CnnextWarning

    out, _ = partial
    other = TableSource(source.stars, key="mock:other")
    with pytest.warns(CnnextWarning, match="started with photometry source 'table:test'"):
        build_map(REGION, source=other, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_cells"])
def test_corrupted_checkpoint_file_names_the_file(source, model, damage, partial, clean_map):
    out, ckpt = partial
    victim = sorted(ckpt.glob("tile-*.npz"))[1]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        victim.write_bytes(data[:100] + bytes(len(data) - 100))
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        os.replace(sorted(ckpt.glob("tile-*.npz"))[0], victim)
    with pytest.raises(CheckpointError, match=f"checkpoint file '{victim}' is corrupted.*"
                                              f"delete it to recompute"):
        build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)
    if damage == "truncate":
        # deleting the damaged file is enough: its tile is recomputed
        victim.unlink()
        m = build_map(REGION, source=source, model=model, output=out,
                      tile_order=TILE_ORDER, progress_bar=False)
        assert_maps_equal(m, clean_map[0])


@pytest.mark.parametrize("damage", ["garbage", "missing", "json"])
def test_corrupted_manifest_names_the_file(source, model, damage, partial):
    out, ckpt = partial
    manifest = ckpt / "manifest.json"
    if damage == "garbage":
        manifest.write_bytes(b"\x00\xff{{")
    elif damage == "missing":
        manifest.unlink()
    else:
        manifest.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match=f"manifest '{manifest}' is"):
        build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)


def test_stale_temporary_files_are_ignored(source, model, partial):
    out, ckpt = partial
    # what a kill during a tile write leaves behind
    (ckpt / "tile-7-99.npz.abc123.tmp").write_bytes(b"half a file")
    m = build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)
    assert len(m) == 20
    assert not ckpt.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "header"])
def test_corrupted_map_file_names_the_file(tmp_path, damage, clean_map):
    out = tmp_path / "map.fits"
    data = clean_map[1].read_bytes()
    if damage == "truncate":
        out.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        out.write_bytes(b"\x00" * 100 + data[100:])
    else:
        out.write_bytes(data.replace(b"cnnext-map-1", b"something-1"))
    with pytest.raises(MapFileError, match=f"map file '{out}' is corrupted"):
        read_map(out)


def test_resume_false_never_deletes_foreign_directories(tmp_path, source, model):
    out = tmp_path / "map.fits"
    foreign = checkpoint_path(out)
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="is not a cnnext checkpoint"):
        build_map(REGION, source=source, model=model, output=out, resume=False,
                  progress_bar=False)
    assert (foreign / "notes.txt").exists()
    with pytest.raises(CheckpointError, match="manifest .* is missing"):
        build_map(REGION, source=source, model=model, output=out, progress_bar=False)


def test_restart_checks_the_format_marker(tmp_path, source, model):
    out = tmp_path / "map.fits"
    foreign = checkpoint_path(out)
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "my-own-tool-2"}')
    (foreign / "results.npz").write_bytes(b"precious")
    with pytest.raises(CheckpointError, match=r"map\.fits\.partial.*not a cnnext checkpoint"):
        build_map(REGION, source=source, model=model, output=out, resume=False,
                  progress_bar=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["manifest.json", "results.npz"]


def test_overwrite_replaces_only_a_map(tmp_path, source, model):
    other = tmp_path / "image.fits"
    other.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
    with pytest.raises(FileExistsError, match=r"image\.fits.*not a cnnext map"):
        build_map(REGION, source=source, model=model, output=other, overwrite=True,
                  progress_bar=False)
    assert other.read_bytes().startswith(b"SIMPLE")
    old = os.umask(0o022)
    try:
        out = tmp_path / "map.fits"
        build_map(REGION, source=source, model=model, output=out, progress_bar=False)
        build_map(REGION, source=source, model=model, output=out, overwrite=True,
                  progress_bar=False)
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_two_builds_cannot_share_a_checkpoint(source, model, partial):
    fcntl = pytest.importorskip("fcntl")
    out, ckpt = partial
    # another process holds the lock of this checkpoint (the OS frees it if it dies)
    with open(ckpt / "lock", "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.seek(0)
        other.truncate()
        other.write("12345")
        other.flush()
        for resume in (True, False):
            with pytest.raises(CheckpointError, match=r"another build \(process 12345\)"):
                build_map(REGION, source=source, model=model, output=out, resume=resume,
                          tile_order=TILE_ORDER, progress_bar=False)
    assert ckpt.exists()
    m = build_map(REGION, source=source, model=model, output=out, tile_order=TILE_ORDER,
                  progress_bar=False)
    assert len(m) == 20 and not ckpt.exists()
