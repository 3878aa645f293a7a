# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How much dust a trained network loses to its dropout, and what the refit of its
output biases gives back (``[training] bias_refit_epochs``; docs: Training,
"Dropout and the softplus").

Reads a training work directory (``cnnext train --workdir DIR``: its
``config.json``, the best weights in ``checkpoints/last.pt`` and the validation
examples) and prints, at 1, 2, 4, 6 and 8 kpc, the mean error of the cumulative
A_V (prediction - truth, mag) and the validation loss of the network

* as it is run (dropout off),
* averaged over ``--passes`` runs with dropout on (what it was trained to get
  right: the gap to the first row is the dropout's bias),
* with its output biases refitted with dropout off for ``--refit`` passes over
  the training examples (`cnnext.training.train.refit_head_bias`, computed here;
  the work directory is not changed).

Usage::

    python benchmarks/bench_dropout_bias.py --workdir cnnext-train-carina-d
    python benchmarks/bench_dropout_bias.py --workdir runs/c --n 2000 --refit 2
"""

import argparse
import json
from pathlib import Path

import numpy as np

REPORT_KPC = (1, 2, 4, 6, 8)


def _predict(net, examples, spec, index, *, passes=0, batch_size=512):
    """Cumulative A_V and sigma: dropout off, or the mean over passes with it on."""
    import torch

    from cnnext.training.train import _batches

    av, sigma = [], []
    with torch.no_grad():
        for x, o, _ in _batches(examples, spec, index, batch_size, "cpu"):
            net.eval()
            if not passes:
                a, s = net(x, o)
            else:
                for module in net.modules():
                    if isinstance(module, torch.nn.Dropout):
                        module.train()
                runs = [net(x, o) for _ in range(passes)]
                a = torch.stack([r[0] for r in runs]).mean(0)
                s = torch.stack([r[1] for r in runs]).mean(0)
                net.eval()
            av.append(a)
            sigma.append(s)
    return torch.cat(av), torch.cat(sigma)


def main(argv=None):
    import torch

    from cnnext.training.dataset import load_examples
    from cnnext.training.network import build_network, profile_loss
    from cnnext.training.presets import TrainingConfig
    from cnnext.training.train import refit_head_bias

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="training work directory")
    parser.add_argument("--n", type=int, default=2000,
                        help="validation examples scored (random subset; default 2000)")
    parser.add_argument("--passes", type=int, default=16,
                        help="runs with dropout on to average (default 16)")
    parser.add_argument("--refit", type=int, default=2,
                        help="passes of the bias refit (0: skip; default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    for name in ("n", "passes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.refit < 0:
        parser.error("--refit must be >= 0")
    workdir = Path(args.workdir)
    ckpt = workdir / "checkpoints" / "last.pt"
    for path in (workdir / "config.json", ckpt):
        if not path.is_file():
            parser.error(f"--workdir: {str(path)!r} does not exist (not a trained "
                         f"cnnext work directory)")
    torch.set_num_threads(args.threads)
    config = TrainingConfig.from_dict(json.loads((workdir / "config.json").read_text()))
    spec, optim = config.dataset.spec, config.training
    net = build_network(config.network.arch, spec.shape, len(config.dataset.distances),
                        **config.network.options)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    net.load_state_dict(state["best_model"] or state["model"])
    val = load_examples(workdir, "val", config=config)
    index = np.sort(np.random.default_rng(0).choice(len(val), min(args.n, len(val)),
                                                    replace=False))
    truth = torch.from_numpy(val.av[index])
    nodes = [int(np.argmin(np.abs(np.asarray(config.dataset.distances) - d)))
             for d in REPORT_KPC]

    def row(label, av, sigma):
        loss = float(profile_loss(av, sigma, truth, beta=optim.beta,
                                  density_weight=optim.density_weight,
                                  density_bins=optim.density_bins))
        bias = (av - truth).mean(0).numpy()
        print(f"{label:<34} {' '.join(f'{bias[k]:+7.3f}' for k in nodes)}   {loss:7.3f}")

    dropout = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    print(f"# {workdir}: {config.name!r}, dropout {dropout}, {len(index)} validation "
          f"examples; mean error of A_V (mag) and validation loss")
    print(f"{'network':<34} {' '.join(f'{d:>5} kpc' for d in REPORT_KPC)}   loss")
    row("dropout off (as it is run)", *_predict(net, val, spec, index))
    row(f"dropout on, mean of {args.passes} runs",
        *_predict(net, val, spec, index, passes=args.passes))
    if args.refit:
        train = load_examples(workdir, "train", config=config)
        refit_head_bias(net, train, spec, optim, epochs=args.refit, seed=config.seed)
        row(f"biases refitted ({args.refit} passes)", *_predict(net, val, spec, index))


if __name__ == "__main__":
    main()
