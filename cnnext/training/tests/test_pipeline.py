# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

import numpy as np
import pytest

from cnnext.cli import main
from cnnext.model import CNNModel, file_sha256
from cnnext.training.presets import TrainingConfig

from .conftest import MINI


def _write_toml(path, data):
    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_cli_train_end_to_end(tmp_path, capsys):
    config = _write_toml(tmp_path / "mini.toml", MINI)
    out = tmp_path / "mini.onnx"
    status = main(["train", "--config", str(config), "--workdir", str(tmp_path / "work"),
                   "--out", str(out), "--jobs", "1", "--device", "cpu", "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "median relative error" in printed
    model = CNNModel(out, providers="cpu")
    meta = model.metadata
    cfg = TrainingConfig.from_dict(MINI)
    assert meta.training["config"] == cfg.to_dict()
    assert meta.training["seed"] == 7
    assert meta.training["sightlines"] == [[280.0, 2.0]]
    assert meta.training["region"]["bounds"] == {"l": [275.0, 285.0], "b": [-3.0, 3.0]}
    assert meta.training["n_train"] == 12 and meta.training["n_val"] == 12
    assert meta.healpix_order == 7
    np.testing.assert_allclose(model.distances, np.arange(1, 17) * 0.5)
    assert model.spec == cfg.dataset.spec
    assert meta.mag_limits["Ks"]["m50"] == pytest.approx(15.2)
    assert set(meta.metrics) >= {"inside", "outside"}
    assert 0 <= meta.metrics["inside"]["coverage68"] <= 1
    assert set(meta.metrics["inside"]["median_rel_err"]) == {"1", "2", "4", "6", "8"}
    report = json.loads((tmp_path / "work" / "evaluation" / "metrics.json").read_text())
    assert report["summary"] == meta.metrics
    assert (tmp_path / "work" / "evaluation" / "profiles_inside.png").stat().st_size > 1000
    assert (tmp_path / "work" / "checkpoints" / "last.pt").exists()

    # a second run resumes: nothing is regenerated or retrained, same model
    first = out.read_bytes()
    status = main(["train", "--config", str(config), "--workdir", str(tmp_path / "work"),
                   "--out", str(out), "--jobs", "1", "--device", "cpu", "--no-progress",
                   "--no-evaluate"])
    assert status == 0
    again = CNNModel(out, providers="cpu")
    cmds = np.random.default_rng(0).uniform(0, 2, size=(4, *model.spec.shape))
    np.testing.assert_array_equal(again.predict(cmds)[0], model.predict(cmds)[0])
    assert len(first) > 0
    # the metadata keep the generation's time (kept in the dataset's manifest), not
    # the rerun's 0 s
    manifest = json.loads((tmp_path / "work" / "dataset" / "manifest.json").read_text())
    assert manifest["generation_seconds"]["train"] > 0
    assert meta.training["dataset_seconds"] == round(manifest["generation_seconds"]["train"], 1)
    assert again.metadata.training["dataset_seconds"] == meta.training["dataset_seconds"]

    # the output biases refitted with dropout off and the weights stored as float16
    # are stages after the training: the trained network is reused, not retrained
    work = tmp_path / "work"
    last = file_sha256(work / "checkpoints" / "last.pt")
    refit_config = _write_toml(tmp_path / "refit.toml", {**MINI, "training": {
        **MINI["training"], "bias_refit_epochs": 1, "float16_weights": True}})
    refit_args = ["train", "--config", str(refit_config), "--workdir", str(work),
                  "--out", str(tmp_path / "refit.onnx"), "--jobs", "1", "--device", "cpu",
                  "--no-progress", "--no-evaluate"]
    assert main(refit_args) == 0
    assert file_sha256(work / "checkpoints" / "last.pt") == last
    assert (work / "checkpoints" / "bias_refit.pt").exists()
    refitted = CNNModel(tmp_path / "refit.onnx", providers="cpu")
    assert refitted.metadata.training["bias_refit_epochs"] == 1
    assert (tmp_path / "refit.onnx").stat().st_size < 0.75 * len(first)
    av_refit = refitted.predict(cmds)[0]
    assert not np.allclose(av_refit, model.predict(cmds)[0], rtol=1e-3)
    # run again: the refitted biases are read back, the same model
    assert main(refit_args) == 0
    np.testing.assert_array_equal(CNNModel(tmp_path / "refit.onnx",
                                           providers="cpu").predict(cmds)[0], av_refit)

    # a second network (another seed) averaged with the first: the ensemble
    ens = tmp_path / "ens.onnx"
    status = main(["train", "--config", str(config), "--seed", "8", "--workdir",
                   str(tmp_path / "work8"), "--out", str(ens), "--jobs", "1", "--device",
                   "cpu", "--no-progress", "--average-with", str(out)])
    assert status == 0
    member_path = tmp_path / "work8" / "member.onnx"
    ensemble, member = CNNModel(ens, providers="cpu"), CNNModel(member_path, providers="cpu")
    members = ensemble.metadata.training["members"]
    assert [m["sha256"] for m in members] == [file_sha256(member_path), file_sha256(out)]
    assert members[1]["training"]["seed"] == 7 and ensemble.metadata.training["seed"] == 8
    np.testing.assert_allclose(ensemble.predict(cmds)[0],
                               (member.predict(cmds)[0] + again.predict(cmds)[0]) / 2,
                               rtol=1e-5, atol=1e-6)
    # its sigma is the members' RMS, scaled to a 68 % coverage of the validation split
    scale = ensemble.metadata.training["sigma_scale"]
    rms = np.sqrt((member.predict(cmds)[1] ** 2 + again.predict(cmds)[1] ** 2) / 2)
    np.testing.assert_allclose(ensemble.predict(cmds)[1], scale * rms, rtol=1e-5)
    from cnnext.training import calibrate_sigma, load_examples

    val = load_examples(tmp_path / "work8", "val", config=cfg.replace(seed=8))
    assert calibrate_sigma(ensemble, val, cfg.dataset.spec) == pytest.approx(1.0, abs=1e-3)
    assert set(ensemble.metadata.metrics) >= {"inside", "outside"}
    capsys.readouterr()
    status = main(["train", "--config", str(config), "--workdir", str(tmp_path / "work8"),
                   "--out", str(ens), "--average-with", str(tmp_path / "no-such.onnx")])
    assert status != 0 and "no-such.onnx" in capsys.readouterr().err


def test_cli_options(capsys):
    assert main(["train", "--preset", "tiny", "--show-config", "--epochs", "3",
                 "--sightlines", "10,1;20,-2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["training"]["epochs"] == 3
    assert shown["region"]["sightlines"] == [[10.0, 1.0], [20.0, -2.0]]
    assert main(["train", "--preset", "nope", "--show-config"]) == 1
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["train", "--sightlines", "10;2", "--show-config"]) == 1


def test_cli_train_shows_progress_by_default(tmp_path, capsys):
    mini = {**MINI, "training": {**MINI["training"], "epochs": 1}}
    config = _write_toml(tmp_path / "mini.toml", mini)
    common = ["--config", str(config), "--out", str(tmp_path / "mini.onnx"), "--jobs", "1",
              "--device", "cpu", "--no-evaluate"]
    # -v after the subcommand is accepted
    assert main(["train", "-v", "--workdir", str(tmp_path / "a"), *common]) == 0
    err = capsys.readouterr().err
    assert "synthetic CMDs" in err  # the dataset chunks
    assert "epoch 1/1: train loss" in err
    assert main(["train", "--workdir", str(tmp_path / "b"), *common]) == 0
    err = capsys.readouterr().err
    assert "synthetic CMDs" in err and "epoch 1/1: train loss" in err
    # --quiet: nothing on stderr, the result on stdout
    assert main(["train", "--quiet", "--workdir", str(tmp_path / "c"), *common]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "wrote" in captured.out
