# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

import numpy as np
import pytest

from cnnext.cmds import CMDChannel, CMDSpec
from cnnext.exceptions import ModelFileError
from cnnext.extinction import ExtinctionLaw
from cnnext.model import CNNModel, ModelMetadata, file_sha256, resolve_providers
from cnnext.testing.models import tiny_model_reference, write_tiny_model


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def test_load_and_metadata(tiny_path):
    model = CNNModel(tiny_path, providers="cpu")
    assert model.providers == ["CPUExecutionProvider"]
    assert model.spec == CMDSpec()
    assert model.order == 7
    np.testing.assert_allclose(model.distances, np.arange(1, 101) * 0.1)
    assert model.law == ExtinctionLaw("G23", 3.1)
    assert model.sha256 == file_sha256(tiny_path)
    assert model.metadata.cnnext_version
    assert "tiny.onnx" in repr(model)


def test_predict_matches_reference_in_batches(tiny_path):
    model = CNNModel(tiny_path)
    rng = np.random.default_rng(3)
    cmds = rng.uniform(0, 0.05, size=(37,) + model.spec.shape).astype(np.float32)
    av, sigma = model.predict(cmds, batch_size=8)
    ref_av, ref_sigma = tiny_model_reference(cmds)
    np.testing.assert_allclose(av, ref_av, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(av, axis=1) >= 0)
    # one batch or many: same numbers
    av1, _ = model.predict(cmds, batch_size=1000)
    np.testing.assert_allclose(av, av1, rtol=1e-6)


def test_predict_bad_shape(tiny_path):
    model = CNNModel(tiny_path)
    with pytest.raises(ValueError, match=r"cmds must have shape \(n, 2, 64, 64\)"):
        model.predict(np.zeros((2, 1, 64, 64)))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(np.zeros((2, 2, 64, 64)), batch_size=-1)


def test_sha256_mismatch(tiny_path):
    with pytest.raises(ModelFileError, match="SHA-256"):
        CNNModel(tiny_path, sha256="0" * 64)


def test_missing_and_corrupt_files(tmp_path, tiny_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        CNNModel(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(tiny_path.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="bad.onnx"):
        CNNModel(bad)


def test_model_without_cnnext_metadata(tmp_path):
    import onnx

    path = write_tiny_model(tmp_path / "t.onnx")
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    with pytest.raises(ModelFileError, match="lacks valid cnnext metadata"):
        CNNModel(path)


def test_metadata_roundtrip_custom_spec():
    spec = CMDSpec(channels=[CMDChannel("Ks", ("J", "Ks"), (8, 15), (0, 4))], n_mag=32,
                   n_colour=16, transform="sqrt", scale=0.1)
    meta = ModelMetadata(cmd_spec=spec, distances=[0.5, 1.0, 2.0], healpix_order=6,
                         extinction_law=ExtinctionLaw("CCM89", 3.1), min_stars=7,
                         training={"seed": 1}, metrics={"rmse": 0.3})
    props = meta.to_props()
    assert all(isinstance(v, str) for v in props.values())
    json.loads(props["cnnext.cmd_spec"])
    back = ModelMetadata.from_props(props)
    assert back.cmd_spec == spec and back.healpix_order == 6 and back.min_stars == 7
    assert back.extinction_law == meta.extinction_law
    assert back.metrics == {"rmse": 0.3}


def test_metadata_bad_distances():
    with pytest.raises(ValueError, match="distances"):
        ModelMetadata(cmd_spec=CMDSpec(), distances=[1.0, 0.5], healpix_order=7,
                      extinction_law=ExtinctionLaw())


def test_resolve_providers():
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    auto = resolve_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="providers must be"):
        resolve_providers("tpu")
    with pytest.raises(ValueError, match="not available"):
        resolve_providers(["NoSuchExecutionProvider"])


def test_default_model_missing_message(monkeypatch, tmp_path):
    import cnnext.model as mod

    monkeypatch.setattr(mod, "default_model_path", lambda: tmp_path / "cnnext-carina.onnx")
    with pytest.raises(ModelFileError, match="cnnext train --preset carina"):
        CNNModel()


def test_threads(tiny_path):
    model = CNNModel(tiny_path, threads=1)
    av, _ = model.predict(np.zeros((4,) + model.spec.shape))
    np.testing.assert_allclose(av, tiny_model_reference(np.zeros((4,) + model.spec.shape))[0],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        CNNModel(tiny_path, threads=0)
