# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.synthetic import GalaxyModel
from cnnext.training.dataset import generate_dataset, load_examples
from cnnext.training.presets import TrainingConfig
from cnnext.training.sources import BesanconSource, GalaxySource, make_source

from .conftest import MINI


def _write_besancon(path, stars, l, b, area):
    """A Besançon-service-like ASCII catalogue (K reference, no kinematics)."""
    header = ("Dist    Mv  CL Typ  LTef  logg Age Mass  J-H    H-K    J-K    V-K    K"
              "  [Fe/H] l           b         Av   Mbol")
    lines = [" BESANCON MODEL OF STELLAR POPULATION SYNTHESIS (cnnext test)",
             f"  (l = {l:7.1f}; b = {b:6.1f})  Distance  0.0 a  25.0 kpc;  Solid angle "
             f"{area:10.3f}  square degree",
             "      No kinematics", "  Absorption at s.n. : 0.00 mag./kpc   0 clouds",
             "  " + header]
    for s in stars:
        lines.append(f"  {s['distance']:7.3f} {4.0:5.2f}  5 4.50 3.760  4.44  5 1.00 "
                     f"{s['J'] - s['H']:6.3f} {s['H'] - s['Ks']:6.3f} {s['J'] - s['Ks']:6.3f} "
                     f"{1.500:6.3f} {s['Ks']:6.3f} 0.00 {l:9.5f} {b:8.5f}  0.000 0.000")
    lines += ["  " + header, f"  TOTAL NUMBER OF STARS :    {len(stars)}", ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def besancon_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("besancon")
    stars = GalaxyModel().sample(280.0, 2.0, 0.45, faint_limit=14.0, max_distance=15.0,
                                 seed=3)
    _write_besancon(root / "field_280_2.resu", stars, 280.0, 2.0, 0.45)
    return root


def test_besancon_realisations(besancon_dir, tmp_path):
    cfg = TrainingConfig.from_dict({**MINI, "dataset": {**MINI["dataset"],
                                                        "source": str(besancon_dir)}})
    src = make_source(cfg)
    assert isinstance(src, BesanconSource)
    area = 0.2
    seed = [7, 0, 0, 0]
    a = src.catalogue(280.0, 2.0, area, realisation=0, seed=seed)
    b = src.catalogue(280.0, 2.0, area, realisation=1, seed=seed[:-1] + [1])
    total = len(src._stars(src.files[0]))
    # two disjoint cell-sized subsets of the 0.45 deg^2 field
    assert abs(len(a) - total * area / 0.45) < 0.02 * total
    def keys(t):
        return set(zip(*(np.round(t[c], 3) for c in ("distance", "J", "H", "Ks"))))
    assert not keys(a) & keys(b)
    with pytest.raises(ValueError, match="no Besançon catalogue within 2 deg"):
        src.catalogue(200.0, 0.0, area, realisation=0, seed=seed)

    generate_dataset(cfg, tmp_path, n_jobs=1)
    train = load_examples(tmp_path, "train", config=cfg)
    assert len(train) == 12 and train.n_stars.min() > 50
    assert np.all(np.diff(train.av, axis=1) >= 0)


def test_source_errors(tmp_path):
    cfg = TrainingConfig.from_dict({"dataset": {"source": str(tmp_path / "missing")}})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_source(cfg)
    cfg = TrainingConfig.from_dict({"dataset": {"source": str(tmp_path)}})
    with pytest.raises(FileNotFoundError, match="no Besançon catalogues"):
        make_source(cfg)
    src = make_source(TrainingConfig())
    assert isinstance(src, GalaxySource)
    limits = src.mag_limits()
    assert limits["Ks"]["m50"] == pytest.approx(15.2)
    assert src.faint_limit == pytest.approx(15.2 + 5 * 0.2)
