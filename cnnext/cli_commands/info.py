# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``cnnext info``: show a model's metadata and the execution providers it runs on."""

import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    """Add the options of ``cnnext info`` to ``parser``."""
    parser.add_argument("model", nargs="?", default=None,
                        help="ONNX model file (default: the shipped model)")
    parser.add_argument("--providers", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--json", action="store_true", help="print all metadata as JSON")


def run(args):
    """Run ``cnnext info`` with the parsed ``args``; return the exit status."""
    from ..model import CNNModel

    model = CNNModel(args.model, providers=args.providers)
    meta = model.metadata
    if args.json:
        print(json.dumps({k: json.loads(v) for k, v in meta.to_props().items()}, indent=2))
        return 0
    d = model.distances
    print(f"model       {model.path}")
    print(f"sha256      {model.sha256}")
    print(f"providers   {', '.join(model.providers)}")
    print(f"written by  cnnext {meta.cnnext_version}")
    print(f"input       cmd {model.spec.shape}: "
          + "; ".join(f"{c.label[0]} vs {c.label[1]}" for c in model.spec.channels))
    print(f"distances   {len(d)} nodes, {d[0]:g}-{d[-1]:g} kpc")
    print(f"cells       HEALPix order {model.order} (nested, Galactic)")
    print(f"law         {model.law!r}")
    print(f"min stars   {meta.min_stars}")
    for key, value in sorted(meta.metrics.items()):
        print(f"metric      {key}: {value}")
    return 0
