# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Export a trained network to a cnnext ONNX file with its full metadata.

The graph is written layer by layer with `onnx.helper` from the network's
weights rather than traced by ``torch.onnx.export``: the networks are plain
stacks of convolutions, poolings and dense layers, the result does not depend
on which of torch's exporters a given torch version ships, and the file holds
exactly the operators onnxruntime needs (opset 17). `check_export` verifies
that onnxruntime and torch agree.
"""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..io.core import atomic_write_bytes
from ..model import INPUT_NAME, OBS_INPUT_NAME, OUTPUT_NAMES, ModelMetadata

__all__ = ["export_onnx", "network_to_onnx", "check_export", "update_metadata",
           "average_models", "split_average", "OPSET", "FLOAT16_TOLERANCE"]

log = logging.getLogger(__name__)

#: ONNX operator set of exported models.
OPSET = 17


class _GraphBuilder:
    def __init__(self):
        from onnx import numpy_helper

        self._np = numpy_helper
        self.nodes = []
        self.inits = []
        self._n = 0

    def name(self, prefix):
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, array, prefix="c"):
        name = self.name(prefix)
        self.inits.append(self._np.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, prefix=None, n_out=1, **attrs):
        from onnx import helper

        outs = [self.name(prefix or op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _emit_layer(g, layer, x):
    """Append the ONNX nodes of one torch layer; return the output name."""
    from torch import nn

    if isinstance(layer, nn.Sequential):
        for sub in layer:
            x = _emit_layer(g, sub, x)
        return x
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1 or _pair(layer.dilation) != [1, 1] or \
                layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError(f"cannot export {layer!r}: only plain convolutions are supported")
        ph, pw = _pair(layer.padding)
        inputs = [x, g.const(layer.weight.detach().cpu().numpy().astype(np.float32), "w")]
        if layer.bias is not None:
            inputs.append(g.const(layer.bias.detach().cpu().numpy().astype(np.float32), "b"))
        return g.node("Conv", inputs, kernel_shape=_pair(layer.kernel_size),
                      strides=_pair(layer.stride), pads=[ph, pw, ph, pw])
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        if layer.groups != 1 or tuple(layer.dilation) != (1,) or \
                layer.padding_mode != "zeros" or isinstance(layer.padding, str) or \
                tuple(getattr(layer, "output_padding", (0,))) != (0,):
            raise ValueError(f"cannot export {layer!r}: only plain convolutions are supported")
        inputs = [x, g.const(layer.weight.detach().cpu().numpy().astype(np.float32), "w")]
        if layer.bias is not None:
            inputs.append(g.const(layer.bias.detach().cpu().numpy().astype(np.float32), "b"))
        op = "Conv" if isinstance(layer, nn.Conv1d) else "ConvTranspose"
        (pad,) = layer.padding
        return g.node(op, inputs, kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[pad, pad])
    if isinstance(layer, nn.ReLU):
        return g.node("Relu", [x])
    if isinstance(layer, nn.MaxPool2d):
        kernel = _pair(layer.kernel_size)
        stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        pad = _pair(layer.padding)
        if layer.ceil_mode or _pair(layer.dilation) != [1, 1]:
            raise ValueError(f"cannot export {layer!r}: ceil_mode/dilation unsupported")
        return g.node("MaxPool", [x], kernel_shape=kernel, strides=stride,
                      pads=[pad[0], pad[1], pad[0], pad[1]])
    if isinstance(layer, nn.Flatten):
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise ValueError("only Flatten(start_dim=1) is supported")
        return g.node("Flatten", [x], axis=1)
    if isinstance(layer, nn.Dropout):
        return x  # identity at inference
    if isinstance(layer, nn.Linear):
        inputs = [x, g.const(layer.weight.detach().cpu().numpy().astype(np.float32), "w")]
        if layer.bias is not None:
            inputs.append(g.const(layer.bias.detach().cpu().numpy().astype(np.float32), "b"))
        return g.node("Gemm", inputs, transB=1)
    raise ValueError(f"cannot export layer {type(layer).__name__} to ONNX")


def _emit_head(g, head, x):
    """The ``(batch, 2 * n_dist)`` output of a profile head before its softplus."""
    from .network import ConvProfileHead

    if not isinstance(head, ConvProfileHead):
        return _emit_layer(g, head.linear, x)
    h = g.node("Relu", [_emit_layer(g, head.seed, x)])
    h = g.node("Reshape", [h, g.const(np.array([-1, head.width, head.n_coarse],
                                                np.int64), "shape")])
    h = g.node("Relu", [_emit_layer(g, head.up, h)])
    h = _emit_layer(g, head.out, g.node("Relu", [_emit_layer(g, head.conv, h)]))
    h = g.node("Slice", [h, g.const(np.array([0], np.int64), "start"),
                         g.const(np.array([head.n_dist], np.int64), "end"),
                         g.const(np.array([2], np.int64), "axes")])
    h = g.node("Flatten", [h], axis=1)
    bias = head.output_bias.detach().cpu().numpy().astype(np.float32)
    return g.node("Add", [h, g.const(bias, "b")])


def network_to_onnx(net, input_shape, *, graph_name="cnnext"):
    """
    Build the ONNX graph of a `~cnnext.training.network.CompactCNN` or `PaperCNN`.

    Parameters
    ----------
    net : `torch.nn.Module`
        A network with ``features``, ``dense`` and ``head`` parts.
    input_shape : tuple of int
        ``(channels, n_mag, n_colour)``.
    graph_name : str
        Name of the ONNX graph.

    Returns
    -------
    model : `onnx.ModelProto`
        Input ``cmd`` ``(batch, *input_shape)`` (and ``obs`` ``(batch, n_obs)``
        for networks that read observation descriptors); outputs ``av`` and
        ``sigma`` ``(batch, n_dist)``; no metadata yet.
    """
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    x = _emit_layer(g, net.features, INPUT_NAME)
    n_obs = int(getattr(net, "n_obs", 0))
    if n_obs:
        x = g.node("Concat", [x, OBS_INPUT_NAME], axis=1)
    x = _emit_layer(g, net.dense, x)
    head = net.head
    n = head.n_dist
    raw = _emit_head(g, head, x)
    raw_inc, raw_sig = g.node("Split", [raw, g.const(np.array([n, n], np.int64), "split")],
                              n_out=2, axis=1)
    scale = g.const(np.array(head.inc_scale, np.float32), "scale")
    inc = g.node("Mul", [g.node("Softplus", [raw_inc]), scale])
    av = OUTPUT_NAMES[0]
    g.nodes.append(helper.make_node("CumSum", [inc, g.const(np.array(1, np.int64), "axis")],
                                    [av]))
    sig = g.node("Mul", [g.node("Softplus", [raw_sig]), scale])
    g.nodes.append(helper.make_node(
        "Add", [sig, g.const(np.array(head.sigma_floor, np.float32), "floor")],
        [OUTPUT_NAMES[1]]))
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                            ["batch", *map(int, input_shape)])]
    if n_obs:
        inputs.append(helper.make_tensor_value_info(OBS_INPUT_NAME, TensorProto.FLOAT,
                                                    ["batch", n_obs]))
    graph = helper.make_graph(
        g.nodes, graph_name, inputs,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n])
         for name in OUTPUT_NAMES],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cnnext.training")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    return model


def check_export(net, path, *, n=8, seed=0, atol=1e-5, rtol=1e-5):
    """
    Compare onnxruntime on ``path`` with torch on ``net`` for random CMDs.

    Parameters
    ----------
    net : `torch.nn.Module`
        The network that was exported.
    path : str or path-like
        The ONNX file.
    n : int
        Number of random CMDs (drawn like sparse star-count histograms).
    seed : int
        Seed of the random CMDs.
    atol, rtol : float
        Tolerances.

    Returns
    -------
    max_abs_diff : float
        Largest absolute difference over both outputs.

    Raises
    ------
    AssertionError
        If the outputs differ by more than the tolerances.
    """
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape[1:]
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0, 3, size=(n, *shape)) ** 2)
    cmds = (0.5 * np.log1p(counts)).astype(np.float32)
    feeds = {INPUT_NAME: cmds}
    n_obs = int(getattr(net, "n_obs", 0))
    obs = rng.normal(0.0, 0.5, (n, n_obs)).astype(np.float32) if n_obs else None
    if n_obs:
        feeds[OBS_INPUT_NAME] = obs
    ort_out = session.run(list(OUTPUT_NAMES), feeds)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        torch_out = [t.cpu().numpy() for t in net(
            torch.from_numpy(cmds).to(device),
            None if obs is None else torch.from_numpy(obs).to(device))]
    net.train(was_training)
    worst = 0.0
    for name, a, b in zip(OUTPUT_NAMES, ort_out, torch_out):
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol,
                                   err_msg=f"ONNX and torch disagree on {name!r}")
        worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


#: Tolerances of the checks of a file whose weights are stored as float16: rounding a
#: weight to float16 changes it by up to 2**-11 of itself; for the same ensemble stored
#: both ways, ``benchmarks/bench_structure.py`` prints the same demo figures.
FLOAT16_TOLERANCE = 1e-2


def _store_float16(model, *, min_size=1024):
    """
    Store the large float32 weights of an ONNX model as float16, in place.

    Each float32 initializer of at least ``min_size`` values is replaced by its
    float16 rounding and a ``Cast`` back to float32 under the original name, so the
    arithmetic stays float32 and the file is about half the size. Small tensors
    (biases, scales) stay float32.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits, casts = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= min_size:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16),
                                           f"{init.name}_float16")
            inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name],
                                          to=TensorProto.FLOAT))
        else:
            inits.append(init)
    nodes = casts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def export_onnx(net, path, metadata, *, check=True, float16=False):
    """
    Write a trained network and its metadata to a cnnext ONNX file.

    Parameters
    ----------
    net : `torch.nn.Module`
        A trained `~cnnext.training.network.CompactCNN` or `PaperCNN`.
    path : str or path-like
        Output file (``.onnx``).
    metadata : `~cnnext.model.ModelMetadata`
        CMD spec, distances, HEALPix order, law, limits, training and metrics.
    check : bool
        Verify with `check_export` that onnxruntime reproduces torch to 1e-5 (to
        `FLOAT16_TOLERANCE` with ``float16``).
    float16 : bool
        Store the weights as float16 (half the file; the arithmetic stays float32).

    Returns
    -------
    path : `pathlib.Path`

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cnnext import CMDSpec, ExtinctionLaw
    >>> from cnnext.model import CNNModel, ModelMetadata
    >>> from cnnext.training.network import CompactCNN
    >>> from cnnext.training.export import export_onnx
    >>> meta = ModelMetadata(CMDSpec(), [0.1 * k for k in range(1, 101)], 7,
    ...                      ExtinctionLaw("G23", 3.1))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
    >>> _ = export_onnx(CompactCNN((2, 64, 64), 100), path, meta)
    >>> CNNModel(path, providers="cpu").order
    7
    """
    import onnx

    if not isinstance(metadata, ModelMetadata):
        raise TypeError(f"metadata must be a ModelMetadata, got {type(metadata).__name__}")
    n_dist = net.head.n_dist
    if n_dist != len(metadata.distances):
        raise ValueError(f"network has {n_dist} outputs but the metadata lists "
                         f"{len(metadata.distances)} distance nodes")
    n_obs = int(getattr(net, "n_obs", 0))
    if n_obs != len(metadata.observation.get("descriptors", ())):
        raise ValueError(f"network reads {n_obs} observation descriptors but the metadata "
                         f"names {len(metadata.observation.get('descriptors', ()))}")
    model = network_to_onnx(net, metadata.cmd_spec.shape)
    if float16:
        _store_float16(model)
    metadata.write(model)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the bytes onnx.save writes, but complete-or-absent
    atomic_write_bytes(path, model.SerializeToString())
    if check:
        tol = FLOAT16_TOLERANCE if float16 else 1e-5
        diff = check_export(net, path, atol=tol, rtol=tol)
        log.info("exported %s (%.2f MB); ONNX vs torch max |diff| %.2e", path,
                 path.stat().st_size / 1e6, diff)
    return path


def _load_with_metadata(path):
    """Load a cnnext ONNX file: ``(onnx.ModelProto, ModelMetadata)``."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    return model, ModelMetadata.from_props(props, source=f"model file {str(path)!r}")


def update_metadata(path, **changes):
    """
    Change fields of the metadata of an existing cnnext ONNX file, in place.

    The weights are untouched (the file's SHA-256 changes, as its metadata does).

    Parameters
    ----------
    path : str or path-like
        A cnnext ONNX file.
    **changes
        `~cnnext.model.ModelMetadata` fields to replace, e.g. ``metrics={...}`` or
        ``min_stars=300``.

    Returns
    -------
    metadata : `~cnnext.model.ModelMetadata`
        The new metadata.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> from cnnext.training.export import update_metadata
    >>> path = write_tiny_model(pathlib.Path(tempfile.mkdtemp()) / "m.onnx")
    >>> _ = update_metadata(path, metrics={"inside": {"coverage68": 0.7}})
    >>> CNNModel(path, providers="cpu").metadata.metrics
    {'inside': {'coverage68': 0.7}}
    """
    path = Path(path)
    model, meta = _load_with_metadata(path)
    unknown = set(changes) - set(meta.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown metadata fields {sorted(unknown)}")
    for key, value in changes.items():
        setattr(meta, key, value)
    meta.__post_init__()
    meta.write(model)
    # the bytes onnx.save writes, but complete-or-absent
    atomic_write_bytes(path, model.SerializeToString())
    return meta


#: Metadata fields that models averaged together must share.
_SHARED_FIELDS = ("cmd_spec", "healpix_order", "extinction_law", "observation")


def average_models(paths, out, *, sigma_scale=1.0, check=True, float16=False):
    """
    Write one cnnext ONNX model that averages several (an ensemble).

    The members read the same inputs; the ensemble returns the mean of their
    cumulative profiles and, as its uncertainty, the root mean square of their
    ``sigma``. Networks trained on different examples or from different starting
    weights make partly independent errors, which the mean reduces.

    The root mean square of the members' ``sigma`` ignores that their mean is more
    accurate than each of them, so it tends to be too wide (on the robustness grid
    of ``benchmarks/bench_robustness.py``, 66-77 % coverage for the shipped pair,
    whose members cover 60-74 %); ``sigma_scale``
    multiplies it (`~cnnext.training.train.train_model` with ``average_with``
    sets it from the training validation examples with
    `~cnnext.training.evaluate.calibrate_sigma`).

    The metadata is the first member's, with ``training["members"]`` listing
    every member's training record and SHA-256 (and ``training["sigma_scale"]``);
    its ``metrics`` are emptied
    (evaluate the ensemble, e.g. with `~cnnext.training.evaluate.evaluate_model`,
    and store them with `update_metadata`). Each file counts once: averaging an
    ensemble with a model weights the ensemble's members less.

    Parameters
    ----------
    paths : list of path-like
        At least two cnnext ONNX files with the same CMD specification,
        distance nodes, HEALPix order, extinction law and observation descriptors.
    out : path-like
        Output file, written atomically.
    sigma_scale : float
        Factor applied to the ensemble's ``sigma`` (positive).
    check : bool
        Verify with onnxruntime that the file returns the members' mean (to 1e-5,
        or `FLOAT16_TOLERANCE` with ``float16``).
    float16 : bool
        Store the weights as float16: half the file (the shipped model's 64 MB
        become 32 MB), the arithmetic stays float32. Members already stored so
        are kept as they are.

    Returns
    -------
    path : `pathlib.Path`

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> from cnnext.training.export import average_models
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> a = write_tiny_model(tmp / "a.onnx", seed=1)
    >>> b = write_tiny_model(tmp / "b.onnx", seed=2)
    >>> both = CNNModel(average_models([a, b], tmp / "ab.onnx"), providers="cpu")
    >>> cmds = np.full((1, 2, 64, 64), 0.1)
    >>> av = [CNNModel(p, providers="cpu").predict(cmds)[0] for p in (a, b)]
    >>> bool(np.allclose(both.predict(cmds)[0], (av[0] + av[1]) / 2, rtol=1e-5))
    True
    """
    import onnx
    from onnx import TensorProto, compose, helper

    from ..model import file_sha256

    paths = [Path(p) for p in paths]
    sigma_scale = float(sigma_scale)
    if not (np.isfinite(sigma_scale) and sigma_scale > 0):
        raise ValueError(f"average_models: sigma_scale must be positive, got {sigma_scale!r}")
    if len(paths) < 2:
        raise ValueError(f"average_models needs at least two models, got {len(paths)}")
    protos, metas = [], []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"model file {str(path)!r} does not exist")
        proto, meta = _load_with_metadata(path)
        protos.append(proto)
        metas.append(meta)
    first = metas[0]
    for path, meta in zip(paths[1:], metas[1:]):
        for name in _SHARED_FIELDS:
            if getattr(meta, name) != getattr(first, name):
                raise ValueError(f"model file {str(path)!r} has another {name} than "
                                 f"{str(paths[0])!r}: only models that read the same "
                                 f"inputs and predict the same nodes can be averaged")
        if not np.array_equal(meta.distances, first.distances):
            raise ValueError(f"model file {str(path)!r} has other distance nodes than "
                             f"{str(paths[0])!r}")
    graph_inputs = list(protos[0].graph.input)
    in_names = [i.name for i in graph_inputs]
    nodes, initializers, outputs = [], [], {name: [] for name in OUTPUT_NAMES}
    for k, proto in enumerate(protos):
        if [i.name for i in proto.graph.input] != in_names:
            raise ValueError(f"model file {str(paths[k])!r} has other inputs than "
                             f"{str(paths[0])!r}")
        prefix = f"m{k}_"
        member = compose.add_prefix(proto, prefix)
        # every member reads the ensemble's inputs under its own prefixed names
        nodes += [helper.make_node("Identity", [name], [prefix + name]) for name in in_names]
        nodes += list(member.graph.node)
        initializers += list(member.graph.initializer)
        for name in OUTPUT_NAMES:
            outputs[name].append(prefix + name)
    av_name, sigma_name = OUTPUT_NAMES
    squares = [f"{name}_sq" for name in outputs[sigma_name]]
    nodes += [helper.make_node("Mean", outputs[av_name], [av_name])]
    nodes += [helper.make_node("Mul", [s, s], [q]) for s, q in zip(outputs[sigma_name], squares)]
    nodes += [helper.make_node("Mean", squares, ["mean_variance"])]
    if sigma_scale == 1.0:
        nodes += [helper.make_node("Sqrt", ["mean_variance"], [sigma_name])]
    else:
        scale = helper.make_tensor("sigma_scale", TensorProto.FLOAT, [], [sigma_scale])
        nodes += [helper.make_node("Sqrt", ["mean_variance"], ["rms_sigma"]),
                  helper.make_node("Constant", [], ["sigma_scale"], value=scale),
                  helper.make_node("Mul", ["rms_sigma", "sigma_scale"], [sigma_name])]
    n_dist = len(first.distances)
    graph = helper.make_graph(
        nodes, "cnnext-average", graph_inputs,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n_dist])
         for name in OUTPUT_NAMES], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cnnext")
    model.ir_version = protos[0].ir_version
    if float16:
        _store_float16(model)
    onnx.checker.check_model(model)
    training = dict(first.training)
    training["sigma_scale"] = sigma_scale
    training["members"] = [{"file": path.name, "sha256": file_sha256(path),
                            "training": meta.training} for path, meta in zip(paths, metas)]
    meta = ModelMetadata(cmd_spec=first.cmd_spec, distances=first.distances,
                         healpix_order=first.healpix_order,
                         extinction_law=first.extinction_law,
                         min_stars=max(m.min_stars for m in metas),
                         mag_limits=first.mag_limits, training=training, metrics={},
                         observation=first.observation)
    meta.write(model)
    out = Path(out)
    atomic_write_bytes(out, model.SerializeToString())
    if check:
        tol = FLOAT16_TOLERANCE if float16 else 1e-5
        _check_average(paths, out, sigma_scale=sigma_scale, tol=tol)
    log.info("averaged %d models into %s", len(paths), out)
    return out


def split_average(path, out_dir, *, check=True):
    """
    Write each network of an averaged model (`average_models`) to its own file.

    The inverse of `average_models`: to add a network to an ensemble, or to drop
    one, split the ensemble and average the networks again (averaging an ensemble
    with a model would weight the ensemble's networks less). Each network reads and
    returns exactly what it did inside the ensemble, its weights stored as they are
    there (float16 where the ensemble holds them so; the files are therefore not
    byte-identical to the ones averaged, and their SHA-256 differ from those in the
    ensemble's ``training["members"]``). A member that was itself an ensemble is
    written as one (split it in turn).

    Each file's metadata is the ensemble's, with the member's own training record
    as ``training`` and empty ``metrics`` (evaluate the network to fill them).

    Parameters
    ----------
    path : path-like
        A cnnext ONNX file written by `average_models`.
    out_dir : path-like
        Directory for the networks (created if needed). Each is named after the
        file it was averaged from (``training["members"][k]["file"]``), or
        ``member<k>.onnx`` where two would share a name; files are written
        atomically and existing ones replaced.
    check : bool
        Verify with onnxruntime that the networks' mean (with the ensemble's
        ``sigma_scale``) returns what the ensemble returns.

    Returns
    -------
    paths : list of `pathlib.Path`
        The networks' files, in the ensemble's order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> from cnnext.training.export import average_models, split_average
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> a = write_tiny_model(tmp / "a.onnx", seed=1)
    >>> b = write_tiny_model(tmp / "b.onnx", seed=2)
    >>> ab = average_models([a, b], tmp / "ab.onnx")
    >>> [p.name for p in split_average(ab, tmp / "members")]
    ['a.onnx', 'b.onnx']
    """
    import onnx
    from onnx import helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    proto, meta = _load_with_metadata(path)
    members = meta.training.get("members")
    if not members:
        raise ValueError(f"model file {str(path)!r} is not an average of models: its "
                         f"metadata lists no training['members']")
    graph = proto.graph
    in_names = {i.name for i in graph.input}
    names = [Path(str(m.get("file") or f"member{k}.onnx")).name for k, m in enumerate(members)]
    names = [n if names.count(n) == 1 else f"member{k}.onnx" for k, n in enumerate(names)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, member in enumerate(members):
        prefix = f"m{k}_"

        def strip(name, prefix=prefix):
            return name[len(prefix):] if name.startswith(prefix) else name

        nodes = []
        for node in graph.node:
            if not node.output or not all(o.startswith(prefix) for o in node.output):
                continue  # another member's node, or the averaging
            if node.op_type == "Identity" and node.input[0] in in_names:
                continue  # the ensemble's input handed to this member: read it directly
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = strip(node.name)
            copy.input[:] = [strip(x) for x in node.input]
            copy.output[:] = [strip(x) for x in node.output]
            nodes.append(copy)
        inits = []
        for init in graph.initializer:
            if init.name.startswith(prefix):
                copy = onnx.TensorProto()
                copy.CopyFrom(init)
                copy.name = strip(init.name)
                inits.append(copy)
        if not nodes:
            raise ValueError(f"model file {str(path)!r} lists {len(members)} members but "
                             f"holds no nodes of member {k} (prefix {prefix!r})")
        sub = helper.make_graph(nodes, f"cnnext-member{k}", list(graph.input),
                                list(graph.output), initializer=inits)
        model = helper.make_model(sub, opset_imports=list(proto.opset_import),
                                  producer_name="cnnext")
        model.ir_version = proto.ir_version
        replace(meta, training=dict(member.get("training") or {}), metrics={}).write(model)
        onnx.checker.check_model(model)
        out = out_dir / names[k]
        atomic_write_bytes(out, model.SerializeToString())
        paths.append(out)
    if check:
        _check_average(paths, path, sigma_scale=float(meta.training.get("sigma_scale", 1.0)))
    log.info("split %s into %d models in %s", path, len(paths), out_dir)
    return paths


def _check_average(paths, out, *, sigma_scale=1.0, n=4, seed=0, tol=1e-5):
    """Check with onnxruntime that ``out`` returns the mean of the models ``paths``."""
    from ..model import CNNModel

    models = [CNNModel(p, providers="cpu") for p in paths]
    ensemble = CNNModel(out, providers="cpu")
    rng = np.random.default_rng(seed)
    cmds = rng.uniform(0.0, 1.0, size=(n, *ensemble.spec.shape)).astype(np.float32)
    obs = rng.normal(0.0, 0.3, size=(n, len(ensemble.descriptors))).astype(np.float32) \
        if ensemble.descriptors else None
    runs = [m.predict(cmds, obs) for m in models]
    av, sigma = ensemble.predict(cmds, obs)
    want_av = np.mean([r[0] for r in runs], axis=0)
    want_sigma = sigma_scale * np.sqrt(np.mean([r[1] ** 2 for r in runs], axis=0))
    if not (np.allclose(av, want_av, rtol=tol, atol=tol)
            and np.allclose(sigma, want_sigma, rtol=tol, atol=tol)):
        raise RuntimeError(f"{out}: the averaged model does not return its members' mean")
