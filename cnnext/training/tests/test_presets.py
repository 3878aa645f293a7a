# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.healpix import lonlat_to_cells
from cnnext.training.presets import TrainingConfig, list_presets, load_config, load_preset


def test_presets():
    assert {"carina", "tiny"} <= set(list_presets())
    carina = load_preset("carina")
    assert carina.name == "carina"
    assert len(carina.region.sightlines) == 15
    # carina and carina-a's sightlines (carina-c's too): thirty distinct training
    # cells, none of them a held-out evaluation cell
    member_a = load_preset("carina-a")

    def cells(sightlines):
        return set(lonlat_to_cells(*np.transpose(sightlines), carina.region.healpix_order).tolist())

    training = cells(carina.region.sightlines) | cells(member_a.region.sightlines)
    assert len(training) == 30
    # carina-b (a network of the eighth to tenth models): carina-a's set-up on carina's
    # sightlines, deeper
    member_b = load_preset("carina-b")
    assert cells(member_b.region.sightlines) == cells(carina.region.sightlines)
    assert member_b.dataset_hash() != member_a.dataset_hash()
    assert member_b.network.options["channels"] == [12, 16]
    # the same training, but for the refit of the output biases (carina-b and the
    # shipped model's four networks have it, carina-a does not)
    assert {k: v for k, v in member_b.training.__dict__.items() if k != "bias_refit_epochs"} \
        == {k: v for k, v in member_a.training.__dict__.items() if k != "bias_refit_epochs"}
    # carina-c (a member of the shipped model with carina, carina-d and carina-e):
    # carina-b's network on carina-a's sightlines with carina's twelve catalogues,
    # regularised harder
    member_c = load_preset("carina-c")
    assert cells(member_c.region.sightlines) == cells(member_a.region.sightlines)
    assert member_c.dataset.n_realisations == carina.dataset.n_realisations == 12
    assert member_c.network.options["channels"] == [12, 16]
    assert member_c.network.options["dropout"] > member_b.network.options["dropout"]
    assert member_c.training.weight_decay > member_b.training.weight_decay
    assert len({member_c.dataset_hash(), member_a.dataset_hash(), carina.dataset_hash()}) == 3
    # carina-d: carina-c's regularised network, on four catalogues of
    # fifteen sightlines of its own, half-way between carina's and carina-a's
    member_d = load_preset("carina-d")
    cells_d = cells(member_d.region.sightlines)
    assert len(cells_d) == 15 and not cells_d & training
    assert member_d.dataset.n_realisations == member_b.dataset.n_realisations == 4
    assert member_d.network.options == member_c.network.options
    assert member_d.training == member_c.training
    training |= cells_d
    # carina-e: carina-c's set-up (twelve catalogues) on carina-d's sightlines
    member_e = load_preset("carina-e")
    assert cells(member_e.region.sightlines) == cells_d
    assert member_e.dataset.n_realisations == 12
    assert member_e.network.options == member_c.network.options
    assert member_e.training == member_c.training
    assert member_e.dataset_hash() not in {m.dataset_hash() for m in
                                           (carina, member_a, member_b, member_c, member_d)}
    for member in (carina, member_b, member_c, member_d, member_e):
        assert member.training.bias_refit_epochs == 2
    assert not training & cells(carina.evaluation.inside + carina.evaluation.outside)
    for l, b in carina.region.sightlines + carina.evaluation.inside:
        assert 257 <= l <= 303 and abs(b) <= 5
    for l, b in carina.evaluation.outside:
        assert not (257 <= l <= 303 and abs(b) <= 5)
    assert carina.region.healpix_order == 7
    np.testing.assert_allclose(carina.dataset.distances, np.arange(1, 101) * 0.1)
    assert carina.region.bounds == {"l": [257.0, 303.0], "b": [-5.0, 5.0]}
    tiny = load_preset("tiny")
    n_train = (tiny.dataset.n_realisations - tiny.dataset.n_val_realisations) \
        * tiny.dataset.examples_per_realisation * len(tiny.region.sightlines)
    assert 100 <= n_train <= 1000
    with pytest.raises(ValueError, match="unknown preset 'huge'.*carina"):
        load_preset("huge")


def test_round_trip_and_replace():
    cfg = load_preset("tiny")
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    other = cfg.replace(training={"epochs": 2}, seed=5)
    assert other.training.epochs == 2 and other.seed == 5
    assert other.training.batch_size == cfg.training.batch_size
    # training options do not change the dataset; the seed does
    assert cfg.replace(training={"epochs": 2}).dataset_hash() == cfg.dataset_hash()
    assert other.dataset_hash() != cfg.dataset_hash()


def test_toml_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nseed = 4\n[region]\nsightlines = [[30, 0], [-20, 50]]\n'
                    '[training]\nepochs = 3\n')
    cfg = load_config(path)
    assert cfg.region.sightlines == [[30.0, 0.0], [340.0, 50.0]]
    assert cfg.training.epochs == 3 and cfg.seed == 4
    path.write_text("[training]\nepoch = 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['epoch'\] in \[training\]"):
        load_config(path)
    path.write_text("[region\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_validation():
    with pytest.raises(ValueError, match="at least one"):
        TrainingConfig.from_dict({"region": {"sightlines": []}})
    with pytest.raises(ValueError, match="latitudes"):
        TrainingConfig.from_dict({"region": {"sightlines": [[10, 95]]}})
    with pytest.raises(ValueError, match="n_val_realisations"):
        TrainingConfig.from_dict({"dataset": {"n_realisations": 2, "n_val_realisations": 2}})
    with pytest.raises(ValueError, match="multiple of d_step_kpc"):
        TrainingConfig.from_dict({"dataset": {"d_max_kpc": 10.05}})
    with pytest.raises(ValueError, match="unknown configuration keys"):
        TrainingConfig.from_dict({"regions": {}})
    with pytest.raises(ValueError, match="density_weight"):
        TrainingConfig.from_dict({"training": {"density_weight": -1}})
    with pytest.raises(ValueError, match="density_bins"):
        TrainingConfig.from_dict({"training": {"density_bins": 2}})


def test_density_loss_options():
    cfg = TrainingConfig.from_dict({"training": {"density_weight": 1, "density_bins": 3}})
    assert (cfg.training.density_weight, cfg.training.density_bins) == (1.0, 3)
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainingConfig().training.density_weight == 0.0


def test_density_loss_at_several_scales():
    cfg = TrainingConfig.from_dict({"training": {"density_weight": [0.5, 1.5],
                                                 "density_bins": [1, 3]}})
    assert (cfg.training.density_weight, cfg.training.density_bins) == ([0.5, 1.5], [1, 3])
    cfg = TrainingConfig.from_dict({"training": {"density_weight": 1, "density_bins": [1, 5]}})
    assert (cfg.training.density_weight, cfg.training.density_bins) == (1.0, [1, 5])
    with pytest.raises(ValueError, match="density_weight has 1 entries"):
        TrainingConfig.from_dict({"training": {"density_weight": [1.0], "density_bins": [1, 3]}})
    with pytest.raises(ValueError, match="density_bins"):
        TrainingConfig.from_dict({"training": {"density_bins": [1, 4]}})
    with pytest.raises(ValueError, match="density_weight"):
        TrainingConfig.from_dict({"training": {"density_weight": [1.0, -1.0],
                                               "density_bins": [1, 3]}})


@pytest.mark.parametrize("key, value", [("bias_refit_epochs", -1), ("bias_refit_epochs", 1.5),
                                        ("bias_refit_epochs", True),
                                        ("float16_weights", "yes")])
def test_bad_refit_and_storage_options_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"training.{key}"):
        TrainingConfig.from_dict({"training": {key: value}})
