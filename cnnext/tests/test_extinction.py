# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.extinction import ExtinctionLaw


@pytest.mark.parametrize("name, aj_aks, ah_aks, aks_av", [
    ("G23", 2.571, 1.559, 0.107),
    ("CCM89", 2.458, 1.524, 0.117),
    ("F19", 2.464, 1.551, 0.118),
    ("D22", 2.703, 1.593, 0.096),
])
def test_ratios_match_method_table(name, aj_aks, ah_aks, aks_av):
    c = ExtinctionLaw(name, 3.1).coefficients
    assert c["J"] / c["Ks"] == pytest.approx(aj_aks, abs=0.002)
    assert c["H"] / c["Ks"] == pytest.approx(ah_aks, abs=0.002)
    assert c["Ks"] == pytest.approx(aks_av, abs=0.0006)


def test_convert_and_roundtrip():
    law = ExtinctionLaw("G23", 3.1)
    av = np.array([0.0, 1.0, 10.0])
    np.testing.assert_allclose(law.convert(av, "V"), av)
    np.testing.assert_allclose(law.convert(av, "Ks"), av * law.coefficients["Ks"])
    np.testing.assert_allclose(law.convert(av, "E(B-V)"), av / 3.1)
    assert law.convert(2.0, "K") == pytest.approx(2 * law.coefficients["Ks"])
    assert ExtinctionLaw.from_dict(law.to_dict()) == law
    red = law.redden({"J": np.array([10.0]), "H": np.array([9.0]), "Ks": np.array([8.5])},
                     np.array([3.0]))
    assert red["J"][0] == pytest.approx(10 + 3 * law.coefficients["J"])


def test_explicit_coefficients():
    law = ExtinctionLaw("PARSEC", 3.1, coefficients={"J": 0.28665, "H": 0.18082,
                                                     "Ks": 0.11675})
    assert law.ratio("H") == pytest.approx(0.18082)


def test_errors():
    with pytest.raises(ValueError, match="unknown extinction law"):
        ExtinctionLaw("NOPE")
    with pytest.raises(ValueError, match="does not cover the 2MASS"):
        ExtinctionLaw("I05_MWAvg")
    with pytest.raises(ValueError, match="unknown band"):
        ExtinctionLaw().ratio("Q")
    with pytest.raises(ValueError, match="Rv must be positive"):
        ExtinctionLaw("G23", -1)
