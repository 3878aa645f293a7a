# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A tiny, deterministic cnnext ONNX model built without torch, for tests.

The model sums each CMD channel, turns the sums into non-negative increments with
a fixed positive matrix and a softplus, and accumulates them: the output profile
is non-decreasing and depends on the input, like a real model's, and its exact
values are easy to recompute in numpy (`tiny_model_reference`).
"""

import numpy as np

from ..cmds import CMDSpec
from ..extinction import ExtinctionLaw
from ..model import INPUT_NAME, OUTPUT_NAMES, ModelMetadata

__all__ = ["write_tiny_model", "tiny_model_reference"]


def _weights(n_channels, n_dist, seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.0, 0.02, size=(n_channels, n_dist))).astype(np.float32)


def tiny_model_reference(cmds, *, n_dist=100, seed=0):
    """
    Numpy version of the tiny model: returns ``(av, sigma)`` for ``cmds``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.testing.models import tiny_model_reference
    >>> av, sigma = tiny_model_reference(np.full((3, 2, 64, 64), 0.01, np.float32))
    >>> av.shape, bool(np.all(np.diff(av, axis=1) >= 0))  # non-decreasing profiles
    ((3, 100), True)
    """
    cmds = np.asarray(cmds, dtype=np.float32)
    sums = cmds.sum(axis=(2, 3), dtype=np.float64)
    inc = np.log1p(np.exp(sums @ _weights(cmds.shape[1], n_dist, seed) - 1.0))
    av = np.cumsum(inc, axis=1)
    return av, 0.1 * av + 0.05


def write_tiny_model(path, *, spec=None, distances=None, order=7, law=None, min_stars=5,
                     seed=0, metadata_overrides=None):
    """
    Write a tiny valid cnnext ONNX model to ``path`` and return the path.

    Parameters
    ----------
    path : str or path-like
        Output file.
    spec : `~cnnext.cmds.CMDSpec`, optional
        Input specification (default ``CMDSpec()``).
    distances : array-like, optional
        Distance nodes in kpc (default 0.1 … 10 kpc every 0.1 kpc).
    order : int
        HEALPix order recorded in the metadata.
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Default ``ExtinctionLaw("G23", 3.1)``.
    min_stars : int
        Minimum star count recorded in the metadata.
    seed : int
        Seed of the fixed weights.
    metadata_overrides : dict, optional
        Extra `~cnnext.model.ModelMetadata` fields (e.g. ``training``, ``metrics``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> path = write_tiny_model(pathlib.Path(tempfile.mkdtemp()) / "tiny.onnx")
    >>> model = CNNModel(path)
    >>> model.order, len(model.distances), model.spec.shape
    (7, 100, (2, 64, 64))
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = CMDSpec() if spec is None else spec
    distances = np.round(np.arange(1, 101) * 0.1, 10) if distances is None else \
        np.asarray(distances, float)
    law = ExtinctionLaw("G23", 3.1) if law is None else law
    n_ch = spec.shape[0]
    n_dist = len(distances)
    w = _weights(n_ch, n_dist, seed)
    nodes = [
        helper.make_node("ReduceSum", [INPUT_NAME, "axes"], ["sums"], keepdims=0),
        helper.make_node("MatMul", ["sums", "w"], ["lin"]),
        helper.make_node("Sub", ["lin", "one"], ["shifted"]),
        helper.make_node("Softplus", ["shifted"], ["inc"]),
        helper.make_node("CumSum", ["inc", "axis1"], [OUTPUT_NAMES[0]]),
        helper.make_node("Mul", [OUTPUT_NAMES[0], "tenth"], ["scaled"]),
        helper.make_node("Add", ["scaled", "floor"], [OUTPUT_NAMES[1]]),
    ]
    inits = [numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(1, np.int64), "axis1"),
             numpy_helper.from_array(np.array(0.1, np.float32), "tenth"),
             numpy_helper.from_array(np.array(0.05, np.float32), "floor")]
    graph = helper.make_graph(
        nodes, "cnnext_tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", *spec.shape])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n_dist])
         for name in OUTPUT_NAMES],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="cnnext.testing")
    model.ir_version = 8
    meta = ModelMetadata(cmd_spec=spec, distances=distances, healpix_order=order,
                         extinction_law=law, min_stars=min_stars,
                         **(metadata_overrides or {}))
    meta.write(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
