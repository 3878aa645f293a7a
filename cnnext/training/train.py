# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The training loop: seeded, resumable, with a learning-rate schedule and early stopping.

`fit` trains a network on in-memory examples (`~cnnext.training.dataset.Examples`)
and keeps a checkpoint after every epoch; a run that is interrupted carries on
from its last checkpoint when it is started again with the same arguments.
`train_model` is the whole pipeline behind ``cnnext train``: dataset, network,
training, evaluation and ONNX export.
"""

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exceptions import CheckpointError
from ..io.core import atomic_open

__all__ = ["fit", "FitResult", "refit_head_bias", "resolve_device", "lr_factor",
           "predict_torch", "train_model", "TrainingRun"]

log = logging.getLogger(__name__)


def resolve_device(device="auto"):
    """
    Return the torch device for ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA if available).
    """
    import torch

    key = str(device).lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
    if key != "cpu" and not key.startswith("cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return torch.device(key)


def lr_factor(epoch_float, *, epochs, warmup_epochs, min_factor):
    """
    Learning-rate multiplier: linear warm-up, then cosine decay to ``min_factor``.

    Parameters
    ----------
    epoch_float : float
        Position in training, in epochs (fractional inside an epoch).

    Examples
    --------
    >>> from cnnext.training.train import lr_factor
    >>> [round(lr_factor(t, epochs=10, warmup_epochs=1, min_factor=0.0), 3)
    ...  for t in (0.5, 1.0, 5.5, 10.0)]
    [0.5, 1.0, 0.5, 0.0]
    """
    if warmup_epochs > 0 and epoch_float < warmup_epochs:
        return max(epoch_float / warmup_epochs, 1e-3)
    span = max(epochs - warmup_epochs, 1e-9)
    t = min(max((epoch_float - warmup_epochs) / span, 0.0), 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))


def _batches(examples, spec, index, batch_size, device):
    """``(cmd, observation descriptors, true A_V)`` tensors, batch by batch."""
    import torch

    from ..observation import descriptor_array

    for start in range(0, len(index), batch_size):
        sel = np.sort(index[start:start + batch_size])
        x = spec.transform_counts(examples.counts[sel])
        o = descriptor_array(examples.obs[sel])
        y = examples.av[sel]
        yield (torch.from_numpy(x).to(device), torch.from_numpy(o).to(device),
               torch.from_numpy(y).to(device))


def predict_torch(net, examples, spec, *, batch_size=512, device="cpu"):
    """
    Run a torch network on examples; return ``(av, sigma)`` as float64 numpy arrays.
    """
    import torch

    device = resolve_device(device)
    net = net.to(device).eval()
    av, sigma = [], []
    with torch.no_grad():
        for x, o, _ in _batches(examples, spec, np.arange(len(examples)), batch_size,
                                device):
            a, s = net(x, o)
            av.append(a.cpu().numpy())
            sigma.append(s.cpu().numpy())
    n_dist = examples.av.shape[1]
    if not av:
        return np.zeros((0, n_dist)), np.zeros((0, n_dist))
    return np.concatenate(av).astype(float), np.concatenate(sigma).astype(float)


@dataclass
class FitResult:
    """
    Outcome of `fit`.

    Attributes
    ----------
    history : list of dict
        One entry per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_rmse``
        (mag, all nodes), ``lr``, ``seconds``.
    best_epoch : int
        Epoch (1-based) whose weights were kept.
    best_val_loss : float
    stopped_early : bool
    seconds : float
        Wall time of the training, summed over resumed sessions.
    """

    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    seconds: float = 0.0


def _save_checkpoint(path, state):
    import torch

    with atomic_open(path) as fh:
        torch.save(state, fh)


def _load_checkpoint(path, tag):
    import torch

    try:
        # weights_only: a checkpoint holds tensors, numbers and strings; anything else
        # in a work-directory file must not run code when it is loaded
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors alike
        raise CheckpointError(f"training checkpoint {str(path)!r} is unreadable ({exc}); "
                              f"delete it to start the training afresh") from None
    if state.get("tag") != tag:
        raise CheckpointError(f"training checkpoint {str(path)!r} belongs to another "
                              f"configuration or network; delete it or use another "
                              f"work directory")
    return state


def fit(net, train, val, spec, optim, *, seed=0, device="auto", checkpoint_dir=None,
        tag="", progress_bar=False):
    """
    Train ``net`` in place and leave it holding the best validation weights.

    Parameters
    ----------
    net : `torch.nn.Module`
        Network returning ``(av, sigma)``.
    train, val : `~cnnext.training.dataset.Examples`
        Training and validation examples (star counts and true profiles). The
        validation loss picks the kept weights and stops the training early; with
        no validation examples the training loss does.
    spec : `~cnnext.cmds.CMDSpec`
        Turns the stored counts into the network input (`CMDSpec.transform_counts`).
    optim : `~cnnext.training.presets.OptimConfig`
        Epochs, batch size, learning rate and schedule, patience, loss exponent.
    seed : int
        Seeds the batch order and dropout.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    checkpoint_dir : path-like, optional
        Where ``last.pt`` is written after every epoch; training resumes from it.
    tag : str
        Identifies the configuration; a checkpoint with another tag is refused.
    progress_bar : bool
        Show tqdm progress bars.

    Returns
    -------
    result : `FitResult`
    """
    import torch

    from .network import profile_loss

    device = resolve_device(device)
    if optim.threads:
        torch.set_num_threads(int(optim.threads))
    if len(train) == 0:
        raise ValueError("no training examples")
    torch.manual_seed(seed)
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    result = FitResult()
    best_state = None
    start_epoch = 0
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, tag)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        best_state = state["best_model"]
        result = FitResult(**state["result"])
        start_epoch = state["epoch"]
        log.info("resuming training from %s after epoch %d", ckpt, start_epoch)

    n_train = len(train)
    steps_per_epoch = math.ceil(n_train / optim.batch_size)
    since_best = start_epoch - result.best_epoch if result.best_epoch else 0
    done = result.stopped_early or start_epoch >= optim.epochs
    epochs = range(start_epoch, optim.epochs)
    bar = None
    if progress_bar and not done:
        from tqdm.auto import tqdm
        bar = tqdm(total=optim.epochs, initial=start_epoch, desc="training", unit="epoch")
    for epoch in ([] if done else epochs):
        t0 = time.perf_counter()
        net.train()
        order = np.random.default_rng([seed, epoch]).permutation(n_train)
        total, count = 0.0, 0
        inner = _batches(train, spec, order, optim.batch_size, device)
        if bar is not None:
            from tqdm.auto import tqdm
            inner = tqdm(inner, total=steps_per_epoch, desc=f"epoch {epoch + 1}",
                         unit="batch", leave=False)
        for step, (x, o, y) in enumerate(inner):
            lr = optim.lr * lr_factor(epoch + step / steps_per_epoch, epochs=optim.epochs,
                                      warmup_epochs=optim.warmup_epochs,
                                      min_factor=optim.lr_min_factor)
            for group in opt.param_groups:
                group["lr"] = lr
            av, sigma = net(x, o)
            loss = profile_loss(av, sigma, y, beta=optim.beta,
                                density_weight=optim.density_weight,
                                density_bins=optim.density_bins)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        val_loss, val_rmse = _validate(net, val, spec, optim, device)
        entry = {"epoch": epoch + 1, "train_loss": total / count, "val_loss": val_loss,
                 "val_rmse": val_rmse, "lr": lr, "seconds": time.perf_counter() - t0}
        result.history.append(entry)
        result.seconds += entry["seconds"]
        # without validation examples, the training loss picks the weights
        monitored = val_loss if len(val) else entry["train_loss"]
        if monitored < result.best_val_loss:
            result.best_val_loss, result.best_epoch = monitored, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            since_best = 0
        else:
            since_best += 1
        log.info("epoch %d/%d: train loss %.4f, val loss %.4f, val RMSE %.3f mag, "
                 "lr %.2e, %.1f s", epoch + 1, optim.epochs, entry["train_loss"], val_loss,
                 val_rmse, lr, entry["seconds"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val_loss=f"{val_loss:.3f}", val_rmse=f"{val_rmse:.2f}")
        result.stopped_early = since_best >= optim.patience
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            _save_checkpoint(ckpt, {"tag": tag, "epoch": epoch + 1,
                                    "model": net.state_dict(), "optimizer": opt.state_dict(),
                                    "torch_rng": torch.get_rng_state(),
                                    "best_model": best_state,
                                    "result": result.__dict__})
        if result.stopped_early:
            log.info("early stop: no improvement for %d epochs (best epoch %d)",
                     optim.patience, result.best_epoch)
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return result


def refit_head_bias(net, train, spec, optim, *, epochs, seed=0, device="auto",
                    lr=1e-2):
    """
    Refit the output layer's biases of a trained network with its dropout off.

    Dropout before the output layer is unbiased for the layer's *linear* output,
    but the increments are a softplus of it, and the mean of a convex function of
    a noisy input is larger than the function of its mean (Jensen's inequality):
    trained with dropout, a network reads smaller increments without it, and the
    cumulative profile falls short by more the further it goes (with dropout 0.3,
    -0.41 mag at 8 kpc on 2,000 validation examples of ``carina-c``, -0.14 mag
    after this refit; `fit` leaves the network as it trained). Only the biases
    of the output layer move (two per distance node), fitted with the training
    loss on the training examples, whose features are computed once with the
    network in evaluation mode: the features, and so the structure the network
    reads, are unchanged.

    Parameters
    ----------
    net : `~cnnext.training.network.CompactCNN` or `~cnnext.training.network.PaperCNN`
        A trained network (``net.head.output_bias`` is refitted in place).
    train : `~cnnext.training.dataset.Examples`
        Training examples.
    spec : `~cnnext.cmds.CMDSpec`
        Turns the stored counts into the network input.
    optim : `~cnnext.training.presets.OptimConfig`
        Batch size and the loss (``beta``, ``density_weight``, ``density_bins``).
    epochs : int
        Passes over the training examples (at least 1).
    seed : int
        Seeds the batch order.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    lr : float
        Learning rate of Adam on the biases.

    Returns
    -------
    bias : `torch.Tensor`
        The refitted biases (also set in ``net``).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import CMDSpec
    >>> from cnnext.training.dataset import Examples
    >>> from cnnext.training.network import build_network
    >>> from cnnext.training.presets import OptimConfig
    >>> from cnnext.training.train import refit_head_bias
    >>> spec = CMDSpec(n_mag=16, n_colour=16)
    >>> rng = np.random.default_rng(0)
    >>> counts = rng.poisson(2.0, size=(64, *spec.shape)).astype(np.uint16)
    >>> av = np.cumsum(rng.uniform(0, 0.2, (64, 10)), axis=1).astype(np.float32)
    >>> train = Examples(counts=counts, av=av, n_stars=counts.sum((1, 2, 3)),
    ...                  sightline=np.zeros(64, np.int16), realisation=np.zeros(64, np.int16))
    >>> net = build_network("compact", spec.shape, 10, channels=(4,), hidden=16, dropout=0.3)
    >>> bias = refit_head_bias(net, train, spec, OptimConfig(batch_size=32), epochs=1,
    ...                        device="cpu")
    >>> tuple(bias.shape)  # one bias for the increment, one for sigma, per node
    (20,)
    """
    import torch

    from .network import profile_loss

    if int(epochs) < 1:
        raise ValueError(f"refit_head_bias: epochs must be >= 1, got {epochs!r}")
    device = resolve_device(device)
    net.to(device).eval()
    features, targets = [], []
    with torch.no_grad():
        for x, o, y in _batches(train, spec, np.arange(len(train)), 4 * optim.batch_size,
                                device):
            features.append(net.features_of(x, o))
            targets.append(y)
    features, targets = torch.cat(features), torch.cat(targets)
    head = net.head
    bias = head.output_bias
    weights = [p for p in net.parameters() if p is not bias]
    for p in weights:
        p.requires_grad_(False)
    opt = torch.optim.Adam([bias], lr=float(lr))
    try:
        for epoch in range(int(epochs)):
            order = torch.from_numpy(
                np.random.default_rng([seed, epoch, 7]).permutation(len(features)))
            for start in range(0, len(order), optim.batch_size):
                sel = order[start:start + optim.batch_size].to(device)
                av, sigma = head(features[sel])
                loss = profile_loss(av, sigma, targets[sel], beta=optim.beta,
                                    density_weight=optim.density_weight,
                                    density_bins=optim.density_bins)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        for p in weights:
            p.requires_grad_(True)
    net.eval()
    return bias.detach().cpu().clone()


def _validate(net, val, spec, optim, device):
    import torch

    from .network import profile_loss

    if len(val) == 0:
        return float("nan"), float("nan")
    net.eval()
    total, sq, count = 0.0, 0.0, 0
    with torch.no_grad():
        for x, o, y in _batches(val, spec, np.arange(len(val)), 4 * optim.batch_size,
                                device):
            av, sigma = net(x, o)
            total += float(profile_loss(av, sigma, y, beta=optim.beta,
                                        density_weight=optim.density_weight,
                                        density_bins=optim.density_bins)) * len(x)
            sq += float(((av - y) ** 2).mean()) * len(x)
            count += len(x)
    return total / count, math.sqrt(sq / count)


@dataclass
class TrainingRun:
    """
    Everything `train_model` produced.

    Attributes
    ----------
    path : `pathlib.Path`
        The ONNX model file.
    metrics : dict
        Evaluation summary (also in the model metadata).
    fit : `FitResult`
    timings : dict
        Wall seconds of ``dataset`` generation, ``training``, ``evaluation``.
    """

    path: Path
    metrics: dict
    fit: FitResult
    timings: dict


def _refit_bias_once(net, train, spec, config, checkpoint_dir, tag, device):
    """
    `refit_head_bias` as a stage of `train_model`: its result is kept in
    ``checkpoint_dir``, so that a rerun (to average, to evaluate again) reuses it; a
    file left by other settings or unreadable is simply redone.
    """
    import torch

    epochs = int(config.training.bias_refit_epochs)
    path = Path(checkpoint_dir) / "bias_refit.pt"
    bias_tag = json.dumps({"fit": tag, "epochs": epochs}, sort_keys=True)
    if path.exists():
        try:
            state = _load_checkpoint(path, bias_tag)
        except CheckpointError:
            state = None
        if state is not None:
            with torch.no_grad():
                net.head.output_bias.copy_(state["bias"].to(net.head.output_bias.device))
            log.info("output biases refitted earlier, read from %s", path)
            return
    bias = refit_head_bias(net, train, spec, config.training, epochs=epochs,
                           seed=config.seed, device=device)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_checkpoint(path, {"tag": bias_tag, "bias": bias})
    log.info("output biases refitted with dropout off (%d epoch(s))", epochs)


def _rounded(seconds):
    """Seconds to a tenth, or None where they are not known."""
    return None if seconds is None else round(seconds, 1)


def train_model(config, workdir, out, *, device="auto", n_jobs=1, progress_bar=False,
                evaluate=True, average_with=()):
    """
    Run a whole training: dataset, network, training, evaluation, ONNX export.

    Every stage keeps its results in ``workdir`` (dataset chunks, checkpoints,
    evaluation), so that the same call after an interruption resumes where it
    stopped.

    Parameters
    ----------
    config : `~cnnext.training.presets.TrainingConfig`
        The run.
    workdir : path-like
        Work directory (created).
    out : path-like
        Output ONNX file.
    device : str
        Torch device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    n_jobs : int
        Processes for the data generation (``-1``: all cores).
    progress_bar : bool
        Show progress bars.
    evaluate : bool
        Evaluate on the configuration's evaluation sightlines (recommended: the
        metrics go into the model metadata).
    average_with : list of path-like
        Other cnnext ONNX models (same inputs and distance nodes): the network
        trained here is written to ``workdir/member.onnx`` and ``out`` is its
        average with them (`~cnnext.training.export.average_models`), its
        ``sigma`` scaled to a 68.27 % coverage of this run's validation examples
        (`~cnnext.training.evaluate.calibrate_sigma`), and evaluated as one model.

    Returns
    -------
    run : `TrainingRun`
    """
    import torch

    from ..model import ModelMetadata
    from .dataset import generate_dataset, load_examples
    from .evaluate import evaluate_model
    from .export import average_models, export_onnx, update_metadata
    from .network import build_network, count_parameters

    average_with = [Path(p) for p in average_with]
    for path in average_with:  # before hours of training, not after
        if not path.is_file():
            raise FileNotFoundError(f"average_with: model file {str(path)!r} does not exist")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    timings = {}
    t0 = time.perf_counter()
    info = generate_dataset(config, workdir, n_jobs=n_jobs, progress_bar=progress_bar)
    timings["dataset"] = time.perf_counter() - t0
    ds = config.dataset
    spec = ds.spec
    train = load_examples(workdir, "train", config=config)
    val = load_examples(workdir, "val", config=config)
    log.info("dataset: %d training and %d validation examples (%.0f s)", len(train),
             len(val), timings["dataset"])

    torch.manual_seed(config.seed)
    net = build_network(config.network.arch, spec.shape, len(ds.distances),
                        **config.network.options)
    # the thread count and the storage of the output change nothing in the training,
    # and the refit of the output biases is a stage of its own after it: a run may
    # resume with other values of these
    tag = json.dumps({"data": config.dataset_hash(), "network": config.network.__dict__,
                      "training": {k: v for k, v in config.training.__dict__.items()
                                   if k not in ("threads", "float16_weights",
                                                "bias_refit_epochs")}},
                     sort_keys=True, default=str)
    t0 = time.perf_counter()
    result = fit(net, train, val, spec, config.training, seed=config.seed, device=device,
                 checkpoint_dir=workdir / "checkpoints", tag=tag, progress_bar=progress_bar)
    timings["training"] = time.perf_counter() - t0
    timings["training_total"] = result.seconds
    if config.training.bias_refit_epochs:
        t0 = time.perf_counter()
        _refit_bias_once(net, train, spec, config, workdir / "checkpoints", tag, device)
        timings["bias_refit"] = time.perf_counter() - t0
    net = net.cpu().eval()

    training_meta = {
        "name": config.name,
        # the TrainingConfig layout: cnnext.sightlines reads region["bounds"]
        "region": config.region.__dict__.copy(),
        "sightlines": config.region.sightlines,
        "cells": info["cells"],
        "n_train": len(train), "n_val": len(val),
        "seed": config.seed,
        "config": config.to_dict(),
        "network": {"arch": config.network.arch, "parameters": count_parameters(net)},
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "bias_refit_epochs": config.training.bias_refit_epochs,
        "best_val_loss": result.best_val_loss,
        # the generation's own time, also when this run found the examples on disk
        "dataset_seconds": _rounded(info.get("generation_seconds", {}).get("train")),
        "training_seconds": round(result.seconds, 1),
        "source": info["source"],
    }
    observation = {}
    if getattr(net, "n_obs", 0):
        from ..observation import DESCRIPTORS

        if net.n_obs != len(DESCRIPTORS):
            raise ValueError(f"network.options.n_obs must be 0 or {len(DESCRIPTORS)} "
                             f"(the descriptors of cnnext.observation), got {net.n_obs}")
        observation = {"descriptors": list(DESCRIPTORS)}
    meta = ModelMetadata(cmd_spec=spec, distances=ds.distances,
                         healpix_order=config.region.healpix_order,
                         extinction_law=ds.law, min_stars=ds.min_stars,
                         mag_limits=info["mag_limits"], training=training_meta,
                         observation=observation)
    out = Path(out)
    if average_with:
        from ..model import CNNModel
        from .evaluate import calibrate_sigma

        member = workdir / "member.onnx"
        export_onnx(net, member, meta)
        average_models([member, *average_with], out, check=False)  # checked below
        scale = calibrate_sigma(CNNModel(out, providers="cpu"), val, spec) if len(val) \
            else 1.0  # no validation examples: the RMS sigma as it is
        average_models([member, *average_with], out, sigma_scale=scale,
                       float16=config.training.float16_weights)
        log.info("averaged with %d model(s); sigma scaled by %.3f (validation coverage)",
                 len(average_with), scale)
    else:
        export_onnx(net, out, meta, float16=config.training.float16_weights)
    metrics = {}
    if evaluate and (config.evaluation.inside or config.evaluation.outside):
        t0 = time.perf_counter()
        report = evaluate_model(out, config, workdir, n_jobs=n_jobs,
                                progress_bar=progress_bar)
        timings["evaluation"] = time.perf_counter() - t0
        metrics = report["summary"]
        update_metadata(out, metrics=metrics)
    log.info("wrote %s", out)
    (workdir / "timings.json").write_text(json.dumps(timings, indent=2))
    (workdir / "history.json").write_text(json.dumps(result.history, indent=1))
    if result.history:
        from ..plotting import plot_training_history

        (workdir / "evaluation").mkdir(exist_ok=True)
        plot_training_history(result.history, workdir / "evaluation" / "history.png")
    return TrainingRun(path=out, metrics=metrics, fit=result, timings=timings)
