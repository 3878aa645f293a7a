# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of cnnext.compare with dustmaps' own query classes on tiny files in their formats."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from cnnext import ExtinctionLaw
from cnnext.compare import (
    KNOWN_UNITS,
    MapUnits,
    compare_profiles,
    compare_slice,
    error_metrics,
    query_maps,
)
from cnnext.healpix import lonlat_to_cells
from cnnext.profiles import ProfileMap
from cnnext.testing.dustmaps import (
    MARSHALL_DISTANCES,
    write_bayestar_h5,
    write_edenhofer_fits,
    write_marshall_h5,
)

with warnings.catch_warnings():
    # dustmaps warns at import when ~/.dustmapsrc is missing
    warnings.simplefilter("ignore")
    from dustmaps.bayestar import BayestarQuery
    from dustmaps.edenhofer2023 import Edenhofer2023Query
    from dustmaps.map_base import DustMap
    from dustmaps.marshall import MarshallQuery

LAW = ExtinctionLaw("G23", 3.1)
KS = LAW.coefficients["Ks"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dustmaps")
    return {"marshall": write_marshall_h5(tmp / "marshall.h5"),
            "bayestar": write_bayestar_h5(tmp / "bayestar.h5"),
            "edenhofer": write_edenhofer_fits(tmp / "edenhofer.fits")}


@pytest.fixture(scope="module")
def marshall(files):
    return MarshallQuery(files["marshall"])


@pytest.fixture(scope="module")
def bayestar(files):
    return BayestarQuery(files["bayestar"])


@pytest.fixture(scope="module")
def edenhofer(files):
    return Edenhofer2023Query(files["edenhofer"], integrated=True)


def _cnn_map(l_values=(285.0,), rate=0.8):
    from cnnext import CNNExtinctionMap

    d = np.round(np.arange(1, 101) * 0.1, 10)
    cells = np.unique(lonlat_to_cells(np.asarray(l_values), np.zeros(len(l_values)), 7))
    pm = ProfileMap(cells=cells, order=7, distances=d,
                    av=np.outer(np.ones(cells.size), rate * d),
                    sigma=np.full((cells.size, d.size), 0.2), n_stars=np.full(cells.size, 500),
                    meta={"extinction_law": LAW.to_dict()})
    return CNNExtinctionMap(map_fname=pm)


def _coords(l, b, d):
    return SkyCoord(l=np.atleast_1d(l) * u.deg, b=np.atleast_1d(b) * u.deg,
                    distance=np.atleast_1d(d) * u.kpc, frame="galactic")


def test_marshall_native_and_converted(marshall):
    c = _coords([285.0, 285.0, 285.0, 120.0], [0.1, 0.1, 0.1, 0.0], [2.0, 2.25, 20.0, 2.0])
    t = query_maps({"m": marshall}, c, quantity="A_Ks")
    # A_Ks = 0.1 d at the nodes, linear between them, constant beyond the last node
    np.testing.assert_allclose(t["m"].to_value(u.mag)[:3], [0.2, 0.225, 0.8], rtol=1e-6)
    assert np.isnan(t["m"][3])  # l = 120 deg is outside Marshall's |l| <= 100 deg
    np.testing.assert_allclose(t["m_sigma"].to_value(u.mag)[:3], 0.05, rtol=1e-6)
    assert t.meta["quantity"] == "A_Ks" and t.meta["factors"]["m"] == 1.0
    tv = query_maps({"m": marshall}, c, quantity="A_V", law=LAW)
    np.testing.assert_allclose(tv["m"].to_value(u.mag)[:3], np.array([0.2, 0.225, 0.8]) / KS,
                               rtol=1e-6)
    assert tv.meta["factors"]["m"] == pytest.approx(1 / KS)
    assert "G23" in tv.meta["conversions"]["m"] and "Marshall" in tv.meta["conversions"]["m"]
    np.testing.assert_allclose(tv["distance"].to_value(u.kpc), [2.0, 2.25, 20.0, 2.0])
    assert tv["l"].unit == u.deg and tv["m"].unit == u.mag


def test_bayestar_conversions_and_sigma(bayestar):
    # distance modulus 10 (1 kpc) and 12.5 (~3.16 kpc) are nodes of the tiny map
    d = 10.0 ** (0.2 * np.array([10.0, 12.5]) - 2.0)
    c = _coords([285.0, 285.0], [0.0, 0.0], d)
    base = 0.3 * d
    for quantity, factor in (("A_V", 2.742), ("E(B-V)", 0.884), ("A_Ks", 0.3026),
                             ("A_J", 0.7927), ("A_H", 0.4690)):
        t = query_maps([bayestar], c, quantity=quantity)
        np.testing.assert_allclose(t["bayestar2019"].to_value(u.mag), factor * base,
                                   rtol=1e-5)
        # the 15.865 and 84.135 percentiles of 5 samples at z = -1, -0.5, ..., 1 lie at
        # z = -+0.68270 (linear interpolation), scaled by spread = 0.1
        np.testing.assert_allclose(t["bayestar2019_sigma"].to_value(u.mag),
                                   factor * base * 0.1 * 0.6827, rtol=1e-3)
        assert f"{factor:g}" in t.meta["conversions"]["bayestar2019"]
    # modes per map: "best" is the best fit, equal to the mean of the tiny map
    t = query_maps({"b": bayestar}, c, mode={"b": "best"})
    np.testing.assert_allclose(t["b"].to_value(u.mag), 2.742 * base, rtol=1e-5)
    assert t.meta["mode"] == {"b": "best"}
    with pytest.raises(ValueError, match="not compared"):
        query_maps({"b": bayestar}, c, mode={"x": "best"})
    # out of the tiny map's footprint: NaN without warnings (filterwarnings = error)
    t = query_maps([bayestar], _coords([100.0], [40.0], [1.0]))
    assert np.isnan(t["bayestar2019"][0]) and np.isnan(t["bayestar2019_sigma"][0])


def test_bayestar_factor_is_not_double_counted():
    # one Bayestar19 unit is one E(B-V)_SFD: A_V = 2.742, and 3.1 x 0.884 agrees
    factor, _ = KNOWN_UNITS["bayestar2019"].factor("A_V", LAW)
    assert factor == 2.742
    assert factor == pytest.approx(3.1 * 0.884, rel=2e-3)
    assert 2.742 * 0.884 != pytest.approx(factor, rel=0.05)


def test_edenhofer_integrated(edenhofer, files):
    from astropy.io import fits

    with fits.open(files["edenhofer"]) as hdul:
        bounds = np.array(hdul[4].data["radial pixel boundaries"])
        centres = np.array(hdul[3].data["radial pixel centers"])
    k = np.array([5, 30])
    c = _coords([285.0, 285.0, 285.0], [0.0, 0.0, 0.0],
                np.append(centres[k] / 1000.0, 2.0))
    t = query_maps([edenhofer], c, quantity="A_V")
    expected = 1e-3 * (bounds[k + 1] - bounds[0])
    np.testing.assert_allclose(t["edenhofer2023"].to_value(u.mag)[:2], 2.8 * expected,
                               rtol=1e-6)
    assert np.isnan(t["edenhofer2023"][2])  # beyond 1.25 kpc
    assert np.all(np.isnan(t["edenhofer2023_sigma"]))  # no samples: no std when integrated
    tk = query_maps([edenhofer], c[:2], quantity="A_Ks", law=LAW)
    np.testing.assert_allclose(tk["edenhofer2023"].to_value(u.mag), 2.8 * KS * expected,
                               rtol=1e-6)
    # the density flavour is integrated by cnnext: density x distance from the first
    # bin boundary, exact at any distance for a constant density
    density = Edenhofer2023Query(files["edenhofer"], integrated=False)
    d = np.array([0.069, 0.1, 0.5, 1.0, 1.25])
    cd = _coords(np.full(d.size + 2, 285.0), np.zeros(d.size + 2),
                 np.concatenate([d, [0.05, 1.3]]))
    t = query_maps({"e": density, "e2": density}, cd, quantity="A_V")
    np.testing.assert_allclose(t["e"].to_value(u.mag)[:d.size],
                               2.8 * 1e-3 * (d * 1000.0 - bounds[0]), rtol=1e-9, atol=1e-12)
    assert np.isnan(t["e"][d.size]) and np.isnan(t["e"][d.size + 1])
    np.testing.assert_allclose(t["e2"].to_value(u.mag), t["e"].to_value(u.mag))


def test_cnnext_map_and_several_maps(marshall, bayestar):
    cnn = _cnn_map()
    c = _coords([285.0, 285.0], [0.0, 0.0], [1.0, 4.0])
    t = query_maps([cnn, marshall, bayestar, marshall], c, quantity="A_Ks")
    assert t.colnames == ["l", "b", "distance", "cnnext", "cnnext_sigma", "marshall2006",
                          "marshall2006_sigma", "bayestar2019", "bayestar2019_sigma",
                          "marshall2006_2", "marshall2006_2_sigma"]
    np.testing.assert_allclose(t["cnnext"].to_value(u.mag), 0.8 * KS * np.array([1, 4]),
                               rtol=1e-6)
    np.testing.assert_allclose(t["cnnext_sigma"].to_value(u.mag), 0.2 * KS, rtol=1e-6)
    np.testing.assert_allclose(t["marshall2006"].to_value(u.mag), [0.1, 0.4], rtol=1e-6)
    assert "own law" in t.meta["conversions"]["cnnext"]
    # the law used for the other maps defaults to the cnnext map's
    assert t.meta["law"] == LAW.to_dict()
    assert not any(np.isnan(t[c]).any() for c in t.colnames[3:])
    # a ProfileMap in memory is compared like its CNNExtinctionMap
    t2 = query_maps({"pm": cnn.profile_map}, c, quantity="A_Ks")
    np.testing.assert_allclose(t2["pm"].to_value(u.mag), t["cnnext"].to_value(u.mag))


def test_unknown_map_needs_units():
    class FlatMap(DustMap):
        def query(self, coords, **kwargs):
            return 0.5 * coords.distance.kpc

    c = _coords([10.0], [0.0], [2.0])
    with pytest.raises(ValueError, match="does not know the units"):
        query_maps([FlatMap()], c)
    t = query_maps({"flat": FlatMap()}, c, units={"flat": "E(B-V)"}, quantity="A_V",
                   law=LAW)
    assert t["flat"][0].to_value(u.mag) == pytest.approx(1.0 * 3.1)
    t = query_maps({"flat": FlatMap()}, c, quantity="A_V",
                   units={"flat": MapUnits("my unit", to_av=2.0, reference="me")})
    assert t["flat"][0].to_value(u.mag) == pytest.approx(2.0)
    assert t.meta["conversions"]["flat"] == "A_V = 2 x my unit [me]"


def test_bad_input(marshall):
    with pytest.raises(TypeError, match="SkyCoord"):
        query_maps([marshall], [1, 2, 3])
    with pytest.raises(ValueError, match="distances"):
        query_maps([marshall], SkyCoord(l=[1.0] * u.deg, b=[0] * u.deg, frame="galactic"))
    with pytest.raises(ValueError, match="quantity"):
        query_maps([marshall], _coords(1.0, 0.0, 1.0), quantity="A_R")
    with pytest.raises(TypeError, match="query"):
        query_maps([object()], _coords(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        query_maps({}, _coords(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="distances"):
        compare_profiles([marshall], (285.0, 0.0), distances=[-1.0, 2.0])


def test_shapes_and_frames(marshall):
    icrs = _coords([285.0, 286.0, 287.0, 288.0], [0.0] * 4, [1.0, 2.0, 3.0, 4.0]) \
        .icrs.reshape(2, 2)
    t = query_maps([marshall], icrs, quantity="A_Ks")
    assert len(t) == 4 and t.meta["shape"] == (2, 2)
    np.testing.assert_allclose(t["l"].to_value(u.deg), [285, 286, 287, 288], atol=1e-8)
    np.testing.assert_allclose(t["marshall2006"].to_value(u.mag), [0.1, 0.2, 0.3, 0.4],
                               rtol=1e-5)


def test_compare_profiles_and_slice(marshall, bayestar):
    cnn = _cnn_map(l_values=np.arange(284.0, 286.01, 0.25))
    prof = compare_profiles([cnn, marshall], SkyCoord(285 * u.deg, 0 * u.deg,
                                                      frame="galactic"),
                            quantity="A_Ks")
    assert len(prof) == 100 and prof.meta["kind"] == "profile"
    np.testing.assert_allclose(prof["marshall2006"].to_value(u.mag),
                               0.1 * np.minimum(prof["distance"].to_value(u.kpc), 8.0),
                               rtol=1e-5)
    prof2 = compare_profiles([marshall], (285.0, 0.0), distances=[1, 2] * u.kpc)
    assert prof2["distance"].to_value(u.kpc).tolist() == [1.0, 2.0]
    lons = np.arange(284.5, 285.6, 0.5)
    sl = compare_slice([cnn, marshall], lons, b=0.0, distances=MARSHALL_DISTANCES,
                       quantity="A_Ks")
    assert sl.meta["kind"] == "slice" and len(sl) == lons.size
    assert sl["cnnext"].shape == (lons.size, MARSHALL_DISTANCES.size)
    np.testing.assert_allclose(sl["marshall2006"].to_value(u.mag),
                               np.tile(0.1 * MARSHALL_DISTANCES, (lons.size, 1)), rtol=1e-5)
    np.testing.assert_allclose(sl.meta["distances"], MARSHALL_DISTANCES)


def test_error_metrics_numbers():
    d = np.array([1.0, 2.0, 4.0])
    truth = np.array([[0.05, 1.0, 2.0], [1.0, 2.0, 4.0], [2.0, 4.0, 8.0]])
    pred = truth + np.array([[0.1], [-0.3], [0.5]])
    sigma = np.full_like(truth, 0.2)
    pred[2, 2] = np.nan  # a missing prediction is left out at that distance only
    t = error_metrics(pred, sigma, truth, d, at=(1.0, 3.0, 4.0))
    assert t["n"].tolist() == [3, 2, 2]
    np.testing.assert_allclose(t["bias"].to_value(u.mag), [0.1, -0.1, -0.1])
    np.testing.assert_allclose(t["rms"].to_value(u.mag),
                               [np.sqrt((0.01 + 0.09 + 0.25) / 3), np.sqrt(0.05), np.sqrt(0.05)])
    # truth 0.05 < floor (0.1 mag) at 1 kpc: its error counts relative to 0.1 mag
    np.testing.assert_allclose(t["median_rel_err"], [np.median([1.0, 0.3, 0.25]),
                                              np.median([0.1 / 1.5, 0.3 / 3.0]),
                                              np.median([0.05, 0.075])])
    np.testing.assert_allclose(t["coverage68"], [1 / 3, 0.5, 0.5])
    np.testing.assert_allclose(t["truth_median"].to_value(u.mag), [1.0, 2.25, 3.0])
    empty = error_metrics(np.full((2, 3), np.nan), sigma[:2], truth[:2], d, at=(2.0,))
    assert empty["n"][0] == 0
    assert np.isnan(empty["bias"][0]) and np.isnan(empty["median_rel_err"][0])


def test_error_metrics_nodes_and_range():
    d = np.array([1.0, 2.0, 4.0])
    truth = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 4.0]])
    t = error_metrics(truth + 0.05, np.full_like(truth, 0.1), truth, d, at=None)
    np.testing.assert_allclose(t["distance"].to_value(u.kpc), d)
    # the first sightline has no dust at 1 kpc: its 0.05 mag error counts against 0.1 mag
    np.testing.assert_allclose(t["median_rel_err"], [np.median([0.5, 0.05]),
                                                     np.median([0.05, 0.025]),
                                                     np.median([0.025, 0.0125])])
    assert t.meta["rel_err_floor"] == 0.1
    with pytest.raises(ValueError, match="at: distances"):
        error_metrics(truth, truth, truth, d, at=(5.0,))
    with pytest.raises(ValueError, match="must all be"):
        error_metrics(truth[:, :2], truth, truth, d)
