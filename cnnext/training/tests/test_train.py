# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest
import torch

from cnnext import CMDSpec
from cnnext.cmds import CMDChannel
from cnnext.exceptions import CheckpointError
from cnnext.training.dataset import Examples
from cnnext.training.network import build_network
from cnnext.training.presets import OptimConfig
from cnnext.training.train import fit, lr_factor, predict_torch, resolve_device

SPEC = CMDSpec(channels=(CMDChannel("Ks", ("J", "Ks"), (5, 16), (-0.5, 6.5)),),
               n_mag=16, n_colour=16)
N_DIST = 12


def _examples(n, seed):
    """Counts whose total sets the profile: a learnable toy problem."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.5, 5.0, n)
    counts = rng.poisson(level[:, None, None, None] * np.ones((1, *SPEC.shape)))
    av = (level[:, None] * np.linspace(0.1, 1.0, N_DIST)[None, :]).astype(np.float32)
    return Examples(counts=counts.astype(np.uint16), av=av, n_stars=counts.sum((1, 2, 3)),
                    sightline=np.zeros(n, np.int16), realisation=np.zeros(n, np.int16))


def _net():
    torch.manual_seed(0)
    return build_network("compact", SPEC.shape, N_DIST, channels=(4, 4, 8), hidden=16,
                         dropout=0.0)


OPTIM = OptimConfig(epochs=6, batch_size=32, lr=5e-3, warmup_epochs=1, patience=10)


def test_fit_learns_and_is_reproducible():
    train, val = _examples(192, 1), _examples(48, 2)
    before = np.sqrt(np.mean((predict_torch(_net(), val, SPEC)[0] - val.av) ** 2))
    net_a = _net()
    res_a = fit(net_a, train, val, SPEC, OPTIM, seed=3, device="cpu")
    av, sigma = predict_torch(net_a, val, SPEC)
    after = np.sqrt(np.mean((av - val.av) ** 2))
    assert after < 0.5 * before
    assert len(res_a.history) == 6
    assert res_a.history[-1]["val_loss"] < res_a.history[0]["val_loss"]
    assert 1 <= res_a.best_epoch <= 6
    assert np.all(sigma > 0) and np.all(np.diff(av, axis=1) >= 0)
    net_b = _net()
    res_b = fit(net_b, train, val, SPEC, OPTIM, seed=3, device="cpu")
    assert [h["val_loss"] for h in res_b.history] == [h["val_loss"] for h in res_a.history]


def test_resume_from_checkpoint(tmp_path, monkeypatch):
    import cnnext.training.train as tr

    train, val = _examples(128, 1), _examples(32, 2)
    res_full = fit(_net(), train, val, SPEC, OPTIM, seed=1, device="cpu")

    # interrupt a run during epoch 4 (after 3 checkpoints) ...
    class Interrupted(Exception):
        pass

    original = tr._validate
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Interrupted
        return original(*args, **kwargs)

    monkeypatch.setattr(tr, "_validate", crashing)
    with pytest.raises(Interrupted):
        fit(_net(), train, val, SPEC, OPTIM, seed=1, device="cpu", checkpoint_dir=tmp_path,
            tag="x")
    monkeypatch.setattr(tr, "_validate", original)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 3
    # ... and resume: the same history as the uninterrupted run
    res = fit(_net(), train, val, SPEC, OPTIM, seed=1, device="cpu", checkpoint_dir=tmp_path,
              tag="x")
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([h["val_loss"] for h in res.history],
                               [h["val_loss"] for h in res_full.history], rtol=1e-5)
    with pytest.raises(CheckpointError, match="another configuration"):
        fit(_net(), train, val, SPEC, OPTIM, seed=1, device="cpu", checkpoint_dir=tmp_path,
            tag="y")
    (tmp_path / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        fit(_net(), train, val, SPEC, OPTIM, seed=1, device="cpu", checkpoint_dir=tmp_path,
            tag="x")


class _RunsCode:
    """Pickles to a call of ``pathlib.Path.touch``: loading it runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_checkpoint_loads_weights_only(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"tag": "x", "epoch": 1, "payload": _RunsCode(marker)}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="unreadable"):
        fit(_net(), _examples(16, 1), _examples(8, 2), SPEC, OPTIM, seed=1, device="cpu",
            checkpoint_dir=tmp_path, tag="x")
    assert not marker.exists()


def test_early_stopping():
    train, val = _examples(64, 1), _examples(16, 2)
    res = fit(_net(), train, val, SPEC,
              OptimConfig(epochs=30, batch_size=64, lr=0.0, warmup_epochs=0, patience=2),
              seed=0, device="cpu")
    # no learning at lr=0: the best epoch is the first, stop two epochs later
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1


def test_lr_schedule_and_device():
    f = [lr_factor(t, epochs=10, warmup_epochs=2, min_factor=0.1) for t in
         (0.0, 1.0, 2.0, 6.0, 10.0, 12.0)]
    assert f[0] == pytest.approx(1e-3)
    assert f[1] == pytest.approx(0.5)
    assert f[2] == pytest.approx(1.0)
    assert f[3] == pytest.approx(0.55)
    assert f[4] == pytest.approx(0.1) and f[5] == pytest.approx(0.1)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_without_validation():
    train = _examples(64, 1)
    empty = _examples(0, 2)
    res = fit(_net(), train, empty, SPEC, OptimConfig(epochs=4, batch_size=32, lr=5e-3,
                                                      patience=1), seed=0, device="cpu")
    assert len(res.history) >= 2 and res.best_epoch >= 1
    assert all(np.isnan(h["val_loss"]) for h in res.history)


@pytest.mark.parametrize("head, bias_name", [("dense", "head.linear.bias"),
                                             ("conv", "head.bias")])
def test_refit_head_bias_removes_the_dropout_shortfall(head, bias_name):
    """Dropout before the softplus head: without it the network reads too little."""
    from cnnext.training.train import refit_head_bias

    train, val = _examples(256, 1), _examples(64, 2)
    torch.manual_seed(0)
    net = build_network("compact", SPEC.shape, N_DIST, channels=(4, 4, 8), hidden=32,
                        dropout=0.5, head=head)
    optim = OptimConfig(epochs=8, batch_size=32, lr=5e-3, warmup_epochs=1, patience=10)
    fit(net, train, val, SPEC, optim, seed=3, device="cpu")
    before = predict_torch(net, train, SPEC)[0] - train.av
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    bias = refit_head_bias(net, train, SPEC, optim, epochs=8, seed=1, device="cpu")
    after = predict_torch(net, train, SPEC)[0] - train.av
    # the shortfall at the far end of the profile is (most of it) gone
    assert before[:, -1].mean() < -0.05
    assert abs(after[:, -1].mean()) < 0.5 * abs(before[:, -1].mean())
    # only the output biases moved, and every weight can be trained again
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, weights[k])]
    assert changed == [bias_name]
    torch.testing.assert_close(net.head.output_bias.detach(), bias)
    assert all(p.requires_grad for p in net.parameters())
    assert not net.training
    with pytest.raises(ValueError, match="epochs"):
        refit_head_bias(net, train, SPEC, optim, epochs=0)
