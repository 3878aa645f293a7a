# Licensed under a 3-clause BSD style license - see LICENSE.rst
import pytest

from cnnext.synthetic import GalaxyModel


@pytest.fixture(scope="session")
def galaxy():
    """One Galaxy model per test session: its tables take a second to build."""
    return GalaxyModel()


@pytest.fixture(scope="session")
def cell_stars(galaxy):
    """Intrinsic stars of one 30' cell at (280, 0) to Ks = 15.5."""
    return galaxy.sample(280.0, 0.0, 0.2098, faint_limit=15.5, seed=42)
