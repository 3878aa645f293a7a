# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

import numpy as np
import pytest
from astropy.table import Table

from cnnext import CMDSpec, ExtinctionLaw, build_cmds
from cnnext.photometry.base import validate_star_table
from cnnext.quality import QualityCuts
from cnnext.synthetic import PhotometricModel, observe, observe_many, random_profiles


def test_observe_schema_and_flags(cell_stars):
    obs = observe(cell_stars, 3.0, seed=1)
    validate_star_table(obs)
    assert obs["ph_qual"].dtype.kind == "U"
    assert 0.5 * len(cell_stars) < len(obs) <= len(cell_stars)
    letters = set("".join(obs["ph_qual"]))
    assert letters <= set("ABCDU") and {"A", "U"} <= letters
    assert set("".join(obs["cc_flg"])) <= set("0cdps")
    upper = np.array([q[2] == "U" for q in obs["ph_qual"]])
    assert np.all(np.isnan(obs["e_Ks"][upper])) and np.all(np.isfinite(obs["e_Ks"][~upper]))
    # A-quality magnitudes have S/N > 10: brighter than m10
    a_ks = np.array([q[2] == "A" for q in obs["ph_qual"]])
    assert obs["Ks"][a_ks].max() < 14.3 + 0.5  # noise of ~0.1 mag near m10


def test_reddening_and_noise(cell_stars):
    law = ExtinctionLaw("G23")
    bright = cell_stars[cell_stars["Ks"] < 11]
    obs = observe(bright, 5.0, law=law, seed=2, model=PhotometricModel(flag_rate=0.0))
    assert len(obs) == len(bright)
    diff = obs["Ks"] - bright["Ks"]
    assert np.mean(diff) == pytest.approx(5.0 * law.coefficients["Ks"], abs=0.01)
    assert 0.02 < np.std(diff) < 0.06
    colour = (obs["J"] - obs["Ks"]) - (bright["J"] - bright["Ks"])
    assert np.median(colour) == pytest.approx(
        5.0 * (law.coefficients["J"] - law.coefficients["Ks"]), abs=0.02)


def test_completeness_follows_logistic():
    pm = PhotometricModel(flag_rate=0.0)
    n = 40_000
    stars = Table({"l": np.zeros(n), "b": np.zeros(n), "distance": np.ones(n),
                   "J": np.full(n, 25.0), "H": np.full(n, 25.0),
                   "Ks": np.full(n, pm.m50("Ks"))})
    obs = observe(stars, None, seed=3, model=pm)
    assert len(obs) / n == pytest.approx(0.5, abs=0.01)
    stars["Ks"] = pm.m50("Ks") + pm.width["Ks"] * np.log(3.0)  # p = 1/4
    assert len(observe(stars, None, seed=4, model=pm)) / n == pytest.approx(0.25, abs=0.01)


def test_observe_many_equals_observe_then_build_cmds(cell_stars):
    prof = random_profiles(3, seed=5)
    for i in range(3):
        obs = observe(cell_stars, prof[i], seed=10 + i)
        ref, n_ref = build_cmds(obs, np.zeros(len(obs), dtype=np.int64), 1)
        got, n_got = observe_many(cell_stars, prof[i], seed=10 + i)
        np.testing.assert_array_equal(got, ref)
        assert n_got[0] == n_ref[0] > 1000


@pytest.mark.parametrize("cuts", [QualityCuts(ph_qual="AB"),
                                  QualityCuts(cc_flg="0cd"),
                                  QualityCuts(max_error=0.05),
                                  QualityCuts(ph_qual="ABCU", keep_upper_limits=True)])
def test_observe_many_applies_any_quality_cuts(cell_stars, cuts):
    spec = CMDSpec(quality=cuts)
    obs = observe(cell_stars, 4.0, seed=7)
    ref, _ = build_cmds(obs, np.zeros(len(obs), dtype=np.int64), 1, spec)
    got, _ = observe_many(cell_stars, np.full((1, len(cell_stars)), 4.0), spec=spec, seed=7)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("cuts", [QualityCuts(),
                                  QualityCuts(ph_qual="ABCU", keep_upper_limits=True)])
def test_observe_many_colour_colour_channel(cell_stars, cuts):
    # a J-H vs H-Ks channel needs all three bands; the fast path must agree
    from cnnext.cmds import CMDChannel
    spec = CMDSpec(channels=(CMDChannel("Ks", ("J", "Ks"), (5.0, 16.0), (-0.5, 6.5)),
                             CMDChannel(("J", "H"), ("H", "Ks"), (-0.2, 4.0), (-0.5, 3.0))),
                   quality=cuts)
    obs = observe(cell_stars, 4.0, seed=7)
    ref, _ = build_cmds(obs, np.zeros(len(obs), dtype=np.int64), 1, spec)
    got, _ = observe_many(cell_stars, np.full((1, len(cell_stars)), 4.0), spec=spec, seed=7)
    np.testing.assert_array_equal(got, ref)
    assert got[0, 1].sum() > 0


def test_observe_many_batches(cell_stars):
    prof = random_profiles(10, seed=8)
    cmds, n = observe_many(cell_stars, prof, seed=9, chunk_stars=50_000)
    assert cmds.shape == (10, 2, 64, 64) and cmds.dtype == np.float32
    # more extinction, fewer stars above the limits
    order = np.argsort(prof.total(5.0))
    assert n[order[0]] > n[order[-1]]
    again, _ = observe_many(cell_stars, prof, seed=9, chunk_stars=50_000)
    np.testing.assert_array_equal(again, cmds)
    empty, n0 = observe_many(cell_stars, np.zeros((0, len(cell_stars))), seed=1)
    assert empty.shape == (0, 2, 64, 64) and len(n0) == 0


def test_photometric_model_metadata_and_errors():
    pm = PhotometricModel(m10={"J": 16.0, "H": 15.2, "Ks": 14.5}, width=0.3)
    d = pm.to_dict()
    json.dumps(d)
    assert PhotometricModel.from_dict(d) == pm
    assert pm.sigma("Ks", 14.5) == pytest.approx(
        np.sqrt(0.10857 ** 2 + 0.03 ** 2 + 0.025 ** 2))
    assert pm.sigma("Ks", 7.0) > pm.sigma("Ks", 9.0)  # saturated: short exposures
    with pytest.raises(ValueError, match="lacks bands"):
        PhotometricModel(m10={"J": 15.8})
    with pytest.raises(ValueError, match="flag_rate"):
        PhotometricModel(flag_rate=2.0)


def test_bad_inputs(cell_stars):
    with pytest.raises(ValueError, match="one profile"):
        observe(cell_stars, random_profiles(2, seed=1))
    with pytest.raises(ValueError, match="A_V per star"):
        observe(cell_stars, np.zeros(3))
    with pytest.raises(KeyError, match="apparent magnitude"):
        observe(Table({"l": [1.0], "b": [0.0], "J": [1.0]}), 1.0)
    with pytest.raises(TypeError, match="law"):
        observe(cell_stars, 1.0, law=3.1)


def test_observe_many_descriptors_match_observe_tables(cell_stars):
    # the descriptors of observe_many's examples are those the estimator gives on
    # the same observation written out as a star table
    from cnnext.observation import estimate_observation

    av = np.full((3, len(cell_stars)), 2.0)
    _, _, obs = observe_many(cell_stars, av, seed=5, descriptors=True)
    assert obs.shape == (3, 6) and np.all(np.isfinite(obs))
    table = observe(cell_stars, 2.0, seed=6)
    ref, _ = estimate_observation(table, np.zeros(len(table), int), 1)
    np.testing.assert_allclose(obs, np.broadcast_to(ref, obs.shape), atol=0.15)


def test_patchy_screen_keeps_the_mean_and_spreads_the_colours(cell_stars):
    from cnnext.synthetic import patchy_extinction

    rng = np.random.default_rng(1)
    av = np.full((2, 200_000), 3.0)
    out = patchy_extinction(av.copy(), np.array([0.0, 0.8]), rng)
    assert np.all(out[0] == 3.0)
    assert abs(out[1].mean() - 3.0) < 0.03
    assert abs(np.std(np.log(out[1])) - 0.8) < 0.01


def test_patchy_screen_with_dense_tail_keeps_the_mean():
    from cnnext.synthetic import DENSE_TAIL_RANGE, patchy_extinction

    rng = np.random.default_rng(11)
    av = np.full((4, 300_000), 3.0)
    out = patchy_extinction(av, np.array([0.0, 0.5, 0.5, 0.0]), rng,
                            dense_fraction=np.array([0.0, 0.0, 0.15, 0.15]),
                            dense_index=np.array([3.0, 3.0, 2.0, 4.0]))
    assert out is av
    # the cell's mean profile is the target: unchanged by either part
    np.testing.assert_allclose(out.mean(axis=1), 3.0, rtol=0.02)
    assert np.all(out[0] == 3.0)
    # a red tail of stars far behind the mean column only with dense structure
    far = np.mean(out > 4 * 3.0, axis=1)
    assert far[1] < 0.002 and far[2] > 0.02 and far[3] > 0.005
    # a power law with index 2 has a heavier tail than one with index 4
    assert np.mean(out[2] > 10 * 3.0) > np.mean(out[3] > 10 * 3.0)
    # nothing beyond the tail's upper end (times the normalisation <= 1)
    assert out.max() <= DENSE_TAIL_RANGE[1] * 3.0


def test_patchy_screen_dense_arguments_are_checked():
    from cnnext.synthetic import patchy_extinction

    av = np.ones((1, 10))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dense_fraction"):
        patchy_extinction(av, [0.5], rng, dense_fraction=[1.0])
    with pytest.raises(ValueError, match="dense_index"):
        patchy_extinction(av, [0.5], rng, dense_fraction=[0.1], dense_index=1.0)
