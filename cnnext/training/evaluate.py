# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Evaluation of a model on synthetic sightlines it was not trained on.

`profile_metrics` scores predicted profiles against the truth with
`cnnext.metrics.error_metrics` (bias and RMS of the cumulative A_V per distance
node, median relative error at chosen distances, coverage of the 1-sigma
interval) and `cnnext.metrics.structure_metrics` (whether the dust is at the right
distances: density correlation, ring share); `evaluate_model` generates the
evaluation examples of a `~cnnext.training.presets.TrainingConfig` (held-out
sightlines inside the training region and a few outside it), runs the ONNX model
on them and writes ``metrics.json`` and figures.
"""

import json
import logging
from pathlib import Path

import numpy as np

from ..metrics import (
    REL_ERR_FLOOR,
    REPORT_DISTANCES,
    error_metrics,
    structure_metrics,
    structure_summary,
)

__all__ = ["profile_metrics", "evaluate_model", "calibrate_sigma", "REPORT_DISTANCES"]

log = logging.getLogger(__name__)


def profile_metrics(truth, pred, sigma, distances, *, report_distances=REPORT_DISTANCES,
                    floor=REL_ERR_FLOOR):
    """
    Score predicted cumulative A_V profiles against the truth, as JSON-ready numbers.

    The statistics are those of `cnnext.metrics` (`~cnnext.metrics.error_metrics`
    for the cumulative A_V, `~cnnext.metrics.structure_metrics` for the density),
    laid out for ``metrics.json`` and the model metadata.

    Parameters
    ----------
    truth, pred, sigma : array-like
        ``(n, n_dist)`` true and predicted cumulative A_V and predicted 1-sigma (mag).
    distances : array-like
        ``(n_dist,)`` distance nodes in kpc.
    report_distances : sequence of float
        Distances (kpc) at which the per-distance numbers are summarised; those
        beyond the last node are skipped. Default
        `cnnext.metrics.REPORT_DISTANCES`.
    floor : float
        Relative errors are ``|pred - truth| / max(truth, floor)``.

    Returns
    -------
    metrics : dict
        ``n``; per node ``bias`` and ``rms`` (mag) and ``coverage68`` (fraction of
        truths within ``pred ± sigma``); ``coverage68_all`` over all nodes; and
        ``at`` = ``{"<d>": {"median_rel_err", "bias", "rms", "coverage68",
        "median_truth"}}`` for each report distance; ``structure`` = the
        `~cnnext.metrics.structure_summary` of the examples (density correlation,
        ring share and mean-density ratio at 100, 300 and 500 pc; the ring share
        here is the error common to all examples at one distance, whatever their
        profiles; no fingers-of-God index: the examples have no sky geometry).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.training.evaluate import profile_metrics
    >>> d = np.arange(1, 101) * 0.1
    >>> truth = np.tile(np.cumsum(np.full(100, 0.1)), (4, 1))
    >>> m = profile_metrics(truth, 1.1 * truth, 0.2 * truth, d)
    >>> round(m["at"]["4"]["median_rel_err"], 3), m["coverage68_all"]
    (0.1, 1.0)
    """
    distances = np.asarray(distances, dtype=float)
    # every node: checks the shapes too
    nodes = error_metrics(pred, sigma, truth, distances, at=None, floor=floor)
    out = {"n": int(len(truth)), "distances_kpc": distances.tolist(),
           "bias": [], "rms": [], "coverage68": [], "coverage68_all": float("nan"),
           "rel_err_floor_mag": float(floor), "at": {}, "structure": {}}
    if not out["n"]:
        return out
    out["bias"] = nodes["bias"].to_value("mag").tolist()
    out["rms"] = nodes["rms"].to_value("mag").tolist()
    out["coverage68"] = nodes["coverage68"].tolist()
    n = np.asarray(nodes["n"], float)
    out["coverage68_all"] = float((nodes["coverage68"] * n).sum() / n.sum()) \
        if n.sum() else float("nan")
    report = [float(d) for d in report_distances if d <= distances[-1] + 1e-9]
    if report:
        table = error_metrics(pred, sigma, truth, distances, at=report, floor=floor)
        for d, row in zip(report, table):
            out["at"][f"{d:g}"] = {"median_rel_err": float(row["median_rel_err"]),
                                   "bias": float(row["bias"].to_value("mag")),
                                   "rms": float(row["rms"].to_value("mag")),
                                   "coverage68": float(row["coverage68"]),
                                   "median_truth": float(row["truth_median"].to_value("mag"))}
    try:
        out["structure"] = structure_summary(structure_metrics(pred, truth, distances))
    except ValueError:  # nodes too coarse for 100 pc smoothing: no structure to score
        log.debug("no structure metrics on distance nodes %s", distances.tolist())
    return out


def _summary(groups):
    summary = {"rel_err_floor_mag": REL_ERR_FLOOR}
    for name, m in groups.items():
        if not m["n"]:
            continue
        summary[name] = {
            "n_examples": m["n"],
            "n_sightlines": m.get("n_sightlines", 0),
            "coverage68": round(m["coverage68_all"], 4),
            "median_rel_err": {k: round(v["median_rel_err"], 4) for k, v in m["at"].items()},
            "bias_mag": {k: round(v["bias"], 4) for k, v in m["at"].items()},
            "rms_mag": {k: round(v["rms"], 4) for k, v in m["at"].items()},
            "structure": m.get("structure", {}),
        }
    return summary


def evaluate_model(model, config, workdir, *, out_dir=None, n_jobs=1, progress_bar=False,
                   providers="cpu"):
    """
    Evaluate a model on the evaluation sightlines of a training configuration.

    The examples are generated exactly like the training examples (same Galaxy
    model, profiles and mock observation) but for the configuration's
    ``evaluation.inside`` and ``evaluation.outside`` sightlines, and cached in
    ``workdir``. The ONNX model (not the torch network) is scored.

    Parameters
    ----------
    model : path-like or `~cnnext.model.CNNModel`
        The model to evaluate.
    config : `~cnnext.training.presets.TrainingConfig`
        Gives the evaluation sightlines and how to make examples.
    workdir : path-like
        Work directory (evaluation examples are cached under ``dataset/``).
    out_dir : path-like, optional
        Where ``metrics.json`` and the PNG figures go (default ``workdir/evaluation``).
    n_jobs : int
        Processes for generating the examples.
    progress_bar : bool
        Show progress bars.
    providers : str
        onnxruntime providers for the model.

    Returns
    -------
    report : dict
        ``{"groups": {"inside": metrics, "outside": metrics}, "summary": {...},
        "files": [...]}``; ``summary`` is what goes into the model metadata.
    """
    from ..model import CNNModel
    from ..plotting import plot_validation_metrics, plot_validation_profiles
    from .dataset import generate_evaluation_set, load_examples

    if not isinstance(model, CNNModel):
        model = CNNModel(model, providers=providers)
    workdir = Path(workdir)
    out_dir = Path(out_dir) if out_dir is not None else workdir / "evaluation"
    out_dir.mkdir(parents=True, exist_ok=True)
    generate_evaluation_set(config, workdir, n_jobs=n_jobs, progress_bar=progress_bar)
    spec = config.dataset.spec
    if model.spec != spec or len(model.distances) != len(config.dataset.distances):
        raise ValueError("the model's CMD spec or distance nodes differ from the "
                         "configuration's: evaluate it with the configuration it was "
                         "trained with")
    groups, files = {}, []
    per_sightline = {}
    for name in ("inside", "outside"):
        coords = getattr(config.evaluation, name)
        if not coords:
            continue
        ex = load_examples(workdir, f"eval_{name}", config=config)
        cmds = spec.transform_counts(ex.counts) if len(ex) else \
            np.zeros((0,) + spec.shape, np.float32)
        pred, sigma = model.predict(cmds, ex.obs, progress_bar=progress_bar) if len(ex) else \
            (np.zeros_like(ex.av, dtype=float),) * 2
        truth = ex.av.astype(float)
        metrics = profile_metrics(truth, pred, sigma, model.distances)
        metrics["n_sightlines"] = len(coords)
        metrics["sightlines"] = coords
        metrics["min_n_stars"] = int(ex.n_stars.min()) if len(ex) else 0
        metrics["median_n_stars"] = float(np.median(ex.n_stars)) if len(ex) else 0.0
        groups[name] = metrics
        per_sightline[name] = []
        for i, (l, b) in enumerate(coords):
            sel = ex.sightline == i
            m = profile_metrics(truth[sel], pred[sel], sigma[sel], model.distances)
            per_sightline[name].append({"l": l, "b": b, "n": m["n"],
                                        "coverage68": m["coverage68_all"], "at": m["at"]})
        labels = [f"l={l:.1f}°, b={b:+.1f}°" for l, b in coords]
        png = plot_validation_profiles(model.distances, truth, pred, sigma, ex.sightline, labels,
                            out_dir / f"profiles_{name}.png",
                            title=f"{config.name}: {name} the training region")
        if png is not None:
            files.append(str(png))
    if groups:
        files.append(str(plot_validation_metrics(groups, out_dir / "metrics.png")))
    summary = _summary(groups)
    report = {"model": str(model.path), "sha256": model.sha256, "groups": groups,
              "per_sightline": per_sightline, "summary": summary, "files": files}
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=1))
    files.append(str(out_dir / "metrics.json"))
    for name, s in summary.items():
        if isinstance(s, dict):
            log.info("%s: median relative error %s, 68%% coverage %.3f", name,
                     s["median_rel_err"], s["coverage68"])
            if s["structure"]:
                log.info("%s: density correlation %s, ring share %s", name,
                         {k: v["density_r"] for k, v in s["structure"].items()
                          if k.endswith("pc")},
                         {k: v["ring_share"] for k, v in s["structure"].items()
                          if k.endswith("pc")})
    return report


def calibrate_sigma(model, examples, spec, *, coverage=0.6827):
    """
    The factor that makes a model's ±1 ``sigma`` band hold ``coverage`` of the truth.

    The quantile ``coverage`` of ``|pred - true| / sigma`` over every example and
    distance node: multiplying ``sigma`` by it gives that coverage on these
    examples. Use examples the model was not fitted on (the training's
    validation split). `~cnnext.training.train.train_model` uses it for ensembles
    (``average_with``), whose root-mean-square ``sigma`` tends to be too wide.

    Parameters
    ----------
    model : `~cnnext.model.CNNModel`
    examples : `~cnnext.training.dataset.Examples`
        Examples with their true profiles.
    spec : `~cnnext.cmds.CMDSpec`
        Turns the examples' counts into the model's input.
    coverage : float
        Wanted share of the truth inside ±1 sigma (68.27 % for a Gaussian).

    Returns
    -------
    float
    """
    if len(examples) == 0:
        raise ValueError("calibrate_sigma needs examples")
    pred, sigma = model.predict(spec.transform_counts(examples.counts), examples.obs)
    z = np.abs(pred - examples.av.astype(float)) / sigma
    return float(np.quantile(z[np.isfinite(z)], coverage))
