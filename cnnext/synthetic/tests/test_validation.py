# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.synthetic import (
    GalaxyModel,
    density_zone_counts,
    dwarf_sequence_colours,
    local_class_densities,
    reference_field_counts,
)


def test_reference_fields_within_30_percent(galaxy):
    table = reference_field_counts(galaxy, seed=1)
    assert len(table) == 9
    assert np.all(np.abs(table["ratio"] - 1) <= 0.30), table


def test_density_zones(galaxy):
    # in the plane of the mapped region and in the zones away from it
    sightlines = ((280.0, 0.0), (300.0, -2.0), (290.0, 1.0), (280.0, 7.0), (290.0, -8.0),
                  (280.0, 15.0), (280.0, -20.0), (280.0, 40.0), (280.0, 85.0))
    table = density_zone_counts(galaxy, seed=2, sightlines=sightlines)
    assert np.all(table["inside"]), table
    # the Besancon model's own number at (280, 0) with 0.7 mag/kpc: 1.7e4 deg^-2
    assert abs(table["log_n"][0] - np.log10(1.7e4)) < 0.06


def test_local_class_densities(galaxy):
    table = local_class_densities(galaxy)
    assert table["class"].tolist() == ["A", "F", "G", "K", "M", "K-M"]
    # the Besancon-2003 mix: K dwarfs and giants as counted around the Sun,
    # every class within a factor of two of the census
    k = table[table["class"] == "K"][0]
    assert abs(k["ratio"] - 1) < 0.1
    assert np.all((table["ratio"] > 0.5) & (table["ratio"] < 2.0)), table
    # the per-segment densities add up to the model's own count of all its stars
    local = galaxy.local_stars()
    expected = galaxy.local_number_density(band="Ks", limit=50.0)
    for name in ("thin1", "thick", "halo"):
        own = np.asarray(local["population"]) == name
        assert np.asarray(local["density"])[own].sum() == pytest.approx(expected[name],
                                                                        rel=1e-9)
    # a thick disc ten times denser adds old stars, not A stars
    dense = local_class_densities(GalaxyModel(population_overrides={
        "thick": {"rho0": 1.34e-2}}))
    assert dense["model"][dense["class"] == "G"][0] > table["model"][table["class"] == "G"][0]
    assert dense["model"][0] == pytest.approx(table["model"][0], rel=1e-3)


def test_dwarf_sequence_colours(galaxy):
    table = dwarf_sequence_colours(galaxy)
    assert len(table) == 10 and table["type"][0] == "F5V"
    np.testing.assert_allclose(table["d_JH"], table["model_JH"] - table["JH"])
    # PARSEC's dwarfs have the empirical colours to a few hundredths of a mag ...
    assert np.all(np.abs(table["d_JH"]) < 0.08) and np.all(np.abs(table["d_HKs"]) < 0.05)
    # ... and the sequence's shape: J-H peaks among the late K / early M dwarfs,
    # H-Ks keeps growing to the M dwarfs
    assert table["type"][np.argmax(table["model_JH"])] in ("K7V", "M0V")
    assert np.all(np.diff(table["model_HKs"]) > 0)
