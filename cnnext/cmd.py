# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Colour-magnitude diagrams (CMDs): their specification and a vectorised builder.

Training and inference share this module: the `CMDSpec` stored in a model's
metadata says exactly how the network's input was made, and `build_cmds` makes it
from any star table, real or synthetic.
"""

import json
from dataclasses import dataclass, field

import numpy as np

from .quality import BANDS, QualityCuts

__all__ = ["CMDChannel", "CMDSpec", "build_cmds", "bin_indices"]

_TRANSFORMS = ("log1p", "linear", "sqrt")


@dataclass(frozen=True)
class CMDChannel:
    """
    One channel of a CMD: a magnitude against a colour.

    Parameters
    ----------
    mag : str
        Band on the magnitude (row) axis: ``"J"``, ``"H"`` or ``"Ks"``.
    colour : tuple of str
        Bands ``(blue, red)`` of the colour (column) axis, ``blue - red``.
    mag_range, colour_range : tuple of float
        Histogram ranges in mag; stars outside are not counted.
    """

    mag: str
    colour: tuple
    mag_range: tuple
    colour_range: tuple

    def __post_init__(self):
        object.__setattr__(self, "colour", tuple(self.colour))
        object.__setattr__(self, "mag_range", tuple(float(v) for v in self.mag_range))
        object.__setattr__(self, "colour_range", tuple(float(v) for v in self.colour_range))
        for band in (self.mag, *self.colour):
            if band not in BANDS:
                raise ValueError(f"CMD channel band {band!r} is not one of {BANDS}")
        if len(self.colour) != 2:
            raise ValueError(f"CMD channel colour must be two bands, got {self.colour!r}")
        for name in ("mag_range", "colour_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"CMD channel {name} must be finite with max > min, "
                                 f"got {(lo, hi)!r}")

    @property
    def label(self):
        """Axis labels, e.g. ``("Ks", "J-Ks")``."""
        return self.mag, f"{self.colour[0]}-{self.colour[1]}"


def _default_channels():
    # Ranges chosen so that red-clump giants behind A_V ~ 30 mag (E(J-Ks) ~ 5,
    # E(H-Ks) ~ 1.8 with A_Ks/A_V ~ 0.11) still fall inside the diagram.
    return (CMDChannel("Ks", ("J", "Ks"), (5.0, 16.0), (-0.5, 6.5)),
            CMDChannel("H", ("H", "Ks"), (5.0, 16.5), (-0.5, 3.5)))


@dataclass(frozen=True)
class CMDSpec:
    """
    Specification of the CMD tensor fed to the network.

    Parameters
    ----------
    channels : tuple of `CMDChannel`
        The diagrams stacked as channels. Default: Ks vs J-Ks and H vs H-Ks.
    n_mag, n_colour : int
        Number of bins along the magnitude (rows) and colour (columns) axes.
    transform : {"log1p", "linear", "sqrt"}
        Applied to the star counts of each bin.
    scale : float
        Multiplies the transformed counts.
    quality : `~cnnext.quality.QualityCuts`
        Which magnitudes count.

    Examples
    --------
    >>> from cnnext import CMDSpec
    >>> spec = CMDSpec()
    >>> spec.shape
    (2, 64, 64)
    >>> CMDSpec.from_json(spec.to_json()) == spec
    True
    """

    channels: tuple = field(default_factory=_default_channels)
    n_mag: int = 64
    n_colour: int = 64
    transform: str = "log1p"
    scale: float = 0.5
    quality: QualityCuts = field(default_factory=QualityCuts)

    def __post_init__(self):
        channels = tuple(c if isinstance(c, CMDChannel) else CMDChannel(**c)
                         for c in self.channels)
        if not channels:
            raise ValueError("CMDSpec needs at least one channel")
        object.__setattr__(self, "channels", channels)
        if isinstance(self.quality, dict):
            object.__setattr__(self, "quality", QualityCuts.from_dict(self.quality))
        for name in ("n_mag", "n_colour"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"CMDSpec {name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.transform not in _TRANSFORMS:
            raise ValueError(f"CMDSpec transform must be one of {_TRANSFORMS}, "
                             f"got {self.transform!r}")

    @property
    def shape(self):
        """Shape of one CMD: ``(channels, n_mag, n_colour)``."""
        return (len(self.channels), self.n_mag, self.n_colour)

    def to_dict(self):
        """Return the spec as a JSON-serialisable `dict`."""
        return {"channels": [{"mag": c.mag, "colour": list(c.colour),
                              "mag_range": list(c.mag_range),
                              "colour_range": list(c.colour_range)} for c in self.channels],
                "n_mag": self.n_mag, "n_colour": self.n_colour,
                "transform": self.transform, "scale": self.scale,
                "quality": self.quality.to_dict()}

    @classmethod
    def from_dict(cls, data):
        """Build a spec from the output of `to_dict`."""
        return cls(**data)

    def to_json(self):
        """Return the spec as a JSON string (stored in model metadata)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """Build a spec from the output of `to_json`."""
        return cls.from_dict(json.loads(text))

    def transform_counts(self, counts):
        """Apply the count transform and scale; returns float32."""
        counts = np.asarray(counts, dtype=np.float32)
        if self.transform == "log1p":
            out = np.log1p(counts)
        elif self.transform == "sqrt":
            out = np.sqrt(counts)
        else:
            out = counts
        out *= np.float32(self.scale)
        return out


def bin_indices(values, lo, hi, n):
    """
    Return the bin of each value on ``n`` equal bins over ``[lo, hi]``, -1 outside.

    Bins are half-open ``[edge_i, edge_i+1)`` except the last, which includes ``hi``
    — the convention of `numpy.histogram2d`, reproduced exactly (edges from
    `numpy.linspace`).
    """
    values = np.asarray(values, dtype=np.float64)
    edges = np.linspace(lo, hi, n + 1)
    with np.errstate(invalid="ignore"):
        inside = (values >= lo) & (values <= hi)
        idx = np.zeros(values.shape, dtype=np.intp)
        v = values[inside]
        guess = ((v - lo) * (n / (hi - lo))).astype(np.intp)
        np.clip(guess, 0, n - 1, out=guess)
        # floating-point rounding can put a value one bin off its edges: correct it
        guess -= v < edges[guess]
        guess += (v >= edges[guess + 1]) & (guess != n - 1)
        idx[inside] = guess
    idx[~inside] = -1
    return idx


def build_cmds(stars, cells, n_cells, spec=None, *, apply_quality=True):
    """
    Build the CMD tensor of many sightlines from one star table, in one pass.

    Parameters
    ----------
    stars : `~astropy.table.Table` or mapping of arrays
        Star table with the cnnext schema (``J``, ``H``, ``Ks``, their errors and,
        when known, ``ph_qual`` and ``cc_flg``).
    cells : array of int
        Row of the output that each star belongs to, in ``[0, n_cells)``; stars with
        a negative value are ignored.
    n_cells : int
        Number of sightlines (output rows). Rows without stars are all zeros.
    spec : `CMDSpec`, optional
        Defaults to ``CMDSpec()``.
    apply_quality : bool
        Apply ``spec.quality`` first (default). Pass `False` for magnitudes that were
        already cut.

    Returns
    -------
    cmds : `numpy.ndarray`
        ``float32`` array of shape ``(n_cells, channels, n_mag, n_colour)``.
    n_stars : `numpy.ndarray`
        Number of stars counted in the first channel of each sightline (``int64``).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import build_cmds
    >>> stars = {"J": np.array([12.0, 13.0]), "H": np.array([11.4, 12.5]),
    ...          "Ks": np.array([11.2, 12.3]), "e_J": np.array([0.02, 0.03]),
    ...          "e_H": np.array([0.02, 0.03]), "e_Ks": np.array([0.02, 0.03])}
    >>> cmds, n_stars = build_cmds(stars, np.array([0, 1]), 3)
    >>> cmds.shape, n_stars.tolist()
    ((3, 2, 64, 64), [1, 1, 0])
    """
    spec = CMDSpec() if spec is None else spec
    if not isinstance(spec, CMDSpec):
        raise TypeError(f"spec must be a CMDSpec, got {type(spec).__name__}")
    n_cells = int(n_cells)
    if n_cells < 0:
        raise ValueError(f"n_cells must be non-negative, got {n_cells}")
    for band in BANDS:
        try:
            stars[band]
        except (KeyError, ValueError):
            raise KeyError(f"star table has no column {band!r} (needs {', '.join(BANDS)})") \
                from None
    cells = np.asarray(cells)
    if cells.ndim != 1 or len(cells) != len(stars[BANDS[0]]):
        raise ValueError(f"cells must be a 1D array with one entry per star "
                         f"({len(stars[BANDS[0]])}), got shape {cells.shape}")
    if cells.size and not np.issubdtype(cells.dtype, np.integer):
        raise TypeError(f"cells must be integers, got dtype {cells.dtype}")
    if cells.size and cells.max(initial=-1) >= n_cells:
        raise ValueError(f"cells has values >= n_cells ({n_cells})")

    if apply_quality:
        mags = spec.quality.apply(stars)
    else:
        mags = {b: np.ma.filled(np.ma.asarray(stars[b], dtype=float), np.nan) for b in BANDS}

    n_ch, n_mag, n_col = spec.shape
    cell_ok = cells >= 0
    flat_parts = []
    n_stars = None
    for k, ch in enumerate(spec.channels):
        i = bin_indices(mags[ch.mag], *ch.mag_range, n_mag)
        j = bin_indices(mags[ch.colour[0]] - mags[ch.colour[1]], *ch.colour_range, n_col)
        ok = cell_ok & (i >= 0) & (j >= 0)
        c = cells[ok].astype(np.int64)
        flat_parts.append(((c * n_ch + k) * n_mag + i[ok]) * n_col + j[ok])
        if k == 0:
            n_stars = np.bincount(c, minlength=n_cells)
    flat = np.concatenate(flat_parts) if flat_parts else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=n_cells * n_ch * n_mag * n_col)
    cmds = spec.transform_counts(counts).reshape(n_cells, n_ch, n_mag, n_col)
    return cmds, n_stars.astype(np.int64)
