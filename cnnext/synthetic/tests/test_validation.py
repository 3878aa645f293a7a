# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np

from cnnext.synthetic import density_zone_counts, reference_field_counts


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
