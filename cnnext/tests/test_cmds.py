# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The CMD builder against a slow, obviously correct reference (numpy.histogram2d per cell)."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

import cnnext.cmds as cmd_module
from cnnext.cmds import CMDChannel, CMDSpec, bin_indices, build_cmds
from cnnext.quality import QualityCuts


def reference_cmds(stars, cells, n_cells, spec, apply_quality=True):
    """One numpy.histogram2d per cell and channel, after QualityCuts.apply."""
    if apply_quality:
        mags = spec.quality.apply(stars)
    else:
        mags = {b: np.ma.filled(np.ma.asarray(stars[b], dtype=float), np.nan)
                for b in ("J", "H", "Ks")}
    cells = np.asarray(cells)
    out = np.zeros((n_cells,) + spec.shape, dtype=np.float32)
    n_stars = np.zeros(n_cells, dtype=np.int64)
    for c in range(n_cells):
        sel = cells == c
        for k, ch in enumerate(spec.channels):
            row = ch.row_bands
            mag = mags[row[0]][sel] if len(row) == 1 else mags[row[0]][sel] - mags[row[1]][sel]
            colour = mags[ch.colour[0]][sel] - mags[ch.colour[1]][sel]
            finite = np.isfinite(mag) & np.isfinite(colour)
            hist, _, _ = np.histogram2d(mag[finite], colour[finite],
                                        bins=[spec.n_mag, spec.n_colour],
                                        range=[ch.mag_range, ch.colour_range])
            out[c, k] = spec.transform_counts(hist)
            if k == 0:
                n_stars[c] = int(hist.sum())
    return out, n_stars


def random_stars(n, spec, seed, *, on_edges=0.2):
    """Stars with 3-decimal magnitudes, many exactly on bin edges, NaN and inf values."""
    rng = np.random.default_rng(seed)
    ch0, ch1 = spec.channels[0], spec.channels[-1]
    edges_m = np.linspace(*ch0.mag_range, spec.n_mag + 1)
    edges_c = np.linspace(*ch0.colour_range, spec.n_colour + 1)
    ks = np.round(rng.uniform(ch0.mag_range[0] - 1, ch0.mag_range[1] + 1, n), 3)
    jk = np.round(rng.gamma(2.0, 0.6, n) - 0.3, 3)
    pick = rng.random(n) < on_edges
    ks[pick] = rng.choice(edges_m, pick.sum())
    pick = rng.random(n) < on_edges
    jk[pick] = rng.choice(edges_c, pick.sum())
    h = np.round(ks + 0.35 * jk, 3)
    pick = rng.random(n) < on_edges
    h[pick] = rng.choice(np.linspace(*ch1.mag_range, spec.n_mag + 1), pick.sum())
    j = ks + jk
    j[rng.random(n) < 0.03] = np.nan
    h[rng.random(n) < 0.02] = np.inf
    ks[rng.random(n) < 0.02] = -np.inf
    err = lambda: np.where(rng.random(n) < 0.05, np.nan, 0.03)  # noqa: E731
    return Table({"J": j, "H": h, "Ks": ks, "e_J": err(), "e_H": err(), "e_Ks": err(),
                  "ph_qual": rng.choice(np.array(["AAA", "ABC", "UAA", "AAD", "CCX"]), n),
                  "cc_flg": rng.choice(np.array(["000", "0c0", "00d"]), n)})


SPECS = {
    "default": CMDSpec(),
    "odd": CMDSpec(channels=(CMDChannel("J", ("J", "H"), (7.3, 15.1), (-0.37, 2.9)),),
                   n_mag=7, n_colour=5, transform="sqrt", scale=2.0,
                   quality=QualityCuts(ph_qual="ABCD", cc_flg="0cd", max_error=0.05)),
    "linear": CMDSpec(transform="linear", scale=1.0, n_mag=16, n_colour=12,
                      quality=QualityCuts(keep_upper_limits=True)),
    # a colour-colour channel beside the CMDs; its quality cuts need all three bands
    "colour-colour": CMDSpec(channels=(
        CMDChannel("Ks", ("J", "Ks"), (5.0, 16.0), (-0.5, 6.5)),
        CMDChannel(("J", "H"), ("H", "Ks"), (-0.2, 2.2), (-0.3, 1.5)),
        CMDChannel("H", ("H", "Ks"), (5.0, 16.5), (-0.5, 3.5))),
        n_mag=20, n_colour=24, quality=QualityCuts(ph_qual="ABC", cc_flg="0c")),
}


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("apply_quality", [True, False])
@pytest.mark.parametrize("order", ["random", "sorted"])
def test_matches_histogram2d(name, apply_quality, order):
    spec = SPECS[name]
    n, n_cells = 6000, 23
    stars = random_stars(n, spec, seed=len(name))
    rng = np.random.default_rng(1)
    # cells 20-22 get no stars; -1 means "ignore this star"
    cells = rng.integers(-1, 20, n)
    if order == "sorted":
        cells = np.sort(cells)
    got, n_stars = build_cmds(stars, cells, n_cells, spec, apply_quality=apply_quality)
    want, want_n = reference_cmds(stars, cells, n_cells, spec, apply_quality)
    assert got.dtype == np.float32 and got.shape == (n_cells,) + spec.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(n_stars, want_n)
    assert n_stars.dtype == np.int64
    assert np.all(got[20:] == 0) and np.all(n_stars[20:] == 0)
    assert n_stars[:20].min() > 0


def test_edges_follow_histogram2d_exactly():
    # values exactly on every edge, one ulp either side, and the range ends
    spec = CMDSpec(channels=(CMDChannel("Ks", ("J", "Ks"), (5.0, 16.0), (-0.5, 6.5)),),
                   n_mag=64, n_colour=64, transform="linear", scale=1.0,
                   quality=QualityCuts(ph_qual="", cc_flg=""))
    edges = np.linspace(5.0, 16.0, 65)
    ks = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    colours = np.resize(np.linspace(-0.5, 6.5, 65), ks.size)
    stars = {"J": ks + colours, "H": ks, "Ks": ks}
    got, n_stars = build_cmds(stars, np.zeros(ks.size, int), 1, spec, apply_quality=False)
    want, want_n = reference_cmds(stars, np.zeros(ks.size, int), 1, spec, False)
    np.testing.assert_array_equal(got, want)
    assert n_stars[0] == want_n[0]


def test_bin_indices_matches_searchsorted():
    rng = np.random.default_rng(3)
    lo, hi, n = -0.5, 6.5, 64
    edges = np.linspace(lo, hi, n + 1)
    values = np.concatenate([rng.uniform(-1, 7, 5000), edges, np.nextafter(edges, 0),
                             np.nextafter(edges, 10), [np.nan, np.inf, -np.inf]])
    want = np.searchsorted(edges, values, side="right") - 1
    want[values == hi] = n - 1
    want[(want < 0) | (want >= n) | ~np.isfinite(values)] = -1
    np.testing.assert_array_equal(bin_indices(values, lo, hi, n), want)


def test_blocks_and_large_counts(monkeypatch):
    # small chunks and blocks exercise the block logic: a cell bigger than a chunk,
    # blocks capped by their span, bins holding more than 1024 stars (LUT growth)
    monkeypatch.setattr(cmd_module, "_CHUNK", 256)
    monkeypatch.setattr(cmd_module, "_BLOCK_BINS", 3 * 2 * 64 * 64)
    spec = CMDSpec(quality=QualityCuts(ph_qual="", cc_flg=""))
    stars = random_stars(4000, spec, seed=9)
    stars["Ks"][:1500] = 10.0
    stars["J"][:1500] = 11.0
    stars["H"][:1500] = 10.5
    cells = np.sort(np.concatenate([np.zeros(1500, int), np.arange(2500) % 9 * 3 + 2]))
    got, n_stars = build_cmds(stars, cells, 30, spec, apply_quality=False)
    want, want_n = reference_cmds(stars, cells, 30, spec, False)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(n_stars, want_n)
    assert n_stars[0] >= 1500


def test_masked_columns_count_as_missing():
    spec = CMDSpec()
    t = Table({"J": MaskedColumn([12.0, 12.5], mask=[False, True]), "H": [11.5, 12.0],
               "Ks": [11.3, 11.8], "e_J": [0.02, 0.02], "e_H": [0.02, 0.02],
               "e_Ks": [0.02, 0.02]})
    _, n_stars = build_cmds(t, np.array([0, 0]), 1, spec)
    assert n_stars.tolist() == [1]  # the masked J does not count in Ks vs J-Ks
    cmds, _ = build_cmds(t, np.array([0, 0]), 1, spec)
    assert np.count_nonzero(cmds[0, 1]) == 2  # both count in H vs H-Ks


def test_empty_input_gives_zeros():
    empty = Table({b: np.zeros(0) for b in ("J", "H", "Ks", "e_J", "e_H", "e_Ks")})
    cmds, n_stars = build_cmds(empty, np.zeros(0, dtype=int), 4)
    assert cmds.shape == (4, 2, 64, 64) and not cmds.any() and n_stars.tolist() == [0] * 4
    cmds, n_stars = build_cmds(empty, np.zeros(0, dtype=int), 0)
    assert cmds.shape == (0, 2, 64, 64) and n_stars.shape == (0,)
    # all stars ignored
    t = Table({"J": [12.0], "H": [11.5], "Ks": [11.0]})
    cmds, n_stars = build_cmds(t, np.array([-1]), 2, apply_quality=False)
    assert not cmds.any() and n_stars.tolist() == [0, 0]


def test_bad_input():
    t = Table({"J": [12.0], "H": [11.5], "Ks": [11.0]})
    with pytest.raises(TypeError, match="spec must be a CMDSpec"):
        build_cmds(t, [0], 1, spec={"n_mag": 64})
    with pytest.raises(KeyError, match="no column 'Ks'"):
        build_cmds(Table({"J": [1.0], "H": [1.0]}), [0], 1)
    with pytest.raises(ValueError, match="one entry per star"):
        build_cmds(t, [0, 0], 1)
    with pytest.raises(TypeError, match="cells must be integers"):
        build_cmds(t, [0.5], 1)
    with pytest.raises(ValueError, match=r"cells has values >= n_cells \(1\)"):
        build_cmds(t, [1], 1)
    with pytest.raises(ValueError, match="n_cells must be non-negative"):
        build_cmds(t, [0], -1)
    with pytest.raises(TypeError, match="n_cells must be an integer"):
        build_cmds(t, [0], 1.5)
    with pytest.raises(TypeError, match="n_cells must be an integer"):
        build_cmds(t, [0], True)


def test_spec_validation_and_json():
    spec = SPECS["odd"]
    assert CMDSpec.from_json(spec.to_json()) == spec
    assert spec.shape == (1, 7, 5)
    cc = SPECS["colour-colour"]
    assert CMDSpec.from_json(cc.to_json()) == cc
    assert cc.channels[1].label == ("J-H", "H-Ks") and cc.channels[1].bands == ("J", "H", "Ks")
    with pytest.raises(ValueError, match="transform must be one of"):
        CMDSpec(transform="log")
    with pytest.raises(ValueError, match="band 'K'"):
        CMDChannel("K", ("J", "Ks"), (5, 16), (0, 1))
    with pytest.raises(ValueError, match="mag_range must be finite with max > min"):
        CMDChannel("Ks", ("J", "Ks"), (16, 5), (0, 1))
    with pytest.raises(ValueError, match="mag must be a band or two bands"):
        CMDChannel(("J", "H", "Ks"), ("H", "Ks"), (0, 1), (0, 1))
    with pytest.raises(ValueError, match="'K' is not one of"):
        CMDChannel(("J", "K"), ("H", "Ks"), (0, 1), (0, 1))
    with pytest.raises(ValueError, match="n_mag must be a positive integer"):
        CMDSpec(n_mag=0)
    with pytest.raises(ValueError, match="at least one channel"):
        CMDSpec(channels=())


def test_deprecated_module_name_still_works(monkeypatch):
    import importlib
    import sys

    from astropy.utils.exceptions import AstropyDeprecationWarning

    monkeypatch.delitem(sys.modules, "cnnext.cmd", raising=False)
    with pytest.warns(AstropyDeprecationWarning, match="cnnext.cmds"):
        old = importlib.import_module("cnnext.cmd")
    assert old.CMDSpec is CMDSpec and old.build_cmds is build_cmds
