# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the shared stars -> profiles pipeline (cnnext.sightlines)."""

import numpy as np
import pytest
from astropy.table import Table

from cnnext import __version__
from cnnext.cmds import CMDChannel, CMDSpec, build_cmds
from cnnext.healpix import cell_centres, lonlat_to_cells
from cnnext.model import CNNModel
from cnnext.photometry.table import TableSource
from cnnext.profiles import FLAG_FEW_STARS, FLAG_OUTSIDE_MODEL, FLAG_PARTIAL
from cnnext.sightlines import (
    DEFAULT_KS_FAINT,
    RED_CLUMP_MKS,
    compute_cells,
    faint_ks_limit,
    in_region,
    partly_covered,
    predict_cells,
    reliable_range,
    training_region,
)
from cnnext.testing.models import tiny_model_reference, write_tiny_model

ORDER = 7


def make_stars(n=3000, *, l=(279.5, 280.5), b=(-0.5, 0.5), seed=0):
    """Stars with 2MASS-like magnitudes inside the default CMD ranges."""
    rng = np.random.default_rng(seed)
    J = rng.uniform(9.0, 15.5, n)
    t = Table({"l": rng.uniform(*l, n), "b": rng.uniform(*b, n), "J": J,
               "H": J - rng.uniform(0.3, 1.2, n), "Ks": J - rng.uniform(0.5, 2.0, n),
               "e_J": np.full(n, 0.03), "e_H": np.full(n, 0.03), "e_Ks": np.full(n, 0.03),
               "ph_qual": np.full(n, "AAA"), "cc_flg": np.full(n, "000")})
    t["cell"] = lonlat_to_cells(t["l"], t["b"], ORDER)
    # spread each cell's stars over the whole cell (at random order-13 positions),
    # so that the box's edge cells are fully covered, if sparsely
    fine = t["cell"] * 4**6 + rng.integers(0, 4**6, n)
    t["l"], t["b"] = cell_centres(fine, ORDER + 6)
    return t


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx", min_stars=5)
    return CNNModel(path, providers="cpu")


def test_predict_cells_matches_reference(model):
    stars = make_stars()
    cells = np.unique(stars["cell"])
    pm = predict_cells(stars, cells, model)
    rows = np.searchsorted(cells, stars["cell"])
    cmds, n_stars = build_cmds(stars, rows, cells.size, model.spec)
    ref_av, ref_sigma = tiny_model_reference(cmds)
    np.testing.assert_array_equal(pm.cells, cells)
    np.testing.assert_array_equal(pm.n_stars, n_stars)
    assert np.all(n_stars >= 5)
    np.testing.assert_allclose(pm.av, ref_av, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(pm.sigma, ref_sigma, rtol=2e-5, atol=1e-6)
    assert np.all(pm.flags == 0)
    assert pm.order == ORDER
    np.testing.assert_array_equal(pm.distances, model.distances)


def test_batching_does_not_change_results(model):
    stars = make_stars(seed=3)
    cells = np.unique(stars["cell"])
    one = predict_cells(stars, cells, model, batch_size=1)
    many = predict_cells(stars, cells, model, batch_size=1000)
    three = predict_cells(stars, cells, model, batch_size=3)
    np.testing.assert_array_equal(one.av, many.av)
    np.testing.assert_array_equal(three.av, many.av)
    np.testing.assert_array_equal(one.n_stars, many.n_stars)


def test_star_order_and_extra_cells(model):
    stars = make_stars(seed=4)
    cells = np.unique(stars["cell"])
    shuffled = stars[np.random.default_rng(0).permutation(len(stars))]
    a = predict_cells(stars, cells, model)
    b = predict_cells(shuffled, cells[::-1].tolist() + [int(cells[0])], model)
    np.testing.assert_array_equal(a.av, b.av)
    # only some cells asked for: the other stars are ignored
    sub = predict_cells(stars, cells[:2], model)
    assert sub.cells.tolist() == cells[:2].tolist()
    np.testing.assert_array_equal(sub.av, a.av[:2])


def test_few_stars_and_empty_cells(model):
    stars = make_stars(seed=5)
    cells = np.unique(stars["cell"])
    # keep only 3 stars of the first cell, none at all in an extra far-away cell
    first = np.flatnonzero(stars["cell"] == cells[0])
    drop = np.ones(len(stars), bool)
    drop[first[3:]] = False
    stars = stars[drop]
    far = int(lonlat_to_cells(10.0, 40.0, ORDER))
    pm = predict_cells(stars, np.append(cells, far), model)
    row_first, row_far = pm.lookup([cells[0], far])
    assert pm.n_stars[row_first] == 3 and pm.n_stars[row_far] == 0
    for row in (row_first, row_far):
        assert pm.flags[row] == FLAG_FEW_STARS
        assert np.all(np.isnan(pm.av[row])) and np.all(np.isnan(pm.sigma[row]))
        assert np.isnan(pm.dmin[row]) and np.isnan(pm.dmax[row])
    good = pm.flags == 0
    assert good.sum() == cells.size - 1
    assert np.all(np.isfinite(pm.av[good]))


def test_no_stars_at_all(model):
    stars = make_stars(0)
    pm = predict_cells(stars, [5, 6], model)
    assert pm.flags.tolist() == [FLAG_FEW_STARS] * 2
    assert predict_cells(stars, [], model).cells.size == 0


def test_missing_cell_column(model):
    stars = make_stars(10)
    del stars["cell"]
    with pytest.raises(KeyError, match="'cell'"):
        predict_cells(stars, [1], model)


def test_meta(model):
    stars = make_stars(200)
    pm = predict_cells(stars, np.unique(stars["cell"]), model, source_key="table:x")
    assert pm.meta["model_sha256"] == model.sha256
    assert pm.meta["extinction_law"] == model.law.to_dict()
    assert CMDSpec.from_dict(pm.meta["cmd_spec"]) == model.spec
    assert pm.meta["source"] == "table:x"
    assert pm.meta["min_stars"] == 5
    assert pm.meta["cnnext_version"] == __version__


@pytest.mark.parametrize("training, expected", [
    ({"region": {"bounds": {"l": [279.0, 280.0], "b": [-5.0, 5.0]}}}, "split"),
    ({"region": {"bounds": {"l": [250.0, 300.0], "b": [-5.0, 5.0]}}}, "none"),
    ({"region": {"bounds": {"l": [300.0, 250.0], "b": [-5.0, 5.0]}}}, "all"),  # wraps 0
    ({"region": {"sightlines": [[280.0, 0.0]]}}, "none"),  # no bounds: nothing flagged
    ({"region": "Carina"}, "none"),
    ({}, "none"),
])
def test_outside_training_region(tmp_path, training, expected):
    path = write_tiny_model(tmp_path / "m.onnx", metadata_overrides={"training": training})
    model = CNNModel(path, providers="cpu")
    stars = make_stars(seed=6)
    cells = np.unique(stars["cell"])
    pm = predict_cells(stars, cells, model)
    outside = (pm.flags & FLAG_OUTSIDE_MODEL) != 0
    l, _ = cell_centres(cells, ORDER)
    if expected == "split":
        np.testing.assert_array_equal(outside, l > 280.0)
        assert 0 < outside.sum() < cells.size
    else:
        assert np.all(outside) if expected == "all" else not np.any(outside)
    # the prediction is kept for flagged cells
    assert np.all(np.isfinite(pm.av))


def test_training_region_parsing(tmp_path):
    path = write_tiny_model(tmp_path / "m.onnx", metadata_overrides={
        "training": {"region": {"bounds": {"l": [-10, 10], "b": [-2, 2]}}}})
    region = training_region(CNNModel(path, providers="cpu"))
    assert region == {"l": (350.0, 10.0), "b": (-2.0, 2.0)}
    assert in_region([355.0, 5.0, 20.0, 0.0], [0.0, 0.0, 0.0, 3.0], region).tolist() == \
        [True, True, False, False]
    assert in_region([1.0, 200.0], [0.0, 0.0], {"l": (0.0, 360.0), "b": (-1, 1)}).all()


def test_reliable_range_numbers():
    d = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    # red clump Ks at d without extinction: -1.6 + 5 log10(100 d)
    ks0 = RED_CLUMP_MKS + 5 * np.log10(d * 100)
    av = np.array([[0.0, 0.0, 0.0, 0.0, 0.0],
                   [0.0, 1.0, 2.0, 40.0, 41.0],
                   [np.nan] * 5])
    dmin, dmax = reliable_range(av, d, a_ks_per_av=0.1, ks_faint=15.0)
    assert dmin[0] == 0.5 and dmax[0] == 8.0  # 12.9 mag at 8 kpc: visible
    assert (ks0 + 0.1 * av[1])[3] > 15.0 > (ks0 + 0.1 * av[1])[2]
    assert dmin[1] == 0.5 and dmax[1] == 2.0
    assert np.isnan(dmin[2]) and np.isnan(dmax[2])
    # hidden already at the first node: dmax is the first node
    _, dmax = reliable_range(np.array([[80.0] * 5]), d, a_ks_per_av=0.1, ks_faint=15.0)
    assert dmax[0] == 0.5


def test_predicted_dmax_consistent(model):
    stars = make_stars()
    pm = predict_cells(stars, np.unique(stars["cell"]), model)
    # the faint Ks limit of each cell is its own count turnover where it is known,
    # capped at the CMD's faint Ks edge; the model's limit otherwise
    peak = pm.observation[:, 5]
    edge = min(c.mag_range[1] for c in model.spec.channels if c.mag == "Ks")
    ks_faint = np.where(np.isfinite(peak), np.minimum(peak, edge), faint_ks_limit(model))
    dmin, dmax = reliable_range(pm.av, pm.distances, a_ks_per_av=model.law.ratio("Ks"),
                                ks_faint=ks_faint[:, None])
    np.testing.assert_allclose(pm.dmax, dmax, rtol=1e-6)
    np.testing.assert_allclose(pm.dmin, model.distances[0], rtol=1e-6)
    assert np.all(pm.dmax >= pm.dmin)


@pytest.mark.parametrize("limits, expected", [
    ({}, DEFAULT_KS_FAINT),
    ({"Ks": 14.5}, 14.5),
    ({"Ks": {"m50": 14.9, "width": 0.2}}, 14.9),
    ({"faint": {"J": 16.0, "Ks": 14.7}}, 14.7),
    ({"Ks": 18.0}, 15.5),  # capped at the CMD's faint Ks edge
])
def test_faint_ks_limit(tmp_path, limits, expected):
    spec = CMDSpec(channels=(CMDChannel("Ks", ("J", "Ks"), (5.0, 15.5), (-0.5, 6.5)),))
    path = write_tiny_model(tmp_path / "m.onnx", spec=spec,
                            metadata_overrides={"mag_limits": limits})
    assert faint_ks_limit(CNNModel(path, providers="cpu")) == expected


def test_compute_cells_with_table_source(model):
    stars = make_stars(seed=8)
    source = TableSource(stars[["l", "b", "J", "H", "Ks", "e_J", "e_H", "e_Ks", "ph_qual",
                                "cc_flg"]], key="table:test")
    cells = np.unique(stars["cell"])
    pm = compute_cells(cells[::-1], source=source, model=model, batch_size=7)
    ref = predict_cells(stars, cells, model)
    np.testing.assert_array_equal(pm.cells, ref.cells)
    np.testing.assert_array_equal(pm.av, ref.av)
    np.testing.assert_array_equal(pm.n_stars, ref.n_stars)
    assert pm.meta["source"] == "table:test"


def test_partly_covered_cell_is_flagged(model):
    # the western half of a cell's sub-cells only, as at a catalogue's edge
    stars = make_stars()
    cells = np.unique(stars["cell"])
    full = predict_cells(stars, cells, model)
    target = cells[np.argmax(full.n_stars)]
    fine = lonlat_to_cells(stars["l"], stars["b"], ORDER + 2)
    cut = stars[(stars["cell"] != target) | ((fine & 15) < 8)]
    pm = predict_cells(cut, cells, model)
    row = int(np.searchsorted(cells, target))
    assert pm.flags[row] & FLAG_PARTIAL
    assert np.isnan(pm.av[row]).all()
    others = np.arange(cells.size) != row
    assert not np.any(pm.flags[others] & FLAG_PARTIAL)
    np.testing.assert_allclose(pm.av[others], full.av[others], rtol=1e-6)


@pytest.mark.parametrize("n", [300, 800, 3000])
def test_partly_covered_finds_slivers_but_not_dark_cores(n):
    # a catalogue's circular edge cuts a sliver off one cell; a dark core empties
    # a few arcminutes of another: only the first is partly covered
    rng = np.random.default_rng(n)
    cells = np.array([100, 200])
    fine = np.repeat(cells, n) * 4**6 + rng.integers(0, 4**6, 2 * n)
    l, b = cell_centres(fine, ORDER + 6)
    lc, bc = cell_centres(np.array([100]), ORDER)
    # about 15 % of cell 100 lies beyond a circle through it
    d = np.hypot((l - lc) * np.cos(np.radians(bc)), b - bc)
    cut = (fine >> 12 == 100) & (d > np.quantile(d[fine >> 12 == 100], 0.85))
    # in cell 200, one order-10 sub-cell (1/64 of it) holds no star
    dark = (fine >> 12 == 200) & ((fine >> 6) & 63 == 37)
    keep = ~(cut | dark)
    stars = {"l": l[keep], "b": b[keep], "cell": fine[keep] >> 12}
    covered = partly_covered(stars, cells, ORDER)
    assert covered.tolist() == [n >= 800, False]


def test_profiles_carry_the_observation_estimate(model):
    from cnnext.observation import DESCRIPTORS
    from cnnext.synthetic import PhotometricModel

    stars = make_stars(n=6000)
    pmodel = PhotometricModel(m10={"J": 16.4, "H": 15.4, "Ks": 14.9})
    rng = np.random.default_rng(3)
    for band in ("J", "H", "Ks"):
        stars[band] = rng.uniform(9.0, 17.0, len(stars))
        stars[f"e_{band}"] = pmodel.sigma(band, stars[band])
    cells = np.unique(stars["cell"])
    pm = predict_cells(stars, cells, model)
    assert pm.observation.shape == (cells.size, len(DESCRIPTORS))
    busy = pm.n_stars > 200
    np.testing.assert_allclose(pm.observation[busy, :3],
                               np.broadcast_to([16.4, 15.4, 14.9], (busy.sum(), 3)),
                               atol=0.15)


def test_deeper_cells_reach_farther(model):
    # the same stars observed to a fainter turnover: dmax can only grow
    from cnnext.synthetic import PhotometricModel

    rng = np.random.default_rng(4)
    stars = make_stars(n=8000)
    shallow = stars.copy()
    deep = stars.copy()
    for table, m10 in ((shallow, 13.6), (deep, 14.6)):
        pmod = PhotometricModel(m10={"J": m10 + 1.5, "H": m10 + 0.8, "Ks": m10})
        for band in ("J", "H", "Ks"):
            # counts rising by 0.3 dex per magnitude, as in 2MASS: a clear turnover
            mag = np.clip(18.0 - rng.exponential(1.0 / (0.3 * np.log(10)), len(table)),
                          8.0, 18.0)
            keep = rng.random(len(table)) < pmod.completeness(band, mag)
            table[band] = np.where(keep, mag, np.nan)
            table[f"e_{band}"] = np.where(keep, pmod.sigma(band, mag), np.nan)
    cells = np.unique(stars["cell"])
    a = predict_cells(shallow, cells, model)
    b = predict_cells(deep, cells, model)
    per_cell = np.bincount(np.searchsorted(cells, stars["cell"]), minlength=cells.size)
    busy = (per_cell > 300) & np.isfinite(a.observation[:, 5]) & np.isfinite(
        b.observation[:, 5])
    assert busy.any()
    shift = b.observation[busy, 5] - a.observation[busy, 5]
    assert np.all(shift > 0) and shift.mean() > 0.5  # 1 mag deeper, a few hundred stars
    # the same profiles, read with the deeper cells' turnover, reach as far or farther
    ok = busy & np.isfinite(a.dmax)
    _, farther = reliable_range(a.av[ok], a.distances, a_ks_per_av=model.law.ratio("Ks"),
                                ks_faint=np.minimum(b.observation[ok, 5], 16.0)[:, None])
    assert np.all(farther >= a.dmax[ok] - 1e-6) and np.any(farther > a.dmax[ok])
