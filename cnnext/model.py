# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ONNX model runtime: load, verify, read metadata, predict (the execution providers
are chosen by `cnnext.execution`).

A cnnext model is one ONNX file. Its input ``cmd`` is the CMD tensor
``(batch, channels, n_mag, n_colour)`` described by the `~cnnext.cmds.CMDSpec` in its
metadata; its outputs are ``av``, the cumulative A_V (mag) at the distance nodes,
and ``sigma``, its 1-sigma uncertainty. Everything else needed to use the model
lives in the file's ``metadata_props`` (see `ModelMetadata`), never in constants
repeated across cnnext.
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .cmds import CMDSpec
from .exceptions import ModelFileError
from .execution import resolve_providers
from .extinction import ExtinctionLaw

__all__ = ["ModelMetadata", "CNNModel", "default_model_path", "resolve_providers",
           "file_sha256", "INPUT_NAME", "OBS_INPUT_NAME", "OUTPUT_NAMES", "SHIPPED_MODEL"]

log = logging.getLogger(__name__)

INPUT_NAME = "cmd"
#: Second input of models that read the observation descriptors beside the CMD.
OBS_INPUT_NAME = "obs"
OUTPUT_NAMES = ("av", "sigma")
#: File name of the shipped model inside ``cnnext/data``.
SHIPPED_MODEL = "cnnext-carina.onnx"
_PREFIX = "cnnext."
FORMAT_VERSION = 1


def file_sha256(path):
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path():
    """
    Return the path of the shipped model file (which may be absent in a source tree).

    Examples
    --------
    >>> from cnnext.model import default_model_path
    >>> default_model_path().suffix
    '.onnx'
    """
    return Path(str(resources.files("cnnext") / "data" / SHIPPED_MODEL))


def _registry():
    """The shipped models' records (``cnnext/data/models.json``), by file name."""
    path = Path(str(resources.files("cnnext") / "data" / "models.json"))
    return json.loads(path.read_text()) if path.exists() else {}


def _shipped_hashes():
    return {name: entry["sha256"] for name, entry in _registry().items()}


@dataclass
class ModelMetadata:
    """
    Everything needed to use a model, stored as JSON strings in ONNX ``metadata_props``.

    Parameters
    ----------
    cmd_spec : `~cnnext.cmds.CMDSpec`
        How the input CMDs are made.
    distances : array-like
        Distance nodes in kpc, increasing; the outputs are cumulative A_V there.
    healpix_order : int
        Order of the nested Galactic HEALPix sightline cells the model was trained on.
    extinction_law : `~cnnext.extinction.ExtinctionLaw`
        The law that reddened the training stars.
    min_stars : int
        Fewer counted stars in a cell than this: the prediction is not trusted (NaN).
    mag_limits : dict
        Faint/bright limits and completeness parameters of the mock observations.
    training : dict
        Region, sightlines, configuration and seed of the training run.
    metrics : dict
        Metrics on held-out synthetic sightlines.
    cnnext_version : str
        Version of cnnext that wrote the file.
    observation : dict
        For models with an ``obs`` input: ``{"descriptors": [names]}``, the
        `cnnext.observation` descriptors the network reads beside the CMD, in
        order. Empty for models that read the CMD only.

    Examples
    --------
    The metadata of the shipped model (``cnnext info`` prints it):

    >>> from cnnext.model import CNNModel
    >>> md = CNNModel().metadata
    >>> md.healpix_order, len(md.distances), md.cmd_spec.shape
    (7, 100, (3, 64, 64))
    >>> sorted(md.metrics)[:2]  # held-out scores, inside and outside the region
    ['inside', 'outside']
    """

    cmd_spec: CMDSpec
    distances: np.ndarray
    healpix_order: int
    extinction_law: ExtinctionLaw
    min_stars: int = 20
    mag_limits: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    cnnext_version: str = ""
    observation: dict = field(default_factory=dict)

    def __post_init__(self):
        self.distances = np.asarray(self.distances, dtype=float)
        if self.distances.ndim != 1 or self.distances.size < 1 or np.any(
                np.diff(self.distances) <= 0) or self.distances[0] <= 0:
            raise ValueError("distances must be positive and strictly increasing (kpc)")
        if not self.cnnext_version:
            from . import __version__
            self.cnnext_version = __version__

    def to_props(self):
        """Return ``{key: json string}`` for ONNX ``metadata_props``."""
        values = {"format_version": FORMAT_VERSION,
                  "cmd_spec": self.cmd_spec.to_dict(),
                  "distances_kpc": self.distances.tolist(),
                  "healpix_order": int(self.healpix_order),
                  "extinction_law": self.extinction_law.to_dict(),
                  "min_stars": int(self.min_stars),
                  "mag_limits": self.mag_limits,
                  "training": self.training,
                  "metrics": self.metrics,
                  "cnnext_version": self.cnnext_version,
                  "observation": self.observation}
        return {_PREFIX + k: json.dumps(v, sort_keys=True) for k, v in values.items()}

    @classmethod
    def from_props(cls, props, *, source="model file"):
        """Parse ``metadata_props``; raise `ModelFileError` naming ``source`` if invalid."""
        try:
            v = {k[len(_PREFIX):]: json.loads(s) for k, s in props.items()
                 if k.startswith(_PREFIX)}
            if v.get("format_version") != FORMAT_VERSION:
                raise KeyError(f"format_version {v.get('format_version')!r}")
            return cls(cmd_spec=CMDSpec.from_dict(v["cmd_spec"]),
                       distances=v["distances_kpc"],
                       healpix_order=v["healpix_order"],
                       extinction_law=ExtinctionLaw.from_dict(v["extinction_law"]),
                       min_stars=v.get("min_stars", 20),
                       mag_limits=v.get("mag_limits", {}),
                       training=v.get("training", {}),
                       metrics=v.get("metrics", {}),
                       cnnext_version=v.get("cnnext_version", "unknown"),
                       observation=v.get("observation", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source} lacks valid cnnext metadata ({exc}); it was "
                                 f"not written by cnnext.training.export_onnx") from None

    def write(self, model_proto):
        """Store the metadata in an `onnx.ModelProto` (replacing cnnext keys)."""
        keep = [p for p in model_proto.metadata_props if not p.key.startswith(_PREFIX)]
        del model_proto.metadata_props[:]
        model_proto.metadata_props.extend(keep)
        for key, value in self.to_props().items():
            entry = model_proto.metadata_props.add()
            entry.key, entry.value = key, value
        return model_proto


def regenerate_shipped_hint(path):
    """
    The commands that regenerate the shipped model, for error messages.

    Parameters
    ----------
    path : str or path-like
        Where the regenerated model is to be written.

    Returns
    -------
    str
        The ``cnnext train`` commands of the shipped model's recipe: one per member
        preset recorded in ``cnnext/data/models.json``, then the average.

    Examples
    --------
    >>> from cnnext.model import regenerate_shipped_hint
    >>> "--preset carina-e" in regenerate_shipped_hint("cnnext-carina.onnx")
    True
    """
    entry = _registry().get(SHIPPED_MODEL, {})
    preset = entry.get("preset", "carina")
    # the first member is the network the last command trains; the others it averages
    members = [m["preset"] for m in entry.get("members", [])][1:]
    return (", ".join(f"`cnnext train --preset {m} --out {m}.onnx`" for m in members)
            + (" and " if members else "") + f"`cnnext train --preset {preset} "
            + "".join(f"--average-with {m}.onnx " for m in members)
            + f"--out {path}` (docs: Training, Reproducing the shipped model)")


class CNNModel:
    """
    A cnnext ONNX model, ready to predict extinction profiles from CMDs.

    Parameters
    ----------
    path : str or path-like, optional
        ONNX file; defaults to the shipped model.
    providers : str or list, optional
        ``"auto"`` (default; CUDA when it really works, else CPU), ``"cpu"``,
        ``"cuda"`` or an explicit onnxruntime providers list.
    sha256 : str, optional
        Expected SHA-256 of the file; the shipped model is always checked against
        the hash recorded in ``cnnext/data/models.json``.
    threads : int, optional
        CPU threads of one inference call (onnxruntime's ``intra_op_num_threads``);
        default: onnxruntime's choice (all cores). Give 1 when several processes
        (e.g. Dask workers) share the machine, so that they do not oversubscribe
        the cores; idle threads then also stop spin-waiting.

    Attributes
    ----------
    metadata : `ModelMetadata`
    sha256 : str
        SHA-256 of the file (used in cache keys and map provenance).
    providers : list of str
        The providers the session really uses (``session.get_providers()``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> path = write_tiny_model(pathlib.Path(tempfile.mkdtemp()) / "tiny.onnx")
    >>> model = CNNModel(path, providers="cpu")
    >>> model.providers
    ['CPUExecutionProvider']
    >>> av, sigma = model.predict(np.zeros((3,) + model.spec.shape))
    >>> av.shape, bool(np.all(np.diff(av, axis=1) >= 0))
    ((3, 100), True)
    """

    def __init__(self, path=None, *, providers="auto", sha256=None, threads=None):
        shipped = path is None
        path = Path(default_model_path() if shipped else os.fspath(path))
        if not path.is_file():
            hint = (" — the shipped model is missing from this installation; regenerate it "
                    "with " + regenerate_shipped_hint(path)) if shipped else ""
            raise ModelFileError(f"model file {str(path)!r} does not exist{hint}")
        self.path = path
        self.sha256 = file_sha256(path)
        expected = sha256 or (_shipped_hashes().get(path.name) if shipped else None)
        if expected and expected != self.sha256:
            raise ModelFileError(f"model file {str(path)!r} has SHA-256 {self.sha256}, "
                                 f"expected {expected}: the file is corrupted or was "
                                 f"replaced; reinstall cnnext or pass the right file")

        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if isinstance(threads, bool) or int(threads) != threads or threads < 1:
                raise ValueError(f"threads must be a positive integer, got {threads!r}")
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=resolve_providers(providers))
        except ValueError:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelFileError(f"model file {str(path)!r} is not a valid ONNX model: "
                                 f"{exc}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=f"model file {str(path)!r}")
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        expected = [INPUT_NAME, OBS_INPUT_NAME] if self.descriptors else [INPUT_NAME]
        if inputs != expected or tuple(outputs[:2]) != OUTPUT_NAMES:
            raise ModelFileError(f"model file {str(path)!r} has inputs {inputs} and outputs "
                                 f"{outputs}; cnnext expects {expected} and "
                                 f"{list(OUTPUT_NAMES)}")
        log.debug("loaded %s (sha256 %s) on %s", path, self.sha256, self.providers)

    def __repr__(self):
        return (f"<CNNModel {self.path.name} sha256={self.sha256[:12]} order="
                f"{self.order} n_dist={len(self.distances)} providers={self.providers}>")

    @property
    def providers(self):
        """Execution providers the session really uses."""
        return self.session.get_providers()

    @property
    def spec(self):
        """The `~cnnext.cmds.CMDSpec` of the model's input."""
        return self.metadata.cmd_spec

    @property
    def distances(self):
        """Distance nodes in kpc."""
        return self.metadata.distances

    @property
    def order(self):
        """HEALPix order of the sightline cells."""
        return self.metadata.healpix_order

    @property
    def law(self):
        """The `~cnnext.extinction.ExtinctionLaw` of the training data."""
        return self.metadata.extinction_law

    @property
    def descriptors(self):
        """
        Names of the observation descriptors the network reads beside the CMD.

        An empty tuple for models that read the CMD only; see `cnnext.observation`.
        """
        return tuple(self.metadata.observation.get("descriptors", ()))

    def predict(self, cmds, obs=None, *, batch_size=None, progress_bar=False):
        """
        Predict cumulative A_V profiles and their 1-sigma uncertainties.

        Parameters
        ----------
        cmds : array-like
            CMD tensor ``(n, channels, n_mag, n_colour)`` made with `spec`.
        obs : array-like, optional
            Observation descriptors ``(n, 6)`` in mag, in the order of
            `cnnext.observation.DESCRIPTORS` (as `cnnext.observation.estimate_cells`
            returns them), for models that read them (`descriptors` not empty);
            NaN entries count as the nominal 2MASS observation. Ignored by models
            that read the CMD only.
        batch_size : int, optional
            CMDs per inference call; defaults to ``cnnext.conf.batch_size``.
        progress_bar : bool
            Show a tqdm progress bar over batches.

        Returns
        -------
        av, sigma : `numpy.ndarray`
            ``float64`` arrays ``(n, n_dist)`` in mag (A_V).
        """
        from .config import conf

        cmds = np.asarray(cmds, dtype=np.float32)
        if cmds.ndim != 4 or cmds.shape[1:] != self.spec.shape:
            raise ValueError(f"cmds must have shape (n, {', '.join(map(str, self.spec.shape))})"
                             f" for this model, got {cmds.shape}")
        batch_size = int(batch_size or conf.batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = len(cmds)
        feeds = {}
        if self.descriptors:
            from .observation import descriptor_array

            if obs is None:
                raise ValueError(f"model {self.path.name!r} reads the observation "
                                 f"descriptors {list(self.descriptors)} beside the CMD: "
                                 f"pass obs (see cnnext.observation.estimate_cells)")
            from .observation import DESCRIPTORS

            obs = np.asarray(obs, dtype=float)
            if obs.shape != (n, len(DESCRIPTORS)):
                raise ValueError(f"obs must have shape ({n}, {len(DESCRIPTORS)}) (columns "
                                 f"{list(DESCRIPTORS)}), got {obs.shape}")
            feeds[OBS_INPUT_NAME] = descriptor_array(obs, self.descriptors)
        av = np.empty((n, len(self.distances)))
        sigma = np.empty_like(av)
        starts = range(0, n, batch_size)
        if progress_bar:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc="CNN inference", unit="batch")
        for start in starts:
            batch = {name: value[start:start + batch_size] for name, value in feeds.items()}
            batch[INPUT_NAME] = cmds[start:start + batch_size]
            out = self.session.run(list(OUTPUT_NAMES), batch)
            av[start:start + batch_size], sigma[start:start + batch_size] = out
        return av, sigma
