# Licensed under a 3-clause BSD style license - see LICENSE.rst
import pytest

from cnnext.training.presets import TrainingConfig

#: Smaller than the ``tiny`` preset: one sightline near the Galactic plane, a few
#: dozen examples, 16x16 CMDs, one epoch.
MINI = {
    "name": "mini", "seed": 7,
    "region": {"sightlines": [[280.0, 2.0]], "healpix_order": 7,
               "bounds": {"l": [275.0, 285.0], "b": [-3.0, 3.0]}},
    "dataset": {"n_realisations": 2, "n_val_realisations": 1,
                "examples_per_realisation": 12, "chunk_size": 8,
                "d_max_kpc": 8.0, "d_step_kpc": 0.5, "density_jitter": [0.8, 1.25],
                "galaxy": {"max_distance": 15.0},
                "cmd": {"channels": [
                    {"mag": "Ks", "colour": ["J", "Ks"], "mag_range": [6.0, 16.0],
                     "colour_range": [-0.5, 6.5]},
                    {"mag": "H", "colour": ["H", "Ks"], "mag_range": [6.0, 16.5],
                     "colour_range": [-0.5, 3.5]}],
                    "n_mag": 16, "n_colour": 16}},
    "network": {"arch": "compact", "options": {"channels": [4, 4, 8], "hidden": 16}},
    "training": {"epochs": 2, "batch_size": 8, "patience": 5},
    "evaluation": {"inside": [[282.0, 1.0]], "outside": [[240.0, 6.0]],
                   "n_realisations": 1, "examples_per_realisation": 6},
}


@pytest.fixture
def mini_config():
    return TrainingConfig.from_dict(MINI)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The test networks are tiny: a second thread only adds synchronisation."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
