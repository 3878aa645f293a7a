# Licensed under a 3-clause BSD style license - see LICENSE.rst
import astropy.units as u
import numpy as np
import pytest

from cnnext.synthetic import GalaxyModel, distance_modulus, load_parsec_grid
from cnnext.synthetic.imf import PowerLawIMF


def test_grid_is_cleaned():
    grid = load_parsec_grid()
    c = grid.columns
    assert len(grid) > 130_000
    assert not np.any(c["label"] == 9)
    for band in ("J", "H", "Ks"):
        assert np.all(np.abs(c[band]) < 90)
    same = grid.iso[1:] == grid.iso[:-1]
    assert np.all(np.diff(c["int_imf"])[same] >= 0)
    assert load_parsec_grid() is grid  # cached per process


def test_imf_integrals_match_quadrature():
    from scipy.integrate import quad

    imf = PowerLawIMF([1.6, 3.0], [1.0])

    def phi(m):
        return m ** -1.6 if m < 1 else m ** -3.0

    assert imf.number(0.3, 4.0) == pytest.approx(quad(phi, 0.3, 4.0, points=[1.0])[0])
    assert imf.mass(0.3, 4.0) == pytest.approx(quad(lambda m: m * phi(m), 0.3, 4.0,
                                                    points=[1.0])[0])
    with pytest.raises(ValueError, match="breaks"):
        PowerLawIMF([1.0, 2.0], [])


def test_local_normalisation_matches_besancon(galaxy):
    # Robin et al. (2003): local density of stars with M_V < 8 (pc^-3)
    dens = galaxy.local_number_density(band="V", limit=8.0)
    thin = sum(v for k, v in dens.items() if k.startswith("thin"))
    assert thin == pytest.approx(1.54e-2, rel=0.10)
    assert dens["thick"] == pytest.approx(1.03e-3, rel=0.10)
    assert dens["halo"] == pytest.approx(7.94e-6, rel=0.12)


def test_density_laws_normalised_at_sun(galaxy):
    for pop in galaxy.populations:
        if pop.name != "bulge":
            assert galaxy.density(pop.name, galaxy.R0, galaxy.z_sun) == pytest.approx(1.0)
    # truncation of the thin disc, not of the thick disc
    assert galaxy.density("thin3", 14.5, 0.0) == 0.0
    assert galaxy.density("thick", 14.5, 0.0) > 0.0
    # the warp lifts the disc mid-plane towards l = 90 deg (phi > 0)
    up = galaxy.density("thin5", 13.0, 0.5, np.pi / 2)
    down = galaxy.density("thin5", 13.0, -0.5, np.pi / 2)
    assert up > down
    with pytest.raises(ValueError, match="unknown population"):
        galaxy.density("disc", 8.0, 0.0)


def test_sample_schema_limits_and_reproducibility(galaxy, cell_stars):
    s = cell_stars
    for name in ("l", "b", "distance", "M_J", "M_H", "M_Ks", "J", "H", "Ks",
                 "population", "age", "mh", "mass", "phase"):
        assert name in s.colnames
    assert 10_000 < len(s) < 25_000
    assert np.all(s["Ks"] <= 15.5)
    assert np.all(np.diff(s["distance"]) >= 0)
    np.testing.assert_allclose(s["Ks"] - s["M_Ks"], distance_modulus(s["distance"]))
    assert set(np.unique(s["population"])) <= set(range(1, 11))
    assert s["distance"].unit == u.kpc
    again = galaxy.sample(280.0, 0.0, 0.2098, faint_limit=15.5, seed=42)
    np.testing.assert_array_equal(again["Ks"], s["Ks"])
    other = galaxy.sample(280.0, 0.0, 0.2098, faint_limit=15.5, seed=43)
    assert len(other) != len(s) or not np.array_equal(other["Ks"], s["Ks"])
    # positions inside the circular cap of that area
    radius = np.degrees(np.arccos(1 - 0.2098 * (np.pi / 180) ** 2 / (2 * np.pi)))
    dl = (s["l"] - 280.0 + 180) % 360 - 180
    assert np.all(np.hypot(dl, s["b"]) <= radius * 1.001)


def test_faint_limit_does_not_bias_counts(galaxy):
    # drawing to Ks = 14 gives as many Ks <= 14 stars as drawing deeper and cutting
    shallow = [len(galaxy.sample(280.0, 0.0, 0.5, faint_limit=14.0, seed=s)) for s in (1, 2)]
    deep = [np.count_nonzero(galaxy.sample(280.0, 0.0, 0.5, faint_limit=15.5,
                                           seed=s)["Ks"] <= 14.0) for s in (3, 4)]
    assert np.mean(shallow) == pytest.approx(np.mean(deep), rel=0.03)
    # and the expected counts bound the draws from above (shells' near edges)
    lam, edges = galaxy.expected_counts(280.0, 0.0, 0.5, faint_limit=14.0)
    assert np.mean(shallow) == pytest.approx(lam.sum(), rel=0.1)
    assert edges[0] == 0 and edges[-1] == 25.0


def test_max_distance_and_band(galaxy):
    s = galaxy.sample(280.0, 0.0, 0.1, max_distance=2.0, faint_limit=16.0, band="J", seed=3)
    assert s["distance"].max() <= 2.0
    assert np.all(s["J"] <= 16.0)
    with pytest.raises(ValueError, match="band"):
        galaxy.sample(280.0, 0.0, 0.1, band="V")
    with pytest.raises(ValueError, match="solid_angle"):
        galaxy.sample(280.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="l must be one"):
        galaxy.sample([280.0, 281.0], 0.0, 0.1)
    with pytest.raises(ValueError, match="b must be within"):
        galaxy.sample(280.0, 95.0, 0.1)
    a = galaxy.sample(-80.0 * u.deg, 0.0, 0.05, faint_limit=12, seed=2)
    b = galaxy.sample(280.0, 0.0, 0.05, faint_limit=12, seed=2)
    np.testing.assert_array_equal(a["Ks"], b["Ks"])
    assert len(galaxy.sample(280.0, 0.0, 0.1 * u.deg ** 2, faint_limit=12, seed=1)) > 0


def test_no_isochrone_striping(cell_stars):
    s = cell_stars
    # ages and metallicities are continuous, not stuck on the 0.12 / 0.25 dex grid
    grid = load_parsec_grid()
    on_mh = np.isclose(s["mh"][:, None], grid.mh_values[None, :], atol=1e-6).any(axis=1)
    assert on_mh.mean() < 0.1
    old = s[s["population"] == 7]
    logage = np.log10(old["age"]) + 9
    hist, _ = np.histogram(logage, bins=12, range=(9.85, 10.0))
    assert np.all(hist > 0.3 * hist.mean())
    # red giants of the thin disc fill J-Ks continuously
    giants = s[(s["phase"] == 3) & (s["M_Ks"] < -1)]
    hist, _ = np.histogram(giants["M_J"] - giants["M_Ks"], bins=10, range=(0.65, 0.95))
    assert np.all(hist > 0)


def test_overrides_and_metadata():
    model = GalaxyModel(bulge=False, population_overrides={"thick": {"rho0": 2.68e-3}})
    assert "bulge" not in [p.name for p in model.populations]
    meta = model.to_dict()
    thick = [p for p in meta["populations"] if p["name"] == "thick"][0]
    assert thick["rho0"] == 2.68e-3
    import json

    json.dumps(meta)
    with pytest.raises(ValueError, match="unknown population"):
        GalaxyModel(population_overrides={"disc": {"rho0": 1.0}})
    with pytest.raises(ValueError, match="no parameter"):
        GalaxyModel(population_overrides={"thick": {"density": 1.0}})


def test_thick_disc_override_changes_counts(galaxy):
    doubled = GalaxyModel(population_overrides={"thick": {"rho0": 2 * 1.34e-3}})
    n1 = galaxy.expected_counts(0.0, 90.0, 10.0, faint_limit=14.0)[0].sum()
    n2 = doubled.expected_counts(0.0, 90.0, 10.0, faint_limit=14.0)[0].sum()
    assert n2 > 1.2 * n1


def test_isochrone_disk_cache_roundtrip(tmp_path):
    from cnnext.synthetic import isochrones

    cols = {k: np.arange(5, dtype=float) + i for i, k in enumerate(isochrones._COLUMNS.values())}
    cache = tmp_path / "sub" / "grid.npz"
    isochrones._write_cache(cache, cols)
    back = isochrones._read_cache(cache)
    assert set(back) == set(cols)
    for k in cols:
        np.testing.assert_array_equal(back[k], cols[k])
    cache.write_bytes(b"not an npz file")
    assert isochrones._read_cache(cache) is None  # a broken cache is ignored
    assert not list(cache.parent.glob("*.tmp"))


def test_pickle_is_small_and_equivalent(galaxy):
    import pickle

    blob = pickle.dumps(galaxy)
    assert len(blob) < 20_000  # no grid, no tables: cheap to send to worker processes
    again = pickle.loads(blob)
    a = galaxy.sample(280.0, 0.0, 0.01, seed=5)
    b = again.sample(280.0, 0.0, 0.01, seed=5)
    np.testing.assert_array_equal(a["Ks"], b["Ks"])


def test_empty_sample(galaxy):
    from cnnext.synthetic import observe, observe_many, random_profiles

    s = galaxy.sample(0.0, 90.0, 1e-4, faint_limit=8.0, seed=1)
    assert len(s) == 0 and "Ks" in s.colnames
    assert len(observe(s, None, seed=1)) == 0
    cmds, n = observe_many(s, random_profiles(2, seed=1), seed=1)
    assert cmds.shape == (2, 2, 64, 64) and not cmds.any() and n.tolist() == [0, 0]


def test_shift_colours(cell_stars):
    from cnnext.synthetic import shift_colours

    before = cell_stars.copy()
    out = shift_colours(cell_stars, 0.12, -0.04)
    # the input is untouched; Ks, positions and distances are kept
    for name in cell_stars.colnames:
        np.testing.assert_array_equal(cell_stars[name], before[name])
    for name in ("Ks", "M_Ks", "distance", "l", "b"):
        np.testing.assert_array_equal(out[name], cell_stars[name])
    for prefix in ("", "M_"):
        j, h, k = (out[prefix + b] - cell_stars[prefix + b] for b in ("J", "H", "Ks"))
        np.testing.assert_allclose(j - h, 0.12, atol=1e-5)
        np.testing.assert_allclose(h - k, -0.04, atol=1e-5)
    with pytest.raises(ValueError, match="d_hks must be a finite"):
        shift_colours(cell_stars, 0.1, np.nan)


def test_unresolved_galaxies_counts_and_colours():
    from cnnext.synthetic import galaxy_counts, unresolved_galaxies

    # published K counts: ~125 deg^-2 mag^-1 at K = 14, slope 0.6 then 0.45
    assert abs(galaxy_counts(14.0) - 125.0) < 1
    np.testing.assert_allclose(np.log10(galaxy_counts(15.0) / galaxy_counts(14.0)), 0.6)
    np.testing.assert_allclose(np.log10(galaxy_counts(17.0) / galaxy_counts(16.0)), 0.45)
    g = unresolved_galaxies(158.0, -20.0, 4.0, faint_limit=16.0, seed=2)
    # resolved (Extended Source Catalog) below Ks 13: none in the point sources
    assert g["Ks"].min() >= 13.0 and g["Ks"].max() <= 16.0
    expected = 4.0 * np.trapezoid(
        galaxy_counts(np.linspace(13, 16, 301)) * np.clip(
            (np.linspace(13, 16, 301) - 13.0) / 1.5, 0, 1), np.linspace(13, 16, 301))
    assert abs(len(g) - expected) < 4 * np.sqrt(expected)
    faint = g["Ks"] > 14.5
    assert 1.0 < np.median((g["J"] - g["Ks"])[faint]) < 1.7
    assert np.all(g["distance"] > 1e3)


def test_empirical_dwarf_colours(galaxy):
    from cnnext.synthetic import dwarf_sequence_colours, empirical_dwarf_offsets

    emp = GalaxyModel(dwarf_colours="empirical")
    # the corrected dwarfs have the empirical sequence's colours
    table = dwarf_sequence_colours(emp)
    assert np.all(np.abs(table["d_JH"]) < 0.01) and np.all(np.abs(table["d_HKs"]) < 0.01)
    # evolved stars keep the isochrones' colours
    d_j, d_h = empirical_dwarf_offsets(emp.grid)
    evolved = emp.grid.columns["label"] >= 2
    assert not d_j[evolved].any() and not d_h[evolved].any()
    assert np.abs(d_h[~evolved]).max() < 0.05
    # the same seed draws the same stars (Ks is not corrected), with other J and H
    a = galaxy.sample(158.4, -20.5, 0.3, faint_limit=15.0, seed=4)
    b = emp.sample(158.4, -20.5, 0.3, faint_limit=15.0, seed=4)
    np.testing.assert_array_equal(a["Ks"], b["Ks"])
    np.testing.assert_array_equal(a["distance"], b["distance"])
    dwarfs = np.asarray(a["phase"]) <= 1
    assert np.all(a["J"][~dwarfs] == b["J"][~dwarfs])
    # PARSEC's F-K dwarfs are too blue in H-Ks: the correction reddens them
    fgk = dwarfs & (np.asarray(a["M_Ks"]) < 4.5)
    assert np.median((b["H"] - b["Ks"] - a["H"] + a["Ks"])[fgk]) > 0.015
    # recorded in the metadata only when used
    assert "dwarf_colours" not in galaxy.to_dict()
    assert emp.to_dict()["dwarf_colours"] == "empirical"
    with pytest.raises(ValueError, match="dwarf_colours must be"):
        GalaxyModel(dwarf_colours="kurucz")
