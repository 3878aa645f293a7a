# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Conformance suite for the dustmaps contract of CNNExtinctionMap (file mode).

Shapes, frames, interpolation rules, NaN handling, the dustmaps entry points, the
uncertainty modes, band conversions and input errors, against a small map whose
numbers are known.
"""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import (
    Distance,
    Galactic,
    Galactocentric,
    SkyCoord,
    SphericalRepresentation,
    UnitSphericalRepresentation,
)

from cnnext import CNNExtinctionMap
from cnnext.exceptions import CnnextWarning, MapFileError, ModelFileError
from cnnext.extinction import ExtinctionLaw
from cnnext.healpix import lonlat_to_cells
from cnnext.map import FLAGS_DTYPE
from cnnext.profiles import FLAG_FEW_STARS, FLAG_NO_DATA, FLAG_OUTSIDE_MODEL, ProfileMap

ORDER = 7
NODES = np.arange(1, 11) * 0.5  # 0.5 ... 5 kpc
LAW = ExtinctionLaw("G23", 3.1)
FEW = (281.5, 1.5)       # a cell with too few stars
OUTSIDE = (278.5, -1.5)  # a cell outside the model's training region


def build_map(meta=None):
    l, b = np.meshgrid(np.linspace(278.0, 282.0, 161), np.linspace(-2.0, 2.0, 161))
    cells = np.unique(lonlat_to_cells(l.ravel(), b.ravel(), ORDER))
    rate = 1.0 + (cells % 7) * 0.25  # A_V per kpc, different from cell to cell
    av = rate[:, None] * NODES
    flags = np.zeros(cells.size, np.int32)
    few = np.searchsorted(cells, lonlat_to_cells(*FEW, ORDER))
    out = np.searchsorted(cells, lonlat_to_cells(*OUTSIDE, ORDER))
    av[few] = np.nan
    flags[few] = FLAG_FEW_STARS
    flags[out] = FLAG_OUTSIDE_MODEL
    n_stars = np.where(flags & FLAG_FEW_STARS, 3, 400 + cells % 100)
    return ProfileMap(cells=cells, order=ORDER, distances=NODES, av=av,
                      sigma=0.1 * av + 0.05, n_stars=n_stars, flags=flags,
                      dmin=np.full(cells.size, 0.5), dmax=np.full(cells.size, 4.0),
                      meta={"extinction_law": LAW.to_dict()} if meta is None else meta)


PM = build_map()


@pytest.fixture(scope="module")
def map_path(tmp_path_factory):
    return PM.write(tmp_path_factory.mktemp("map") / "map.fits")


@pytest.fixture
def m(map_path):
    return CNNExtinctionMap(map_fname=map_path)


def coords(shape, *, distance=True, seed=0, frame="galactic"):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    l = rng.uniform(279.0, 281.0, n).reshape(shape)
    b = rng.uniform(-1.0, 1.0, n).reshape(shape)
    d = rng.uniform(0.0, 6.0, n).reshape(shape) if distance else None
    c = SkyCoord(l * u.deg, b * u.deg, distance=None if d is None else d * u.kpc,
                 frame="galactic")
    return c if frame == "galactic" else c.transform_to(frame)


def expected(c, *, band="V", what="av"):
    """Independent reference: np.interp on (0, nodes) of the cell's row."""
    g = c.galactic
    l, b = np.ravel(g.l.deg), np.ravel(g.b.deg)
    rows = PM.lookup(lonlat_to_cells(l, b, ORDER))
    table = getattr(PM, what).astype(float)
    ratio = LAW.ratio(band)
    if g.distance.unit == u.one:
        return (table[rows] * ratio).reshape(c.shape + (NODES.size,))
    d = np.ravel(g.distance.to_value(u.kpc))
    out = [np.interp(di, np.r_[0.0, NODES], np.r_[0.0, table[r]]) for r, di in zip(rows, d)]
    return (np.array(out) * ratio).reshape(c.shape)


# --- shapes --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("distance", [True, False])
def test_shapes(m, shape, distance):
    c = coords(shape, distance=distance)
    out = m.query(c)
    want = shape if distance else shape + (NODES.size,)
    assert np.shape(out) == want
    if shape == () and distance:
        assert np.isscalar(out) and isinstance(out, float)
    else:
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected(c), rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
@pytest.mark.parametrize("distance", [True, False])
def test_shapes_modes_sigma_flags(m, shape, distance):
    c = coords(shape, distance=distance)
    prof = () if distance else (NODES.size,)
    assert np.shape(m.query(c, mode="median")) == shape + prof
    assert np.shape(m.query(c, mode="percentile", pct=16)) == shape + prof
    assert np.shape(m.query(c, mode="percentile", pct=[16, 50, 84])) == shape + prof + (3,)
    assert np.shape(m.query(c, mode="samples", n_samples=6, seed=1)) == shape + prof + (6,)
    assert np.shape(m.query(c, mode="random_sample", seed=1)) == shape + prof
    assert np.shape(m.query(c, mode="random_sample_per_pix", seed=1)) == shape + prof
    value, sigma = m.query(c, return_sigma=True)
    assert np.shape(value) == np.shape(sigma) == shape + prof
    np.testing.assert_allclose(sigma, expected(c, what="sigma"), rtol=1e-6)
    value, sigma, flags = m.query(c, return_sigma=True, return_flags=True)
    assert flags.shape == shape and flags.dtype == FLAGS_DTYPE
    value, flags = m.query(c, return_flags=True)
    assert flags.shape == shape


def test_empty_coords(m):
    c = SkyCoord([] * u.deg, [] * u.deg, distance=[] * u.kpc, frame="galactic")
    assert m.query(c).shape == (0,)
    c = SkyCoord([] * u.deg, [] * u.deg, frame="galactic")
    assert m.query(c).shape == (0, NODES.size)


# --- frames ----------------------------------------------------------------------

@pytest.mark.parametrize("frame", ["icrs", "fk5", "fk4", "barycentrictrueecliptic"])
def test_frames(m, frame):
    c = coords((4, 5), frame=frame)
    np.testing.assert_allclose(m.query(c), m.query(c.galactic), rtol=1e-9)
    c = coords((4, 5), frame=frame, distance=False)
    np.testing.assert_allclose(m.query(c), expected(c), rtol=1e-6)


def test_galactic_cartesian(m):
    c = coords((10,))
    xyz = c.cartesian
    cart = SkyCoord(xyz.x, xyz.y, xyz.z, frame="galactic", representation_type="cartesian")
    np.testing.assert_allclose(m.query(cart), m.query(c), rtol=1e-9)
    # unit vectors (no length unit) carry no distance: whole profiles
    unit = SkyCoord(xyz / xyz.norm(), frame="galactic", representation_type="cartesian")
    assert m.query(unit).shape == (10, NODES.size)


def test_galactocentric(m):
    c = coords((6,), seed=3)
    gc = c.transform_to(Galactocentric())
    np.testing.assert_allclose(m.query(gc), m.query(c), rtol=1e-6)


# --- interpolation rules --------------------------------------------------------

def test_interpolation_rules(m):
    l, b = 280.0, 0.0
    row = PM.lookup(lonlat_to_cells(l, b, ORDER))
    prof = PM.av[row].astype(float)
    d = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.2, 5.0, 5.5, 100.0])
    c = SkyCoord(l * u.deg, b * u.deg, distance=d * u.kpc, frame="galactic")
    want = np.array([0.0, prof[0] * 0.2, prof[0] * 0.5, prof[0],
                     0.5 * (prof[0] + prof[1]), prof[1], 0.6 * prof[3] + 0.4 * prof[4],
                     prof[-1], prof[-1], prof[-1]])
    np.testing.assert_allclose(m.query(c), want, rtol=1e-6)
    # whole profile without distance equals the values at the nodes
    np.testing.assert_allclose(m.query_gal(l, b), prof, rtol=1e-7)
    np.testing.assert_allclose(m.query_gal(l, b, NODES), prof, rtol=1e-7)
    # sigma: linear too, scaled to zero below the first node
    sig = PM.sigma[row].astype(float)
    _, s = m.query(c, return_sigma=True)
    np.testing.assert_allclose(s[[0, 2, 4, 9]], [0.0, 0.5 * sig[0],
                                                 0.5 * (sig[0] + sig[1]), sig[-1]],
                               rtol=1e-6)


def test_single_node_map(tmp_path):
    pm = ProfileMap(cells=[lonlat_to_cells(280.0, 0.0, ORDER)], order=ORDER, distances=[2.0],
                    av=[[4.0]], sigma=[[0.4]], n_stars=[100])
    m = CNNExtinctionMap(map_fname=pm)
    out = m.query_gal(280.0, 0.0, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(out, [0.0, 2.0, 4.0, 4.0])
    assert m.query_gal(280.0, 0.0).shape == (1,)


def test_random_positions_match_reference(m):
    c = coords((500,), seed=11)
    np.testing.assert_allclose(m.query(c), expected(c), rtol=1e-6)


# --- NaN handling -----------------------------------------------------------------

def test_outside_footprint_nan_and_warn_once(m):
    c = SkyCoord([280.0, 10.0, 280.5] * u.deg, [0.0, 40.0, 0.5] * u.deg,
                 distance=[1.0, 1.0, 2.0] * u.kpc, frame="galactic")
    with pytest.warns(CnnextWarning, match="1 coordinate.*outside the map's footprint"):
        out, flags = m.query(c, return_flags=True)
    assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2]]))
    assert flags["flags"][1] == FLAG_NO_DATA and flags["n_stars"][1] == -1
    assert np.isnan(flags["dmin"][1]) and np.isnan(flags["dmax"][1])
    assert flags["flags"][0] == 0 and flags["n_stars"][0] >= 400
    assert flags["dmin"][0] == 0.5 and flags["dmax"][0] == 4.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(m.query(c[1]))  # no second warning
        assert np.all(np.isnan(m.query_gal(10.0, 40.0)))


def test_few_stars_nan(m):
    c = SkyCoord(FEW[0] * u.deg, FEW[1] * u.deg, frame="galactic")
    with pytest.warns(CnnextWarning, match="too few stars"):
        out, sigma, flags = m.query(c, return_sigma=True, return_flags=True)
    assert out.shape == (NODES.size,) and np.all(np.isnan(out)) and np.all(np.isnan(sigma))
    assert flags["flags"] == FLAG_FEW_STARS and flags["n_stars"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(m.query(SkyCoord(FEW[0] * u.deg, FEW[1] * u.deg,
                                         distance=1 * u.kpc, frame="galactic"),
                                mode="percentile", pct=90))


def test_outside_model_region(map_path):
    c = SkyCoord(OUTSIDE[0] * u.deg, OUTSIDE[1] * u.deg, distance=2.0 * u.kpc,
                 frame="galactic")
    m = CNNExtinctionMap(map_fname=map_path)
    with pytest.warns(CnnextWarning, match="outside the model's training region"):
        out, flags = m.query(c, return_flags=True)
    assert np.isnan(out) and flags["flags"] == FLAG_OUTSIDE_MODEL
    kept = CNNExtinctionMap(map_fname=map_path, mask_outside_model=False)
    np.testing.assert_allclose(kept.query(c), expected(c), rtol=1e-6)


def test_nan_position(m):
    c = SkyCoord([np.nan, 280.0] * u.deg, [0.0, 0.0] * u.deg, distance=[1, 1] * u.kpc,
                 frame="galactic")
    with pytest.warns(CnnextWarning, match="outside the map's footprint"):
        out = m.query(c)
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_nan_distance(m):
    c = SkyCoord([280.0, 280.0] * u.deg, [0.0, 0.0] * u.deg,
                 distance=[np.nan, 1.0] * u.kpc, frame="galactic")
    out = m.query(c)
    assert np.isnan(out[0]) and np.isfinite(out[1])


# --- dustmaps entry points ------------------------------------------------------

def test_call_query_gal_query_equ(m):
    c = coords((3, 2))
    ref = m.query(c)
    np.testing.assert_array_equal(m(c), ref)
    g = c.galactic
    np.testing.assert_allclose(m.query_gal(g.l.deg, g.b.deg, g.distance.kpc), ref, rtol=1e-9)
    np.testing.assert_allclose(m.query_gal(g.l, g.b, g.distance), ref, rtol=1e-9)
    icrs = c.icrs
    np.testing.assert_allclose(m.query_equ(icrs.ra.deg, icrs.dec.deg, icrs.distance.kpc),
                               ref, rtol=1e-9)
    fk5 = c.fk5
    np.testing.assert_allclose(m.query_equ(fk5.ra, fk5.dec, fk5.distance, frame="fk5"),
                               ref, rtol=1e-9)
    assert m.query_gal(280.0, 0.0, 1.0, band="Ks") == pytest.approx(
        float(expected(SkyCoord(280 * u.deg, 0 * u.deg, distance=1 * u.kpc,
                                frame="galactic"), band="Ks")))
    v, s = m(c, return_sigma=True, mode="median")
    assert v.shape == s.shape == (3, 2)


def test_distances_property(m):
    assert m.distances.unit == u.kpc
    np.testing.assert_allclose(m.distances.value, NODES)


# --- bands ------------------------------------------------------------------------

@pytest.mark.parametrize("band, ratio", [
    ("V", 1.0), ("A_V", 1.0), ("J", LAW.coefficients["J"]), ("H", LAW.coefficients["H"]),
    ("Ks", LAW.coefficients["Ks"]), ("K", LAW.coefficients["Ks"]), ("E(B-V)", 1 / 3.1)])
def test_bands(m, band, ratio):
    c = coords((20,))
    v, s = m.query(c, band=band, return_sigma=True)
    np.testing.assert_allclose(v, expected(c) * ratio, rtol=1e-6)
    np.testing.assert_allclose(s, expected(c, what="sigma") * ratio, rtol=1e-6)
    np.testing.assert_allclose(m.query(c, band=band, mode="percentile", pct=[10, 90]),
                               m.query(c, mode="percentile", pct=[10, 90]) * ratio,
                               rtol=1e-12)


def test_map_without_law(tmp_path):
    m = CNNExtinctionMap(map_fname=build_map(meta={}))
    c = coords((3,))
    np.testing.assert_allclose(m.query(c), expected(c), rtol=1e-6)
    with pytest.raises(ValueError, match="records none"):
        m.query(c, band="Ks")
    assert m.law is None


# --- modes --------------------------------------------------------------------------

def test_median_and_percentiles(m):
    c = coords((50,), seed=2)
    mean = m.query(c)
    np.testing.assert_allclose(m.query(c, mode="median"), mean, rtol=1e-12)
    np.testing.assert_allclose(m.query(c, mode="percentile", pct=50), mean, rtol=1e-12)
    _, sigma = m.query(c, return_sigma=True)
    # far from zero the draws are not clipped: percentiles are mean + z sigma
    c_far = SkyCoord(c.galactic.l, c.galactic.b, distance=np.full(50, 3.3) * u.kpc,
                     frame="galactic")
    mean, sigma = m.query(c_far, return_sigma=True)
    p = m.query(c_far, mode="percentile", pct=[2.275, 15.866, 84.134, 97.725])
    np.testing.assert_allclose(p, mean[:, None] + sigma[:, None] * [-2, -1, 1, 2], rtol=1e-4)
    # percentiles increase with pct and stay non-negative and monotone in distance
    prof = m.query(coords((5,), distance=False), mode="percentile", pct=[0, 1, 50, 99])
    assert prof.shape == (5, NODES.size, 4)
    assert np.all(np.diff(prof, axis=-1) >= 0)
    assert np.all(np.diff(prof, axis=-2) >= 0)
    assert np.all(prof >= 0)


def test_percentile_zero_is_clipped(tmp_path):
    cell = lonlat_to_cells(280.0, 0.0, ORDER)
    pm = ProfileMap(cells=[cell], order=ORDER, distances=[1.0, 2.0, 3.0],
                    av=[[0.1, 0.5, 3.0]], sigma=[[0.2, 1.0, 0.0]], n_stars=[100])
    m = CNNExtinctionMap(map_fname=pm)
    np.testing.assert_allclose(m.query_gal(280.0, 0.0, mode="percentile", pct=0),
                               [0.0, 0.0, 3.0])
    np.testing.assert_allclose(m.query_gal(280.0, 0.0, mode="percentile", pct=100),
                               [np.inf, np.inf, np.inf])
    # z = -1: 0.1 - 0.2 < 0 -> 0; 0.5 - 1 < 0 -> 0; 3 - 0 = 3
    np.testing.assert_allclose(m.query_gal(280.0, 0.0, mode="percentile", pct=15.865525),
                               [0.0, 0.0, 3.0], atol=1e-6)
    # z = +1 then a decreasing sigma: the running maximum keeps the profile monotone
    pm2 = ProfileMap(cells=[cell], order=ORDER, distances=[1.0, 2.0],
                     av=[[1.0, 1.2]], sigma=[[1.0, 0.1]], n_stars=[100])
    np.testing.assert_allclose(
        CNNExtinctionMap(map_fname=pm2).query_gal(280.0, 0.0, mode="percentile",
                                                  pct=84.134475), [2.0, 2.0], rtol=1e-6)


def test_samples_statistics(m):
    c = SkyCoord(280.2 * u.deg, 0.3 * u.deg, frame="galactic")
    mean, sigma = m.query(c, return_sigma=True)
    s = m.query(c, mode="samples", n_samples=4000, seed=42)
    assert s.shape == (NODES.size, 4000)
    assert np.all(s >= 0) and np.all(np.diff(s, axis=0) >= 0)
    np.testing.assert_allclose(s.mean(axis=1), mean, rtol=0.02)
    np.testing.assert_allclose(s.std(axis=1), sigma, rtol=0.05)
    # reproducible with a seed, different without
    np.testing.assert_array_equal(m.query(c, mode="samples", n_samples=5, seed=1),
                                  m.query(c, mode="samples", n_samples=5, seed=1))
    assert not np.array_equal(m.query(c, mode="samples", n_samples=5, seed=1),
                              m.query(c, mode="samples", n_samples=5, seed=2))


def test_samples_consistent_along_sightline(m):
    # sample k of a cell is one profile: at two distances of the same cell it is the
    # interpolation of that profile
    c = SkyCoord([280.2, 280.2] * u.deg, [0.3, 0.3] * u.deg, distance=[1.0, 2.0] * u.kpc,
                 frame="galactic")
    at_d = m.query(c, mode="samples", n_samples=8, seed=3)
    prof = m.query(SkyCoord(280.2 * u.deg, 0.3 * u.deg, frame="galactic"),
                   mode="samples", n_samples=8, seed=3)
    np.testing.assert_allclose(at_d[0], prof[1], rtol=1e-12)
    np.testing.assert_allclose(at_d[1], prof[3], rtol=1e-12)


def test_random_sample_modes(m):
    c = SkyCoord(np.full(200, 280.2) * u.deg, np.full(200, 0.3) * u.deg,
                 distance=np.full(200, 3.0) * u.kpc, frame="galactic")
    mean, sigma = m.query(c[0], return_sigma=True)
    r = m.query(c, mode="random_sample", seed=5)
    assert np.unique(r).size == 200  # one draw per coordinate
    assert abs(r.mean() - mean) < 4 * sigma / np.sqrt(200)
    np.testing.assert_array_equal(r, m.query(c, mode="random_sample", seed=5))
    per_pix = m.query(c, mode="random_sample_per_pix", seed=5)
    assert np.unique(per_pix).size == 1  # one draw per cell
    prof = m.query(SkyCoord([280.2] * 3 * u.deg, [0.3] * 3 * u.deg, frame="galactic"),
                   mode="random_sample", seed=7)
    assert prof.shape == (3, NODES.size)
    assert np.all(np.diff(prof, axis=1) >= 0) and np.all(prof >= 0)


# --- errors --------------------------------------------------------------------------

def test_errors(m):
    c = coords((3,))
    with pytest.raises(TypeError, match="SkyCoord"):
        m.query([1, 2, 3])
    with pytest.raises(TypeError, match="SkyCoord"):
        m((280.0, 0.0))
    with pytest.raises(ValueError, match="unknown mode 'best'"):
        m.query(c, mode="best")
    with pytest.raises(ValueError, match="unknown band 'R'"):
        m.query(c, band="R")
    with pytest.raises(ValueError, match="needs pct"):
        m.query(c, mode="percentile")
    for bad in (101, -1, [10, 120], [[10, 20]], "abc", [], np.nan):
        with pytest.raises(ValueError, match="pct must be"):
            m.query(c, mode="percentile", pct=bad)
    with pytest.raises(ValueError, match="pct is only used"):
        m.query(c, pct=50)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            m.query(c, mode="samples", n_samples=bad)
    neg = SkyCoord(Galactic(SphericalRepresentation(
        280 * u.deg, 0 * u.deg, Distance([1.0, -1.0], u.kpc, allow_negative=True))))
    with pytest.raises(ValueError, match="negative distances"):
        m.query(neg)
    with pytest.raises(ValueError, match="Distance must be >= 0"):
        m.query_gal(280.0, 0.0, -1.0)  # astropy refuses it already
    with pytest.raises(ValueError, match="frame"):
        m.query_equ(10.0, 10.0, frame="galactic")


def test_bad_map_file(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  = garbage")
    with pytest.raises(MapFileError, match="bad.fits"):
        CNNExtinctionMap(map_fname=bad)
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        CNNExtinctionMap(map_fname=tmp_path / "nope.fits")


def test_missing_default_model(tmp_path, monkeypatch):
    import cnnext.model

    monkeypatch.setattr(cnnext.model, "default_model_path",
                        lambda: tmp_path / "cnnext-carina.onnx")
    with pytest.raises(ModelFileError, match="cnnext-carina.onnx.*does not exist") as err:
        CNNExtinctionMap(source=object(), cache=False)
    # the message gives the recipe of the shipped model: the presets of its members
    load_preset = pytest.importorskip("cnnext.training.presets").load_preset
    import json
    from importlib import resources

    registry = json.loads((resources.files("cnnext") / "data" / "models.json").read_text())
    members = [m["preset"] for m in registry["cnnext-carina.onnx"]["members"]]
    assert len(members) >= 2
    for name in members:
        assert f"--preset {name} " in str(err.value)
        assert load_preset(name).name == name


def test_repr_and_profile_map(m):
    assert "from a map file" in repr(m)
    assert len(m.profile_map) == len(PM)
    assert m.model is None and m.law == LAW


@pytest.mark.parametrize("nodes", [[0.3, 1.0, 2.5, 2.6], [0.1, 0.2, 0.3, 0.4],
                                   [0.25, 0.5, 0.75, 1.0]])
def test_interpolation_uneven_and_even_nodes(nodes):
    cell = lonlat_to_cells(280.0, 0.0, ORDER)
    prof = np.array([0.2, 1.0, 1.1, 3.0])
    pm = ProfileMap(cells=[cell], order=ORDER, distances=nodes, av=[prof],
                    sigma=[0.1 * prof], n_stars=[100])
    m = CNNExtinctionMap(map_fname=pm)
    d = np.r_[np.random.default_rng(0).uniform(0.0, 3.0, 300), 0.0, nodes,
              np.array(nodes) * (1 + 1e-15)]
    got = m.query_gal(np.full(d.size, 280.0), np.zeros(d.size), d)
    want = np.interp(d, np.r_[0.0, nodes], np.r_[0.0, prof].astype(np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_zero_distance_in_other_frames(m):
    # astropy loses the direction of a point at zero distance when transforming
    c = SkyCoord([280.2, 280.2] * u.deg, [0.3, 0.3] * u.deg, distance=[0.0, 1.0] * u.kpc,
                 frame="galactic")
    for frame in ("icrs", "fk5"):
        # built from the direction: a transformed zero-distance point has none left
        direction = SkyCoord(c.l, c.b, frame="galactic").transform_to(frame)
        sph = direction.represent_as(UnitSphericalRepresentation)
        other = SkyCoord(sph.lon, sph.lat, distance=c.distance, frame=frame)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out, flags = m.query(other, return_flags=True)
        np.testing.assert_allclose(out, m.query(c), rtol=1e-9)
        assert out[0] == 0.0 and flags["n_stars"][0] == flags["n_stars"][1]


@pytest.mark.parametrize("order", [3, 12])
def test_cell_lookup_any_order(order):
    # order 12 with cells far apart: the binary-search lookup instead of the dense table
    pos = [(280.0, 0.0), (10.0, 60.0), (200.0, -70.0)]
    cells = [int(lonlat_to_cells(l, b, order)) for l, b in pos]
    pm = ProfileMap(cells=cells, order=order, distances=[1.0, 2.0],
                    av=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], sigma=np.ones((3, 2)),
                    n_stars=[100] * 3)
    m = CNNExtinctionMap(map_fname=pm)
    assert (m._store._state[1] is None) == (order == 12)  # dense index unless too sparse
    c = SkyCoord([p[0] for p in pos] * u.deg, [p[1] for p in pos] * u.deg,
                 distance=[2.0] * 3 * u.kpc, frame="galactic")
    np.testing.assert_allclose(m(c), [2.0, 4.0, 6.0])
    with pytest.warns(CnnextWarning, match="footprint"):
        assert np.isnan(m.query_gal(100.0, 5.0, 1.0))
