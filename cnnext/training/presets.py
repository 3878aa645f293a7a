# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training configurations: the `TrainingConfig` dataclass, TOML files and presets.

A configuration says everything a training run needs: the training sightlines,
the sightline cells, the distance nodes, the CMD specification, the extinction
law, how many synthetic examples to make and how, the network and the
optimiser, and the sightlines used for evaluation. It is written into the
model's metadata, so that a model file says how it was made.

The presets live as TOML files in ``cnnext/training/presets/``; a user's own
file has the same layout (any key left out takes the default)::

    name = "my-region"
    seed = 1

    [region]
    description = "my fields"
    sightlines = [[30.0, 0.0], [35.0, 2.0]]   # Galactic (l, b) in degrees
    healpix_order = 7

    [dataset]
    n_realisations = 4
    examples_per_realisation = 500

    [training]
    epochs = 20
"""

import copy
import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

import numpy as np

from ..cmds import CMDSpec
from ..extinction import ExtinctionLaw
from ..healpix import check_order

__all__ = ["TrainingConfig", "RegionConfig", "DatasetConfig", "NetworkConfig",
           "OptimConfig", "EvaluationConfig", "load_config", "load_preset",
           "list_presets"]


def _pairs(values, name):
    arr = np.asarray(values, dtype=float).reshape(-1, 2) if len(values) else \
        np.zeros((0, 2))
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite (l, b) pairs in degrees")
    if arr.size and np.any(np.abs(arr[:, 1]) > 90):
        raise ValueError(f"{name}: Galactic latitudes must lie in [-90, 90] deg")
    return [[float(l) % 360.0, float(b)] for l, b in arr]


@dataclass
class RegionConfig:
    """
    Where the model is trained.

    Parameters
    ----------
    sightlines : list of [l, b]
        Galactic coordinates (deg) of the training sightlines; each one is the
        HEALPix cell that contains it.
    healpix_order : int
        Order of the nested Galactic HEALPix cells (7: 27.5', the paper's 30').
    description : str
        Free text, e.g. the sky area the sightlines sample.
    bounds : dict
        Optional ``{"l": [min, max], "b": [min, max]}`` of the region (deg), for
        the record.
    """

    sightlines: list = field(default_factory=lambda: [[280.0, 0.0]])
    healpix_order: int = 7
    description: str = ""
    bounds: dict = field(default_factory=dict)

    def __post_init__(self):
        self.sightlines = _pairs(self.sightlines, "region.sightlines")
        if not self.sightlines:
            raise ValueError("region.sightlines must list at least one (l, b) pair")
        self.healpix_order = check_order(self.healpix_order, "region.healpix_order")


@dataclass
class DatasetConfig:
    """
    How the synthetic examples are made.

    Parameters
    ----------
    source : str
        ``"galaxy"`` for the built-in `~cnnext.synthetic.GalaxyModel`, or the path
        of a directory of Besançon model catalogues (one file per sightline).
    n_realisations : int
        Independent intrinsic star catalogues drawn per sightline.
    n_val_realisations : int
        How many of them (the last ones) are kept for validation: the validation
        stars are never seen in training.
    examples_per_realisation : int
        Extinction profiles (hence CMDs) per intrinsic catalogue.
    chunk_size : int
        Examples per file on disk (the unit of resumption and parallel work).
    d_max_kpc, d_step_kpc : float
        Distance nodes ``d_step, 2 d_step, ..., d_max`` (kpc).
    galaxy : dict
        Keyword arguments of the Galaxy model (or the Besançon reader).
    profiles : dict
        Keyword arguments of the random extinction profiles.
    observation : dict
        Keyword arguments of the mock 2MASS observation (depth, completeness,
        errors).
    cmd : dict
        The `~cnnext.cmds.CMDSpec` as a dict (empty: the default spec).
    extinction_law : dict
        ``{"name": ..., "Rv": ...}`` or a full `~cnnext.extinction.ExtinctionLaw` dict.
    min_stars : int
        Smallest star count for which the model is trusted (model metadata).
    density_jitter : [float, float]
        Range of a random factor applied to the stellar density of each example
        (log-uniform): catalogues are drawn for ``max`` times the cell area and each
        example keeps a random fraction of their stars. Real cells differ from the
        Galaxy model by tens of per cent in star counts; the jitter teaches the
        network to read the extinction from the shape of the CMD rather than from
        the number of stars. ``[1, 1]`` (default) disables it.
    conditions : dict
        Ranges of the observing conditions drawn per example
        (`~cnnext.synthetic.ObservingConditions` keyword arguments, around the
        ``observation`` model); empty (default): every example is observed with
        the ``observation`` model itself.
    observation_group : int
        Consecutive examples that share one draw of the observing conditions.
    patchiness : float or [float, float]
        Largest dispersion of ln A_V across a cell (each example draws its own,
        uniform in ``[0, patchiness]``; see `~cnnext.synthetic.patchy_extinction`),
        or the range ``[min, max]`` of that draw; 0 (default): one even screen per
        cell.
    dense_fraction : float
        Largest share of a cell's stars behind dense structure, whose columns
        follow the power-law tail of molecular clouds' column-density
        distributions (each example draws its share uniform in
        ``[0, dense_fraction]``; see `~cnnext.synthetic.patchy_extinction`);
        0 (default): none.
    dense_index : [float, float]
        Range of the power-law index ``n`` of that tail (``p(X) ~ X**-n``), drawn
        uniformly per example; default ``[2.0, 4.0]``.
    young_stars : float
        Largest share of young stars with infrared excess added to an example
        (`~cnnext.synthetic.young_stars`, seen through up to 15 mag of their own
        cloud; the target profile is unchanged): half of the examples get none,
        the others a share log-uniform between 0.2 % and ``young_stars`` of their
        counted stars. 0 (default): none.
    galaxies : bool
        Add the unresolved galaxies of the 2MASS Point Source Catalog to every
        catalogue (`~cnnext.synthetic.unresolved_galaxies`).
    """

    source: str = "galaxy"
    n_realisations: int = 4
    n_val_realisations: int = 1
    examples_per_realisation: int = 200
    chunk_size: int = 100
    d_max_kpc: float = 10.0
    d_step_kpc: float = 0.1
    galaxy: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)
    observation: dict = field(default_factory=dict)
    cmd: dict = field(default_factory=dict)
    extinction_law: dict = field(default_factory=lambda: {"name": "G23", "Rv": 3.1})
    min_stars: int = 20
    density_jitter: list = field(default_factory=lambda: [1.0, 1.0])
    conditions: dict = field(default_factory=dict)
    observation_group: int = 8
    patchiness: float | list = 0.0
    dense_fraction: float = 0.0
    dense_index: list = field(default_factory=lambda: [2.0, 4.0])
    young_stars: float = 0.0
    galaxies: bool = False

    def __post_init__(self):
        self.density_jitter = [float(v) for v in self.density_jitter]
        lo, hi = self.density_jitter
        if len(self.density_jitter) != 2 or not 0 < lo <= hi:
            raise ValueError("dataset.density_jitter must be [min, max] with 0 < min <= max")
        bad_patchiness = ("dataset.patchiness must be a number >= 0 or [min, max] with "
                          f"0 <= min <= max, got {self.patchiness!r}")
        try:
            if np.ndim(self.patchiness) == 0:
                self.patchiness = float(self.patchiness)
                ok = self.patchiness >= 0
            else:
                self.patchiness = [float(v) for v in self.patchiness]
                ok = len(self.patchiness) == 2 and 0 <= self.patchiness[0] <= self.patchiness[1]
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(bad_patchiness)
        if not 0 <= self.dense_fraction < 1:
            raise ValueError("dataset.dense_fraction must be in [0, 1)")
        if not 0 <= self.young_stars < 1:
            raise ValueError("dataset.young_stars must be in [0, 1)")
        self.dense_index = [float(v) for v in self.dense_index]
        if len(self.dense_index) != 2 or not 1 < self.dense_index[0] <= self.dense_index[1]:
            raise ValueError("dataset.dense_index must be [min, max] with 1 < min <= max")
        if self.conditions:
            _ = self.observing_conditions  # validates the ranges
        for name in ("n_realisations", "examples_per_realisation", "chunk_size",
                     "observation_group"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"dataset.{name} must be a positive integer")
            setattr(self, name, int(getattr(self, name)))
        self.n_val_realisations = int(self.n_val_realisations)
        if not 0 <= self.n_val_realisations < self.n_realisations:
            raise ValueError("dataset.n_val_realisations must be >= 0 and smaller than "
                             "dataset.n_realisations (some realisations must train)")
        if not (0 < self.d_step_kpc <= self.d_max_kpc):
            raise ValueError("dataset distances need 0 < d_step_kpc <= d_max_kpc")
        n = self.d_max_kpc / self.d_step_kpc
        if abs(n - round(n)) > 1e-6:
            raise ValueError("dataset.d_max_kpc must be a multiple of d_step_kpc")

    @property
    def distances(self):
        """Distance nodes in kpc."""
        n = int(round(self.d_max_kpc / self.d_step_kpc))
        return np.round(np.arange(1, n + 1) * self.d_step_kpc, 10)

    @property
    def patchiness_range(self):
        """``(min, max)`` of the per-example dispersion of ln A_V."""
        if isinstance(self.patchiness, list):
            return tuple(self.patchiness)
        return 0.0, self.patchiness

    @property
    def observing_conditions(self):
        """The `~cnnext.synthetic.ObservingConditions`, or `None` (fixed observation)."""
        if not self.conditions:
            return None
        from ..synthetic import ObservingConditions

        try:
            return ObservingConditions(**self.conditions)
        except TypeError as exc:
            raise ValueError(f"dataset.conditions: {exc}") from None

    @property
    def spec(self):
        """The `~cnnext.cmds.CMDSpec` of the examples."""
        return CMDSpec.from_dict(self.cmd) if self.cmd else CMDSpec()

    @property
    def law(self):
        """The `~cnnext.extinction.ExtinctionLaw` that reddens the stars."""
        law = self.extinction_law
        if "coefficients" in law:
            return ExtinctionLaw.from_dict(law)
        return ExtinctionLaw(law.get("name", "G23"), law.get("Rv", 3.1))


@dataclass
class NetworkConfig:
    """
    The network: ``arch`` (``"compact"`` or ``"paper"``) and its keyword options.
    """

    arch: str = "compact"
    options: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    """
    The optimiser and the training loop.

    Parameters
    ----------
    epochs : int
        Largest number of passes over the training set.
    batch_size : int
        Examples per gradient step.
    lr : float
        Peak learning rate of Adam (AdamW with ``weight_decay``).
    weight_decay : float
        Decoupled weight decay.
    warmup_epochs : int
        Linear warm-up, then cosine decay to ``lr * lr_min_factor`` at ``epochs``.
    lr_min_factor : float
        Final learning rate over peak learning rate.
    patience : int
        Stop when the validation loss has not improved for this many epochs.
    beta : float
        Exponent of the beta-NLL loss (see `~cnnext.training.network.gaussian_nll`).
    density_weight : float or list of float
        Weight of a loss on the extinction increments per distance bin, added to
        the loss on the cumulative profile (`~cnnext.training.network.profile_loss`).
        0 (default): the cumulative alone, which lets the network put its
        increments at the same few distances on every sightline (rings in a
        face-on map, issue 14); 1 removes them. A list gives one weight per
        entry of ``density_bins``.
    density_bins : int or list of int
        Odd number of distance bins over which the increments of that loss are
        averaged (1: each bin); a list adds one such loss per width (several
        scales at once, e.g. ``[1, 3]`` for 100 and 300 pc).
    threads : int
        Torch CPU threads (0: torch's default).
    bias_refit_epochs : int
        After the training, refit the output layer's biases with dropout off for
        this many passes over the training examples
        (`~cnnext.training.train.refit_head_bias`): dropout before the softplus
        increments makes a network read too little dust without it, the more the
        higher the dropout. 0 (default): no refit. It does not change the
        training itself: a trained work directory is refitted, not retrained.
    float16_weights : bool
        Store the output model's weights as float16: half the file, the
        arithmetic stays float32 (`~cnnext.training.export.average_models`). Like
        ``threads``, it does not change the training: a run resumes with either.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    lr_min_factor: float = 0.02
    patience: int = 5
    beta: float = 0.5
    density_weight: float = 0.0
    density_bins: int = 1
    threads: int = 0
    bias_refit_epochs: int = 0
    float16_weights: bool = False

    def __post_init__(self):
        scales = isinstance(self.density_bins, (list, tuple))
        bins = list(self.density_bins) if scales else [self.density_bins]
        if not bins or any(isinstance(b, bool) or int(b) != b or b < 1 or b % 2 == 0
                           for b in bins):
            raise ValueError("training.density_bins must be an odd integer >= 1 "
                             f"or a list of them, got {self.density_bins!r}")
        weighted = isinstance(self.density_weight, (list, tuple))
        weights = list(self.density_weight) if weighted else [self.density_weight]
        if weighted and len(weights) != len(bins):
            raise ValueError(f"training.density_weight has {len(weights)} entries "
                             f"but training.density_bins {len(bins)}")
        weights = [float(w) for w in weights]
        if not all(w >= 0 for w in weights):
            raise ValueError("training.density_weight must be >= 0")
        self.density_bins = [int(b) for b in bins] if scales else int(bins[0])
        self.density_weight = weights if weighted else weights[0]
        refit = self.bias_refit_epochs
        if isinstance(refit, bool) or not isinstance(refit, (int, np.integer)) or refit < 0:
            raise ValueError("training.bias_refit_epochs must be an integer >= 0 "
                             f"(0: no refit), got {refit!r}")
        if not isinstance(self.float16_weights, bool):
            raise ValueError("training.float16_weights must be true or false, got "
                             f"{self.float16_weights!r}")


@dataclass
class EvaluationConfig:
    """
    Sightlines for the evaluation, none of them used in training.

    Parameters
    ----------
    inside : list of [l, b]
        Held-out sightlines inside the training region.
    outside : list of [l, b]
        Sightlines outside it (the model's behaviour beyond its region).
    n_realisations : int
        Intrinsic catalogues per evaluation sightline.
    examples_per_realisation : int
        Profiles per catalogue.
    """

    inside: list = field(default_factory=list)
    outside: list = field(default_factory=list)
    n_realisations: int = 1
    examples_per_realisation: int = 50

    def __post_init__(self):
        self.inside = _pairs(self.inside, "evaluation.inside")
        self.outside = _pairs(self.outside, "evaluation.outside")


_SECTIONS = {"region": RegionConfig, "dataset": DatasetConfig, "network": NetworkConfig,
             "training": OptimConfig, "evaluation": EvaluationConfig}


@dataclass
class TrainingConfig:
    """
    A complete training run.

    Parameters
    ----------
    name : str
        Name of the model (the preset name for presets).
    seed : int
        Master seed: data generation, initial weights and batch order derive from it.
    region, dataset, network, training, evaluation
        The sections (`RegionConfig`, `DatasetConfig`, `NetworkConfig`,
        `OptimConfig`, `EvaluationConfig`).

    Examples
    --------
    >>> from cnnext.training.presets import TrainingConfig
    >>> cfg = TrainingConfig.from_dict({"name": "two", "region": {
    ...     "sightlines": [[30, 0], [35, 2]]}, "training": {"epochs": 3}})
    >>> cfg.training.epochs, len(cfg.region.sightlines), len(cfg.dataset.distances)
    (3, 2, 100)
    >>> TrainingConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    name: str = "custom"
    seed: int = 0
    region: RegionConfig = field(default_factory=RegionConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: OptimConfig = field(default_factory=OptimConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    @classmethod
    def from_dict(cls, data):
        """Build a configuration from nested dicts (unknown keys raise `ValueError`)."""
        data = copy.deepcopy(dict(data))
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown configuration keys {sorted(unknown)}; "
                             f"expected {sorted(known)}")
        kwargs = {}
        for key, value in data.items():
            section = _SECTIONS.get(key)
            if section is None:
                kwargs[key] = value
                continue
            if not isinstance(value, dict):
                raise ValueError(f"configuration section [{key}] must be a table")
            allowed = {f.name for f in fields(section)}
            bad = set(value) - allowed
            if bad:
                raise ValueError(f"unknown keys {sorted(bad)} in [{key}]; expected "
                                 f"{sorted(allowed)}")
            kwargs[key] = section(**value)
        cfg = cls(**kwargs)
        cfg.seed = int(cfg.seed)
        return cfg

    def to_dict(self):
        """Return the configuration as nested JSON-serialisable dicts."""
        return json.loads(json.dumps(asdict(self)))

    def replace(self, **sections):
        """
        Return a copy with some keys changed, e.g. ``cfg.replace(training={"epochs": 2})``.
        """
        data = self.to_dict()
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        return TrainingConfig.from_dict(data)

    def dataset_hash(self):
        """
        Hash of everything that determines the training examples.

        Stored next to the dataset chunks so that a work directory made with another
        configuration is never mixed into this one.
        """
        dataset = asdict(self.dataset)
        # options left unused are left out, so that work directories made before
        # they existed still match
        if not dataset["dense_fraction"]:
            del dataset["dense_fraction"], dataset["dense_index"]
        if not dataset["young_stars"]:
            del dataset["young_stars"]
        key = {"seed": self.seed, "region": asdict(self.region), "dataset": dataset}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _preset_dir():
    return Path(str(resources.files("cnnext.training") / "presets"))


def list_presets():
    """Return the names of the built-in presets."""
    return sorted(p.stem for p in _preset_dir().glob("*.toml"))


def load_config(path):
    """
    Read a `TrainingConfig` from a TOML file.

    Parameters
    ----------
    path : str or path-like
        TOML file with the layout described in this module's docstring.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"training configuration {str(path)!r} does not exist") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"training configuration {str(path)!r} is not valid TOML: {exc}") \
            from None
    return TrainingConfig.from_dict(data)


def load_preset(name):
    """
    Return a built-in preset: ``"carina"``, ``"carina-c"``, ``"carina-d"`` and
    ``"carina-e"`` (the four networks of the shipped model), ``"carina-a"`` and
    ``"carina-b"`` (networks of earlier ones),
    ``"perseus"`` (the real-2MASS validation field) or ``"tiny"`` (about a minute on
    a CPU).

    Examples
    --------
    >>> from cnnext.training.presets import load_preset
    >>> cfg = load_preset("carina")
    >>> len(cfg.region.sightlines), cfg.region.healpix_order
    (15, 7)
    """
    path = _preset_dir() / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; built-in presets: "
                         f"{', '.join(list_presets())}")
    return load_config(path)
