# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training cnnext models from synthetic data.

The pipeline behind ``cnnext train``: synthetic examples (`generate_dataset`),
the networks (`CompactCNN`, the shipped one, and the paper-style `PaperCNN`),
the training loop (`fit`, `train_model`), the ONNX export with full metadata
(`export_onnx`; `average_models` makes an ensemble of several) and the
evaluation on held-out sightlines (`evaluate_model`).
Configurations are `TrainingConfig` objects, read from TOML files
(`load_config`) or presets (`load_preset`: ``"carina"``, ``"carina-a"``,
``"perseus"``, ``"tiny"``).

The network parts need PyTorch and onnx (``pip install "cnnext[train]"``); they
are imported on first use.
"""

__all__ = ["TrainingConfig", "load_config", "load_preset", "list_presets",
           "generate_dataset", "generate_evaluation_set", "load_examples", "Examples",
           "CompactCNN", "PaperCNN", "build_network", "fit", "train_model",
           "export_onnx", "update_metadata", "average_models", "evaluate_model",
           "calibrate_sigma", "profile_metrics"]

_LAZY = {
    "TrainingConfig": "presets", "load_config": "presets", "load_preset": "presets",
    "list_presets": "presets",
    "generate_dataset": "dataset", "generate_evaluation_set": "dataset",
    "load_examples": "dataset", "Examples": "dataset",
    "CompactCNN": "network", "PaperCNN": "network", "build_network": "network",
    "fit": "train", "train_model": "train",
    "export_onnx": "export", "update_metadata": "export", "average_models": "export",
    "evaluate_model": "evaluate", "profile_metrics": "evaluate",
    "calibrate_sigma": "evaluate",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
