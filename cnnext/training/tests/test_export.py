# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest
import torch

from cnnext import CMDSpec, ExtinctionLaw
from cnnext.cmds import CMDChannel
from cnnext.model import CNNModel, ModelMetadata
from cnnext.training.export import check_export, export_onnx
from cnnext.training.network import build_network, count_parameters


def _small_spec():
    return CMDSpec(channels=(CMDChannel("Ks", ("J", "Ks"), (5, 16), (-0.5, 6.5)),
                             CMDChannel("H", ("H", "Ks"), (5, 16.5), (-0.5, 3.5))),
                   n_mag=16, n_colour=16)


@pytest.mark.parametrize("arch, options", [("compact", {"channels": (4, 8, 8),
                                                        "hidden": 32}),
                                           ("compact", {"channels": (4,), "hidden": 32,
                                                        "head": "conv",
                                                        "head_options": {"width": 6,
                                                                         "coarse": 3}}),
                                           ("paper", {"dense": (48, 24)})])
def test_onnx_matches_torch(tmp_path, arch, options):
    spec = _small_spec()
    distances = np.arange(1, 41) * 0.25
    torch.manual_seed(3)
    net = build_network(arch, spec.shape, len(distances), **options)
    # trained-looking weights: perturb the biases so softplus is not near zero
    with torch.no_grad():
        net.head.output_bias.add_(torch.randn_like(net.head.output_bias))
    meta = ModelMetadata(spec, distances, 6, ExtinctionLaw("G23", 3.1),
                         mag_limits={"Ks": {"m50": 15.0}}, training={"seed": 1},
                         metrics={"inside": {"coverage68": 0.7}})
    path = export_onnx(net, tmp_path / "m.onnx", meta)
    # random CMDs, several batch sizes (dynamic batch axis)
    rng = np.random.default_rng(0)
    model = CNNModel(path, providers="cpu")
    net.eval()
    for n in (1, 7, 33):
        cmds = (0.5 * np.log1p(rng.poisson(2.0, size=(n, *spec.shape)))).astype(np.float32)
        av, sigma = model.predict(cmds, batch_size=16)
        with torch.no_grad():
            tav, tsig = net(torch.from_numpy(cmds))
        np.testing.assert_allclose(av, tav.numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(sigma, tsig.numpy(), atol=1e-5, rtol=1e-5)
        assert np.all(np.diff(av, axis=1) >= 0)
    assert check_export(net, path) < 1e-5
    # the metadata survives the round trip
    assert model.spec == spec
    assert model.order == 6
    np.testing.assert_allclose(model.distances, distances)
    assert model.metadata.mag_limits == {"Ks": {"m50": 15.0}}
    assert model.metadata.metrics["inside"]["coverage68"] == 0.7


def test_export_rejects_mismatch(tmp_path):
    spec = _small_spec()
    net = build_network("compact", spec.shape, 10, channels=(4, 4, 4), hidden=8)
    meta = ModelMetadata(spec, np.arange(1, 21) * 0.5, 7, ExtinctionLaw("G23", 3.1))
    with pytest.raises(ValueError, match="10 outputs but the metadata lists 20"):
        export_onnx(net, tmp_path / "m.onnx", meta)
    with pytest.raises(TypeError, match="ModelMetadata"):
        export_onnx(net, tmp_path / "m.onnx", {"distances": [1]})


def test_shipped_size_budget(tmp_path):
    # the compact network at the shipped input size ships in under 20 MB, at least 10x
    # smaller than the paper-style network (216 MB: not exported here, counted)
    spec = CMDSpec()
    net = build_network("compact", spec.shape, 100)
    meta = ModelMetadata(spec, np.arange(1, 101) * 0.1, 7, ExtinctionLaw("G23", 3.1))
    path = export_onnx(net, tmp_path / "c.onnx", meta, check=False)
    assert path.stat().st_size < 20e6
    paper_bytes = 4 * count_parameters(build_network("paper", spec.shape, 100))
    assert 10 * path.stat().st_size <= paper_bytes


def test_update_metadata(tmp_path):
    from cnnext.training.export import update_metadata

    spec = _small_spec()
    torch.manual_seed(0)
    net = build_network("compact", spec.shape, 8, channels=(4, 4, 4), hidden=8)
    meta = ModelMetadata(spec, np.arange(1, 9) * 1.0, 7, ExtinctionLaw("G23", 3.1))
    path = export_onnx(net, tmp_path / "m.onnx", meta)
    cmds = np.random.default_rng(1).uniform(0, 1, size=(3, *spec.shape))
    before = CNNModel(path, providers="cpu").predict(cmds)
    update_metadata(path, min_stars=300, training={"region": {"bounds": {"l": [1, 2]}}})
    model = CNNModel(path, providers="cpu")
    assert model.metadata.min_stars == 300
    assert model.metadata.training["region"]["bounds"] == {"l": [1, 2]}
    np.testing.assert_array_equal(model.predict(cmds)[0], before[0])
    with pytest.raises(ValueError, match="unknown metadata fields"):
        update_metadata(path, colour="red")


def test_network_reading_observation_descriptors(tmp_path):
    from cnnext.observation import DESCRIPTORS, REFERENCE, descriptor_array

    spec = _small_spec()
    distances = np.arange(1, 21) * 0.5
    torch.manual_seed(5)
    net = build_network("compact", spec.shape, len(distances), channels=(4,), hidden=16,
                        n_obs=len(DESCRIPTORS))
    with torch.no_grad():
        net.head.linear.bias.add_(torch.randn_like(net.head.linear.bias))
    meta = ModelMetadata(spec, distances, 7, ExtinctionLaw("G23", 3.1),
                         observation={"descriptors": list(DESCRIPTORS)})
    path = export_onnx(net, tmp_path / "obs.onnx", meta)
    model = CNNModel(path, providers="cpu")
    assert model.descriptors == DESCRIPTORS
    rng = np.random.default_rng(1)
    cmds = (0.5 * np.log1p(rng.poisson(2.0, size=(5, *spec.shape)))).astype(np.float32)
    obs = np.array([[REFERENCE[n] + rng.normal(0, 0.5) for n in DESCRIPTORS]
                    for _ in range(5)])
    obs[0, 2] = np.nan  # unknown: read as the nominal observation
    av, sigma = model.predict(cmds, obs, batch_size=2)
    net.eval()
    with torch.no_grad():
        ref = net(torch.from_numpy(cmds), torch.from_numpy(descriptor_array(obs)))
    np.testing.assert_allclose(av, ref[0].numpy(), rtol=1e-4, atol=1e-5)
    # the depth changes the answer: the descriptors are really read
    shifted = obs + 1.0
    assert not np.allclose(model.predict(cmds, shifted)[0], av)
    with pytest.raises(ValueError, match="reads the observation descriptors"):
        model.predict(cmds)
    with pytest.raises(ValueError, match=r"obs must have shape \(5, 6\)"):
        model.predict(cmds, obs[:, :3])
    bad = ModelMetadata(spec, distances, 7, ExtinctionLaw("G23", 3.1))
    with pytest.raises(ValueError, match="reads 6 observation descriptors"):
        export_onnx(net, tmp_path / "bad.onnx", bad)


def test_average_models_checks_its_members(tmp_path):
    from cnnext.testing.models import write_tiny_model
    from cnnext.training.export import average_models

    a = write_tiny_model(tmp_path / "a.onnx", seed=1, min_stars=5)
    b = write_tiny_model(tmp_path / "b.onnx", seed=2, min_stars=9)
    c = write_tiny_model(tmp_path / "c.onnx", seed=3)
    # an ensemble of an ensemble and a model: nested, each file counted once
    ab = average_models([a, b], tmp_path / "ab.onnx")
    abc = CNNModel(average_models([ab, c], tmp_path / "abc.onnx"), providers="cpu")
    meta = abc.metadata
    assert meta.min_stars == 9 and meta.metrics == {}
    assert [m["file"] for m in meta.training["members"]] == ["ab.onnx", "c.onnx"]
    assert [m["file"] for m in meta.training["members"][0]["training"]["members"]] == \
        ["a.onnx", "b.onnx"]
    cmds = np.random.default_rng(0).uniform(0, 1, size=(3, *abc.spec.shape))
    runs = [CNNModel(p, providers="cpu").predict(cmds) for p in (a, b, c)]
    av, sigma = abc.predict(cmds)
    np.testing.assert_allclose(av, (runs[0][0] + runs[1][0]) / 4 + runs[2][0] / 2,
                               rtol=1e-5, atol=1e-6)
    var_ab = (runs[0][1] ** 2 + runs[1][1] ** 2) / 2
    np.testing.assert_allclose(sigma, np.sqrt((var_ab + runs[2][1] ** 2) / 2), rtol=1e-5)

    other = write_tiny_model(tmp_path / "other.onnx", distances=np.arange(1, 51) * 0.2)
    with pytest.raises(ValueError, match="other.onnx.*other distance nodes"):
        average_models([a, other], tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="other.onnx.*another healpix_order"):
        average_models([a, write_tiny_model(tmp_path / "other.onnx", order=6)],
                       tmp_path / "x.onnx")
    half = CNNModel(average_models([a, b], tmp_path / "half.onnx", sigma_scale=0.5),
                    providers="cpu")
    np.testing.assert_allclose(half.predict(cmds)[1], 0.5 * np.sqrt(var_ab), rtol=1e-5)
    assert half.metadata.training["sigma_scale"] == 0.5
    with pytest.raises(ValueError, match="sigma_scale"):
        average_models([a, b], tmp_path / "x.onnx", sigma_scale=0.0)
    with pytest.raises(ValueError, match="at least two"):
        average_models([a], tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        average_models([a, tmp_path / "missing.onnx"], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_split_average_gives_back_the_networks(tmp_path):
    from cnnext.testing.models import write_tiny_model
    from cnnext.training.export import average_models, split_average

    a = write_tiny_model(tmp_path / "a.onnx", seed=1)
    b = write_tiny_model(tmp_path / "b.onnx", seed=2)
    (tmp_path / "sub").mkdir()
    c = write_tiny_model(tmp_path / "sub" / "ab.onnx", seed=3)  # the name of the pair's file
    ab = average_models([a, b], tmp_path / "ab.onnx")
    abc = average_models([ab, c], tmp_path / "abc.onnx", sigma_scale=0.8, float16=True)
    cmds = np.random.default_rng(0).uniform(0, 1, size=(3, *CNNModel(a).spec.shape))
    members = split_average(abc, tmp_path / "out")
    # named after the files averaged; two "ab.onnx" fall back to their position
    assert [p.name for p in members] == ["member0.onnx", "member1.onnx"]
    got = CNNModel(members[1], providers="cpu")
    assert got.metadata.training == CNNModel(c).metadata.training
    assert got.metadata.metrics == {}
    # the networks return what they did before averaging (to the float16 weights)
    np.testing.assert_allclose(got.predict(cmds)[0], CNNModel(c).predict(cmds)[0],
                               rtol=1e-2, atol=1e-3)
    # a member that was an ensemble comes back as one, and splits in turn
    again = split_average(members[0], tmp_path / "again")
    assert [p.name for p in again] == ["a.onnx", "b.onnx"]
    for orig, split in zip((a, b), again):
        want, have = CNNModel(orig).predict(cmds), CNNModel(split).predict(cmds)
        np.testing.assert_allclose(have[0], want[0], rtol=1e-2, atol=1e-3)
        assert CNNModel(split).metadata.training == CNNModel(orig).metadata.training
    # without float16 the split is exact
    exact = split_average(ab, tmp_path / "exact")
    for orig, split in zip((a, b), exact):
        np.testing.assert_allclose(CNNModel(split).predict(cmds)[0],
                                   CNNModel(orig).predict(cmds)[0], rtol=1e-6, atol=1e-7)

    with pytest.raises(ValueError, match="a.onnx.*not an average of models"):
        split_average(a, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        split_average(tmp_path / "missing.onnx", tmp_path / "x")


def test_float16_weights_halve_the_file_not_the_profiles(tmp_path):
    import onnx

    from cnnext.training.export import FLOAT16_TOLERANCE, average_models

    spec = _small_spec()
    distances = np.arange(1, 41) * 0.25
    meta = ModelMetadata(spec, distances, 6, ExtinctionLaw("G23", 3.1))
    paths = {}
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = build_network("compact", spec.shape, len(distances), channels=(4, 8),
                            hidden=64)
        with torch.no_grad():
            net.head.linear.bias.add_(torch.randn_like(net.head.linear.bias))
        paths[seed] = export_onnx(net, tmp_path / f"m{seed}.onnx", meta)
    # the second network alone, stored as float16 (checked against torch on export)
    half = export_onnx(net, tmp_path / "half.onnx", meta, float16=True)
    assert half.stat().st_size < 0.6 * paths[2].stat().st_size
    types = {i.name: i.data_type for i in onnx.load(half).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types.values()
    assert onnx.TensorProto.FLOAT in types.values()  # the small tensors stay float32
    rng = np.random.default_rng(4)
    cmds = (0.5 * np.log1p(rng.poisson(2.0, size=(5, *spec.shape)))).astype(np.float32)
    full = CNNModel(paths[2], providers="cpu").predict(cmds)
    got = CNNModel(half, providers="cpu").predict(cmds)
    for a, b in zip(got, full):
        np.testing.assert_allclose(a, b, rtol=FLOAT16_TOLERANCE, atol=FLOAT16_TOLERANCE)
        assert not np.array_equal(a, b)  # really rounded
    assert CNNModel(half, providers="cpu").order == 6

    # an average stored as float16 (its own check passes), and one that takes it
    # as a member: float16 members are kept as they are
    avg = average_models([paths[1], paths[2]], tmp_path / "avg.onnx", float16=True)
    assert avg.stat().st_size < 0.6 * (paths[1].stat().st_size + paths[2].stat().st_size)
    nested = average_models([avg, paths[1]], tmp_path / "nested.onnx", float16=True)
    runs = [CNNModel(p, providers="cpu").predict(cmds)[0] for p in (avg, paths[1])]
    np.testing.assert_allclose(CNNModel(nested, providers="cpu").predict(cmds)[0],
                               (runs[0] + runs[1]) / 2, rtol=FLOAT16_TOLERANCE)
