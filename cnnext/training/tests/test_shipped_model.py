# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The shipped model: intact, consistent with the carina preset, as good as its card says."""
import json
from importlib import resources

import numpy as np

from cnnext import CMDSpec
from cnnext.healpix import cell_area
from cnnext.model import CNNModel, default_model_path, file_sha256
from cnnext.synthetic import GalaxyModel, observe_many, random_profiles
from cnnext.training.presets import TrainingConfig, load_preset


def test_shipped_model_matches_preset_and_card():
    path = default_model_path()
    registry = json.loads((resources.files("cnnext") / "data" / "models.json").read_text())
    entry = registry[path.name]
    assert entry["preset"] == "carina"
    assert entry["sha256"] == file_sha256(path)
    assert path.stat().st_size < 40e6  # four compact networks, weights as float16

    model = CNNModel(providers="cpu")  # checks the hash again
    meta = model.metadata
    preset = load_preset("carina")
    # `cnnext train --preset carina-c -o carina-c.onnx`, the same for carina-d and
    # carina-e, and `cnnext train --preset carina --average-with carina-c.onnx
    # --average-with carina-d.onnx --average-with carina-e.onnx` are the recipe of
    # this file (options added since it was trained take their defaults): an
    # ensemble of the four networks, each with its output biases refitted
    assert TrainingConfig.from_dict(meta.training["config"]).to_dict() == preset.to_dict()
    members = meta.training["members"]
    assert members[0]["training"]["config"] == meta.training["config"]
    for member, name in zip(members, ("carina", "carina-c", "carina-d", "carina-e")):
        config = TrainingConfig.from_dict(member["training"]["config"])
        # members were trained under other names (the presets' file names only)
        assert config.replace(name=name).to_dict() == load_preset(name).to_dict()
        assert member["training"]["bias_refit_epochs"] == 2
    assert len(members) == 4
    assert preset.training.float16_weights
    assert [m["sha256"] for m in meta.training["members"]] == \
        [m["sha256"] for m in entry["members"]]
    # the two CMDs of the default spec and the J-H vs H-Ks colour-colour diagram
    assert model.spec == preset.dataset.spec
    assert model.spec.channels[:2] == CMDSpec().channels
    assert model.spec.channels[2].label == ("J-H", "H-Ks")
    np.testing.assert_allclose(model.distances, np.arange(1, 101) * 0.1)
    assert model.order == 7
    assert meta.training["region"]["bounds"] == {"l": [257.0, 303.0], "b": [-5.0, 5.0]}
    assert meta.min_stars == preset.dataset.min_stars
    assert abs(meta.mag_limits["Ks"]["m50"] - 15.2) < 1e-9
    # the goals of issue 4, met on held-out sightlines inside the region
    inside = meta.metrics["inside"]
    assert all(inside["median_rel_err"][d] <= 0.15 for d in ("2", "4", "6"))
    assert 0.60 <= inside["coverage68"] <= 0.76


def test_shipped_model_reads_a_synthetic_cell():
    """More dust in front of the same stars: a larger predicted A_V."""
    model = CNNModel(providers="cpu")
    stars = GalaxyModel().sample(283.0, 1.0, cell_area(7), faint_limit=15.5, seed=11)
    base = random_profiles(1, l=283.0, b=1.0, seed=5, amplitude=(1.0, 1.0), n_clouds=(0, 0))
    av_stars = base.at(np.asarray(stars["distance"], float))
    cmds, n_stars, obs = observe_many(stars, np.vstack([av_stars, 3.0 * av_stars]), seed=2,
                                      spec=model.spec, descriptors=True)
    assert n_stars.min() > model.metadata.min_stars
    # the network reads the depth estimated from the stars beside the CMD
    assert model.descriptors
    av, sigma = model.predict(cmds, obs)
    truth = np.vstack([base.nodes(model.distances), 3.0 * base.nodes(model.distances)])
    assert np.all(np.diff(av, axis=1) >= 0) and np.all(sigma > 0)
    k = np.searchsorted(model.distances, 4.0)
    assert av[1, k] > 2.0 * av[0, k]
    # within 3 sigma (and 35%) of the truth at 4 kpc
    assert np.all(np.abs(av[:, k] - truth[:, k]) < 3 * sigma[:, k])
    np.testing.assert_allclose(av[:, k], truth[:, k], rtol=0.35)
