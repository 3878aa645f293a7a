# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Benchmarks of cnnext.training and of the shipped model.

Prints three tables:

1. the shipped model (or ``--model``): held-out accuracy from its metadata
   (median relative error of the cumulative A_V at 1-8 kpc, 68% coverage) and
   the wall time of its data generation and training, read from its metadata;
2. CPU inference throughput of the model (CMDs per second, batch 256);
3. with ``--compare WORKDIR``: the compact network against the paper-style
   ``C5x5.12-P2-{D3072}x2-D2048`` network trained on the *same* examples (a
   subset of the dataset in WORKDIR, made by ``cnnext train``) for given numbers
   of epochs, scored on the same held-out sightlines, with their training time
   and ONNX file sizes.

Run::

    python benchmarks/bench_training.py
    python benchmarks/bench_training.py --compare /work/runs/carina --n-train 3000 \
        --n-val 600 --runs compact:30,compact:60,paper:30
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnext.metrics import REPORT_DISTANCES, relative_error

#: the report distances as the keys of the metrics in a model's metadata
_AT = tuple(f"{d:g}" for d in REPORT_DISTANCES)

def _table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for r in rows:
        print(line.format(*r))
    print()


def shipped_metrics(model):
    meta = model.metadata
    tr = meta.training
    print(f"model {model.path.name} ({model.path.stat().st_size / 1e6:.2f} MB, "
          f"sha256 {model.sha256[:12]}), {tr.get('n_train', '?')} training / "
          f"{tr.get('n_val', '?')} validation examples, best epoch "
          f"{tr.get('best_epoch', '?')} of {tr.get('epochs_run', '?')}")
    data = tr.get("dataset_seconds")
    print(f"wall time: data generation {float('nan') if data is None else data:.0f} s, "
          f"training {tr.get('training_seconds', float('nan')):.0f} s")
    rows = []
    for group in ("inside", "outside"):
        s = meta.metrics.get(group)
        if not s:
            continue
        rel = s["median_rel_err"]
        rows.append([group, s["n_sightlines"], s["n_examples"],
                     *(f"{100 * rel.get(d, float('nan')):.1f}%" for d in
                       _AT),
                     f"{100 * s['coverage68']:.1f}%"])
    if rows:
        _table(rows, ["held-out", "sightlines", "examples", "MRE 1kpc", "2kpc", "4kpc",
                      "6kpc", "8kpc", "68% cov."])


def throughput(model, *, batch=256, n_batches=20):
    from cnnext.observation import DESCRIPTORS, REFERENCE

    rng = np.random.default_rng(0)
    cmds = (0.5 * np.log1p(rng.poisson(1.0, size=(batch, *model.spec.shape)))).astype(
        np.float32)
    # the nominal depth for models that read it beside the CMD
    obs = np.tile([REFERENCE[n] for n in DESCRIPTORS], (batch, 1))
    model.predict(cmds, obs, batch_size=batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(n_batches):
        model.predict(cmds, obs, batch_size=batch)
    dt = time.perf_counter() - t0
    return batch * n_batches / dt


def compare(workdir, n_train, n_val, runs, seed, threads):
    import torch

    from cnnext.model import CNNModel, ModelMetadata
    from cnnext.training.dataset import Examples, load_examples
    from cnnext.training.evaluate import profile_metrics
    from cnnext.training.export import export_onnx
    from cnnext.training.network import build_network, count_parameters
    from cnnext.training.presets import TrainingConfig, load_preset
    from cnnext.training.train import fit

    workdir = Path(workdir)
    config = TrainingConfig.from_dict(json.loads((workdir / "config.json").read_text()))
    spec = config.dataset.spec
    rng = np.random.default_rng(seed)

    def subset(ex, n):
        sel = np.sort(rng.choice(len(ex), size=min(n, len(ex)), replace=False))
        return Examples(ex.counts[sel], ex.av[sel], ex.n_stars[sel], ex.sightline[sel],
                        ex.realisation[sel], ex.obs[sel])

    # check=False: the dataset may predate options added to the configuration since
    train = subset(load_examples(workdir, "train", config=config, check=False), n_train)
    val = subset(load_examples(workdir, "val", config=config, check=False), n_val)
    test = load_examples(workdir, "eval_inside", config=config, check=False)
    rows, preds = [], []
    for arch, n_epochs in runs:
        # the compact network as shipped now (the carina preset's options), whatever
        # options the dataset's run used; the paper-style network at its defaults
        options = load_preset("carina").network.options if arch == "compact" else {}
        optim = config.training.__class__(**{**config.training.__dict__, "epochs": n_epochs,
                                             "patience": n_epochs, "threads": threads})
        torch.manual_seed(seed)
        net = build_network(arch, spec.shape, len(config.dataset.distances), **options)
        t0 = time.perf_counter()
        res = fit(net, train, val, spec, optim, seed=seed, device="auto")
        dt = time.perf_counter() - t0
        from cnnext.observation import DESCRIPTORS

        meta = ModelMetadata(spec, config.dataset.distances, config.region.healpix_order,
                             config.dataset.law,
                             observation={"descriptors": list(DESCRIPTORS)}
                             if getattr(net, "n_obs", 0) else {})
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(net, Path(tmp) / f"{arch}.onnx", meta)
            size = path.stat().st_size
            model = CNNModel(path, providers="cpu")
            av, sigma = model.predict(spec.transform_counts(test.counts), test.obs)
            speed = throughput(model, n_batches=3)
        m = profile_metrics(test.av, av, sigma, config.dataset.distances)
        preds.append((f"{arch}:{n_epochs}", av))
        rows.append([arch, n_epochs, f"{count_parameters(net) / 1e6:.2f} M",
                     f"{size / 1e6:.1f} MB",
                     *(f"{100 * m['at'][d]['median_rel_err']:.1f}%" for d in
                       _AT),
                     f"{100 * m['coverage68_all']:.1f}%", f"{res.best_val_loss:.3f}",
                     f"{dt:.0f} s", f"{speed:.0f}"])
    print(f"compact vs paper-style on the same data: {len(train)} training, {len(val)} "
          f"validation examples from {workdir}, trained on the CPU, scored on "
          f"{len(test)} held-out examples inside the region")
    _table(rows, ["network", "epochs", "weights", "ONNX", "MRE 1kpc", "2kpc", "4kpc", "6kpc",
                  "8kpc",
                  "68% cov.", "val loss", "train time", "CMD/s"])
    paired_differences(preds, test.av, config.dataset.distances, seed=seed)


def paired_differences(preds, truth, distances, *, seed=0, n_boot=2000):
    """
    Print compact-minus-paper differences of the median relative error with
    95% intervals from a paired bootstrap over the held-out examples (both
    networks scored on the same resampled examples).
    """
    compact = [(name, av) for name, av in preds if name.startswith("compact")]
    paper = [(name, av) for name, av in preds if name.startswith("paper")]
    if not (compact and paper):
        return
    at = _AT
    nodes = [int(np.argmin(np.abs(np.asarray(distances) - float(d)))) for d in at]
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, len(truth), size=(n_boot, len(truth)))

    def rel(av):
        return relative_error(av[:, nodes], truth[:, nodes])

    rows = []
    for c_name, c_av in compact:
        for p_name, p_av in paper:
            rc, rp = rel(c_av), rel(p_av)
            diff = np.median(rc, axis=0) - np.median(rp, axis=0)
            bdiff = np.median(rc[boot], axis=1) - np.median(rp[boot], axis=1)
            lo, hi = np.percentile(bdiff, [2.5, 97.5], axis=0)
            rows.append([f"{c_name} - {p_name}",
                         *(f"{100 * d:+.1f} [{100 * a:+.1f}, {100 * b:+.1f}]"
                           for d, a, b in zip(diff, lo, hi))])
    print(f"difference of the median relative error (percentage points; negative: the "
          f"compact network is more accurate), 95% paired-bootstrap interval over the "
          f"{len(truth)} held-out examples")
    _table(rows, ["pair", *(f"{d} kpc" for d in at)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--compare", default=None, metavar="WORKDIR",
                        help="train compact and paper-style networks on this dataset")
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-val", type=int, default=1500)
    parser.add_argument("--runs", default="compact:30,compact:60,paper:30",
                        help="comma-separated ARCH:EPOCHS trainings to compare (the "
                             "compact network trains ~5x faster per epoch than the "
                             "paper-style one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for --compare (1 is fastest on a busy machine)")
    args = parser.parse_args()

    import torch

    from cnnext.model import CNNModel

    model = CNNModel(args.model, providers="cpu")
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__} threads "
          f"{torch.get_num_threads()}\n")
    shipped_metrics(model)
    speed = throughput(model)
    _table([[model.path.name, "CPUExecutionProvider", 256, f"{speed:.0f}"]],
           ["model", "provider", "batch", "CMDs/s"])
    if args.compare:
        runs = [(item.split(":")[0].strip(), int(item.split(":")[1]))
                for item in args.runs.split(",") if item.strip()]
        compare(args.compare, args.n_train, args.n_val, runs, args.seed, args.threads)


if __name__ == "__main__":
    main()
