# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

import numpy as np
import pytest

from cnnext.training.dataset import generate_dataset, generate_evaluation_set, load_examples


def test_generate_resume_and_load(tmp_path, mini_config):
    cfg = mini_config
    info = generate_dataset(cfg, tmp_path, n_jobs=1)
    files = sorted((tmp_path / "dataset" / "train").glob("*.npz"))
    # 1 sightline x 2 realisations x 2 chunks (8 + 4 examples)
    assert [f.name for f in files] == ["s000_r00_c0000.npz", "s000_r00_c0001.npz",
                                       "s000_r01_c0000.npz", "s000_r01_c0001.npz"]
    manifest = json.loads((tmp_path / "dataset" / "manifest.json").read_text())
    assert manifest["dataset_hash"] == cfg.dataset_hash()
    assert info["cells"] == manifest["splits"]["train"]["cells"]
    assert info["mag_limits"]["Ks"]["m50"] == pytest.approx(15.2)
    train = load_examples(tmp_path, "train", config=cfg)
    val = load_examples(tmp_path, "val", config=cfg)
    assert len(train) == len(val) == 12
    assert set(train.realisation) == {0} and set(val.realisation) == {1}
    assert train.counts.dtype == np.uint16 and train.counts.shape == (12, 2, 16, 16)
    # stars in the first channel are what n_stars counts
    np.testing.assert_array_equal(train.counts[:, 0].sum(axis=(1, 2)), train.n_stars)
    assert train.n_stars.min() > 100
    # profiles: cumulative, non-decreasing, positive at the far end
    assert train.av.shape == (12, 16)
    assert np.all(np.diff(train.av, axis=1) >= 0) and np.all(train.av[:, -1] > 0)
    # the network input is the spec's transform of the counts
    np.testing.assert_allclose(train.cmds(cfg.dataset.spec),
                               np.log1p(train.counts.astype(np.float32)) * 0.5)
    # more extinction, fewer (or as many) stars: total A_V anti-correlates with counts
    assert np.corrcoef(train.av[:, -1], train.n_stars)[0, 1] < 0

    # resume: finished chunks are kept as they are, a deleted one is remade identically
    mtimes = {f.name: f.stat().st_mtime_ns for f in files}
    before = np.load(files[1])["counts"]
    files[1].unlink()
    generate_dataset(cfg, tmp_path, n_jobs=1)
    for f in files:
        if f != files[1]:
            assert f.stat().st_mtime_ns == mtimes[f.name]
    np.testing.assert_array_equal(np.load(files[1])["counts"], before)

    # another configuration must not reuse this work directory
    with pytest.raises(ValueError, match="another configuration"):
        generate_dataset(cfg.replace(seed=8), tmp_path)
    with pytest.raises(ValueError, match="another configuration"):
        load_examples(tmp_path, "train", config=cfg.replace(seed=8))

    # nor a dataset drawn from another Galaxy model (its defaults are not in the
    # configuration's hash): the stored description of the star source is compared
    path = tmp_path / "dataset" / "manifest.json"
    stored = json.loads(path.read_text())
    stored["source_description"]["model"]["R0"] = 8.0
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"another star source .*model\.R0"):
        generate_dataset(cfg, tmp_path)
    # a manifest without a description (older work directories) is still resumed,
    # and gets one
    del stored["source_description"]
    path.write_text(json.dumps(stored))
    generate_dataset(cfg, tmp_path)
    assert json.loads(path.read_text())["source_description"]["model"]["R0"] == 8.5


def test_evaluation_set_and_errors(tmp_path, mini_config):
    with pytest.raises(FileNotFoundError, match="no dataset"):
        load_examples(tmp_path, "train", config=mini_config)
    generate_evaluation_set(mini_config, tmp_path, n_jobs=1)
    inside = load_examples(tmp_path, "eval_inside")
    outside = load_examples(tmp_path, "eval_outside")
    assert len(inside) == len(outside) == 6
    # off the plane at b = 6 deg there are fewer stars than at b = 1 deg
    assert np.median(outside.n_stars) < np.median(inside.n_stars)
    with pytest.raises(ValueError, match="split must be"):
        load_examples(tmp_path, "test")


def test_examples_under_drawn_observing_conditions(tmp_path, mini_config):
    # per-example observing conditions, patchy screens and galaxies: the examples
    # carry the depth estimated from their own stars, which follows the draws
    cfg = mini_config.replace(dataset={
        "conditions": {"depth_offset": [-1.0, 0.8]}, "observation_group": 4,
        "patchiness": 0.8, "galaxies": True, "examples_per_realisation": 16})
    info = generate_dataset(cfg, tmp_path, n_jobs=1)
    assert info["mag_limits"]["observing_conditions"]["depth_offset"] == [-1.0, 0.8]
    train = load_examples(tmp_path, "train", config=cfg)
    assert train.obs.shape == (16, 6) and np.all(np.isfinite(train.obs))
    # one draw per group of 4 examples: the S/N-10 magnitudes differ between groups
    # far more than within them
    m10 = train.obs[:, 2].reshape(4, 4)
    assert np.ptp(m10.mean(axis=1)) > 4 * np.max(np.ptp(m10, axis=1))
    # deeper observations count more stars
    assert np.corrcoef(train.obs[:, 2], train.n_stars)[0, 1] > 0.3
    with pytest.raises(ValueError, match="dataset.conditions"):
        cfg.replace(dataset={"conditions": {"depth": [0, 1]}})


def test_dense_structure_and_young_stars(tmp_path, mini_config):
    # dense structure and young stars change the CMDs, never the target profiles
    base = mini_config.replace(dataset={"patchiness": 0.3, "examples_per_realisation": 16})
    both = base.replace(dataset={"dense_fraction": 0.15, "young_stars": 0.05})
    generate_dataset(base, tmp_path / "base", n_jobs=1)
    generate_dataset(both, tmp_path / "both", n_jobs=1)
    a = load_examples(tmp_path / "base", "train", config=base)
    b = load_examples(tmp_path / "both", "train", config=both)
    np.testing.assert_array_equal(a.av, b.av)
    assert not np.array_equal(a.counts, b.counts)
    # young stars add sources to some examples (their counts are Poisson: some get none)
    assert b.n_stars.sum() != a.n_stars.sum()
    # unused options do not change a configuration's dataset hash
    assert base.dataset_hash() == mini_config.replace(
        dataset={"patchiness": 0.3, "examples_per_realisation": 16,
                 "dense_fraction": 0.0, "young_stars": 0.0}).dataset_hash()
    assert both.dataset_hash() != base.dataset_hash()
    with pytest.raises(ValueError, match="dataset.young_stars"):
        base.replace(dataset={"young_stars": 1.5})
    with pytest.raises(ValueError, match="dataset.dense_fraction"):
        base.replace(dataset={"dense_fraction": -0.1})
    with pytest.raises(ValueError, match="dataset.dense_index"):
        base.replace(dataset={"dense_index": [0.5, 2.0]})


def test_patchiness_range(tmp_path, mini_config):
    # a number s draws each example's dispersion in [0, s]; [s, s] holds it fixed
    # (an experiment on what one dispersion costs); [0, s] is the number itself
    kw = {"examples_per_realisation": 8}
    upto = mini_config.replace(dataset={**kw, "patchiness": 0.8})
    same = mini_config.replace(dataset={**kw, "patchiness": [0.0, 0.8]})
    fixed = mini_config.replace(dataset={**kw, "patchiness": [0.8, 0.8]})
    assert upto.dataset.patchiness_range == same.dataset.patchiness_range == (0.0, 0.8)
    assert fixed.dataset.patchiness_range == (0.8, 0.8)
    runs = {}
    for name, cfg in (("upto", upto), ("same", same), ("fixed", fixed)):
        generate_dataset(cfg, tmp_path / name, n_jobs=1)
        runs[name] = load_examples(tmp_path / name, "train", config=cfg)
    np.testing.assert_array_equal(runs["upto"].counts, runs["same"].counts)
    # the same profiles; the CMDs differ with the screens
    np.testing.assert_array_equal(runs["upto"].av, runs["fixed"].av)
    assert not np.array_equal(runs["upto"].counts, runs["fixed"].counts)
    for bad in (-0.1, [0.5, 0.2], [0.1, 0.2, 0.3], [-0.1, 0.2], "high", [0.1, "x"]):
        with pytest.raises(ValueError, match="dataset.patchiness"):
            mini_config.replace(dataset={"patchiness": bad})


def test_generation_seconds_are_kept(tmp_path, mini_config):
    # the wall time of making the examples is kept in the manifest, summed over the
    # runs that made some: a rerun on a complete dataset still knows what it cost
    path = tmp_path / "dataset" / "manifest.json"
    first = generate_dataset(mini_config, tmp_path, n_jobs=1)["generation_seconds"]["train"]
    assert first > 0
    assert generate_dataset(mini_config, tmp_path)["generation_seconds"]["train"] == first
    next(iter((tmp_path / "dataset" / "train").glob("*.npz"))).unlink()
    resumed = generate_dataset(mini_config, tmp_path)["generation_seconds"]["train"]
    assert resumed > first
    assert json.loads(path.read_text())["generation_seconds"]["train"] == resumed
    # the evaluation sets keep their own
    generate_evaluation_set(mini_config, tmp_path, n_jobs=1)
    kept = json.loads(path.read_text())["generation_seconds"]
    assert kept["train"] == resumed and kept["eval_inside,eval_outside"] > 0
    # chunks made by a version that kept no time: unknown, not the rerun's 0 s
    stored = json.loads(path.read_text())
    del stored["generation_seconds"]
    path.write_text(json.dumps(stored))
    assert generate_dataset(mini_config, tmp_path)["generation_seconds"]["train"] is None


def test_generation_seconds_of_an_interrupted_run(tmp_path, mini_config, monkeypatch):
    # a generation interrupted after its first catalogue keeps the time it spent,
    # and the resumed run adds its own
    from cnnext.training import dataset

    original = dataset._catalogue_task
    calls = []

    def interrupted(task):
        calls.append(task)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(task)

    monkeypatch.setattr(dataset, "_catalogue_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(mini_config, tmp_path, n_jobs=1)
    path = tmp_path / "dataset" / "manifest.json"
    partial = json.loads(path.read_text())["generation_seconds"]["train"]
    assert partial > 0
    monkeypatch.setattr(dataset, "_catalogue_task", original)
    info = generate_dataset(mini_config, tmp_path, n_jobs=1)
    assert info["generation_seconds"]["train"] > partial
    assert len(load_examples(tmp_path, "train", config=mini_config)) == 12
