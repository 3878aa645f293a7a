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

from .quality import BANDS, ChunkedCuts, QualityCuts, as_float64

__all__ = ["CMDChannel", "CMDSpec", "build_cmds", "bin_indices"]

_TRANSFORMS = ("log1p", "linear", "sqrt")


@dataclass(frozen=True)
class CMDChannel:
    """
    One channel of a CMD: a magnitude (or a second colour) against a colour.

    Parameters
    ----------
    mag : str or tuple of str
        The row axis: a band, ``"J"``, ``"H"`` or ``"Ks"``, or two bands
        ``(blue, red)`` for a colour, which makes the channel a colour-colour
        diagram (``("J", "H")`` against ``("H", "Ks")`` separates stars reddened
        by dust from young stars with infrared excess, which a magnitude against
        one colour cannot).
    colour : tuple of str
        Bands ``(blue, red)`` of the colour (column) axis, ``blue - red``.
    mag_range, colour_range : tuple of float
        Histogram ranges in mag of the row and column axes; stars outside are not
        counted.

    Examples
    --------
    >>> from cnnext import CMDSpec
    >>> from cnnext.cmds import CMDChannel
    >>> ks = CMDChannel("Ks", ("J", "Ks"), mag_range=(5, 16), colour_range=(-0.5, 6.5))
    >>> ks.label
    ('Ks', 'J-Ks')
    >>> CMDSpec(channels=(ks,)).shape  # one channel, 64 x 64 bins
    (1, 64, 64)
    >>> CMDChannel(("J", "H"), ("H", "Ks"), (-0.2, 4.0), (-0.5, 3.5)).label
    ('J-H', 'H-Ks')
    """

    mag: str | tuple
    colour: tuple
    mag_range: tuple
    colour_range: tuple

    def __post_init__(self):
        if not isinstance(self.mag, str):
            object.__setattr__(self, "mag", tuple(self.mag))
            if len(self.mag) != 2:
                raise ValueError(f"CMD channel mag must be a band or two bands (a colour), "
                                 f"got {self.mag!r}")
        object.__setattr__(self, "colour", tuple(self.colour))
        object.__setattr__(self, "mag_range", tuple(float(v) for v in self.mag_range))
        object.__setattr__(self, "colour_range", tuple(float(v) for v in self.colour_range))
        if len(self.colour) != 2:
            raise ValueError(f"CMD channel colour must be two bands, got {self.colour!r}")
        for band in (*self.row_bands, *self.colour):
            if band not in BANDS:
                raise ValueError(f"CMD channel band {band!r} is not one of {BANDS}")
        for name in ("mag_range", "colour_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"CMD channel {name} must be finite with max > min, "
                                 f"got {(lo, hi)!r}")

    @property
    def row_bands(self):
        """The band of the row axis, or its two bands if it is a colour (a tuple)."""
        return (self.mag,) if isinstance(self.mag, str) else self.mag

    @property
    def bands(self):
        """Every band the channel uses, each once, in `~cnnext.quality.BANDS` order."""
        used = {*self.row_bands, *self.colour}
        return tuple(b for b in BANDS if b in used)

    @property
    def label(self):
        """Axis labels, e.g. ``("Ks", "J-Ks")``."""
        return "-".join(self.row_bands), f"{self.colour[0]}-{self.colour[1]}"


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
        return {"channels": [{"mag": c.mag if isinstance(c.mag, str) else list(c.mag),
                              "colour": list(c.colour),
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


def _edges(lo, hi, n):
    """
    The lower and upper edge of each bin: ``lower[i] <= v < upper[i]`` in bin ``i``.

    The edges are `numpy.linspace`'s; the last upper edge is moved one ulp above
    ``hi`` so that the last bin includes ``hi`` (the `numpy.histogram2d`
    convention).
    """
    edges = np.linspace(lo, hi, n + 1)
    upper = edges[1:].copy()
    upper[-1] = np.nextafter(hi, np.inf)
    return edges[:-1].copy(), upper


#: Bin estimates closer than this (in bins) to an edge are recomputed exactly.
_NEAR_EDGE = 1e-7


def _exact_bins(values, n, lower, upper, guess):
    """
    Exact bins (-1 below, ``n`` above the range) of ``values``, from estimates
    ``guess`` at most one bin off, by comparison with the edges.
    """
    guess = np.clip(guess, 0, n - 1).astype(np.intp)
    guess -= values < lower[guess]
    guess += values >= upper[guess]
    return guess


def bin_indices(values, lo, hi, n):
    """
    Return the bin of each value on ``n`` equal bins over ``[lo, hi]``, -1 outside.

    Bins are half-open ``[edge_i, edge_i+1)`` except the last, which includes ``hi``
    — the convention of `numpy.histogram2d`, reproduced exactly (edges from
    `numpy.linspace`). NaN is outside.

    The bin is estimated as ``floor((v - lo) * n / (hi - lo))``; the estimate can
    differ from the comparisons with the edges only within rounding error of an
    edge, where it is recomputed with them. `build_cmds` bins the same way.

    Examples
    --------
    >>> from cnnext.cmds import bin_indices
    >>> bin_indices([0.0, 0.5, 1.0, 2.0, 2.5, float("nan")], 0.0, 2.0, 4).tolist()
    [0, 1, 2, 3, -1, -1]
    """
    values = np.ascontiguousarray(values, dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        t = (values - lo) * (n / (hi - lo))
        est = np.floor(t)
        frac = t - est
        ok = (t >= 0) & (t <= n)
    near = np.flatnonzero((frac < _NEAR_EDGE) | (frac > 1.0 - _NEAR_EDGE))
    exact = _exact_bins(values[near], n, *_edges(lo, hi, n), est[near])
    est[near] = exact
    ok[near] = (exact >= 0) & (exact < n)
    est[~ok] = -1
    return est.astype(np.intp)


#: Stars handled at once: the temporaries of a chunk stay in the CPU cache.
_CHUNK = 1 << 15
#: Histogram bins of one block of cells (sorted input): 4 MB of int64 counts.
_BLOCK_BINS = 1 << 19


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
        ``float32`` array of shape ``(n_cells, channels, n_mag, n_colour)``: the
        transformed counts; bins as in `numpy.histogram2d` (half-open, the last
        bin of each axis closed), stars with a NaN magnitude or outside a
        diagram's ranges are not counted in it.
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
    if isinstance(n_cells, bool) or int(n_cells) != n_cells:
        raise TypeError(f"n_cells must be an integer, got {n_cells!r}")
    n_cells = int(n_cells)
    if n_cells < 0:
        raise ValueError(f"n_cells must be non-negative, got {n_cells}")
    for band in BANDS:
        try:
            stars[band]
        except (KeyError, ValueError, IndexError, TypeError):
            raise KeyError(f"star table has no column {band!r} (needs {', '.join(BANDS)})") \
                from None
    n = len(stars[BANDS[0]])
    cells = np.asarray(cells)
    if cells.ndim != 1 or len(cells) != n:
        raise ValueError(f"cells must be a 1D array with one entry per star "
                         f"({n}), got shape {cells.shape}")
    if cells.size and not np.issubdtype(cells.dtype, np.integer):
        raise TypeError(f"cells must be integers, got dtype {cells.dtype}")
    if cells.size and cells.max(initial=-1) >= n_cells:
        raise ValueError(f"cells has values >= n_cells ({n_cells})")
    cells = cells.astype(np.intp, copy=False)

    n_ch, n_mag, n_col = spec.shape
    per_cell = n_ch * n_mag * n_col
    if (n_cells * per_cell + 1) >= 2**53:
        raise ValueError(f"n_cells ({n_cells}) too large for one call; split the cells")
    cmds = np.zeros((n_cells, n_ch, n_mag, n_col), dtype=np.float32)
    n_stars = np.zeros(n_cells, dtype=np.int64)
    if n == 0 or n_cells == 0:
        return cmds, n_stars
    builder = _Builder(spec, stars, cells, apply_quality)
    out = cmds.reshape(-1)
    builder.sorted = not (n > 1 and np.any(cells[1:] < cells[:-1]))
    for start, stop, c_lo, c_hi in _blocks(cells, n_cells, per_cell, builder.sorted):
        counts = builder.count(start, stop, c_lo, c_hi)
        # The counts are transformed block by block, while they are in the CPU cache,
        # through a lookup table: no bin holds more stars than its block, so for
        # small blocks a table that long needs no pass to find the largest count.
        top = stop - start if stop - start <= _CHUNK else int(counts.max(initial=0))
        # mode="clip" (the indices are valid anyway): with the default "raise", take
        # writes to a temporary first when given ``out``
        np.take(builder.lut(top), counts,
                out=out[c_lo * per_cell:c_hi * per_cell], mode="clip")
        n_stars[c_lo:c_hi] = counts.reshape(c_hi - c_lo, n_ch, -1)[:, 0].sum(axis=1)
    return cmds, n_stars


def _blocks(cells, n_cells, per_cell, is_sorted):
    """
    Split the stars into blocks ``(start, stop, first cell, last cell + 1)``.

    When ``cells`` is sorted (as the photometry sources return it), blocks of about
    `_CHUNK` stars that end at cell boundaries and span at most `_BLOCK_BINS`
    histogram bins: each block's histogram stays in the CPU cache. Otherwise one
    block of all stars and cells.
    """
    n = len(cells)
    if not is_sorted:
        yield 0, n, 0, n_cells
        return
    span = max(1, _BLOCK_BINS // per_cell)
    start = int(np.searchsorted(cells, 0))  # negative cells (ignored) come first
    while start < n:
        first = int(cells[start])
        stop = min(start + _CHUNK, n)
        if stop < n:
            aligned = int(np.searchsorted(cells, cells[stop], side="left"))
            stop = aligned if aligned > start else \
                int(np.searchsorted(cells, first, side="right"))
        stop = min(stop, int(np.searchsorted(cells, first + span, side="left")))
        yield start, stop, first, int(cells[stop - 1]) + 1
        start = stop


class _Builder:
    """
    Flat histogram indices of the stars of `build_cmds`, chunk by chunk, and counts.

    The axes of all channels (magnitudes, then colours) are stacked as the rows
    of one ``(2 * channels, chunk)`` array, so that each numpy call bins all of
    them: fewer, longer calls.
    """

    def __init__(self, spec, stars, cells, apply_quality):
        self.spec = spec
        self.cells = cells
        #: Whether ``cells`` is sorted (then no negative cell occurs inside a block).
        self.sorted = False
        n_ch, n_mag, n_col = spec.shape
        self.per_cell = n_ch * n_mag * n_col
        used = sorted({b for ch in spec.channels for b in ch.bands}, key=BANDS.index)
        self.mags = {b: as_float64(stars[b]) for b in used}
        # NaN magnitudes fail the range checks: without quality cuts no mask is needed
        self.cuts = ChunkedCuts(spec.quality, stars, bands=used,
                                 check_magnitudes=False) if apply_quality else None
        ranges = [ch.mag_range for ch in spec.channels] + \
            [ch.colour_range for ch in spec.channels]
        nbins = [n_mag] * n_ch + [n_col] * n_ch
        self.lo = np.array([[r[0]] for r in ranges])
        self.scale = np.array([[n / (r[1] - r[0])] for r, n in zip(ranges, nbins)])
        self.nbins = nbins
        self.nmax = np.array([[float(n)] for n in nbins])
        self.edges = [_edges(*r, n) for r, n in zip(ranges, nbins)]
        self.offset = (np.arange(n_ch) * (n_mag * n_col) + 1.0).reshape(-1, 1)
        m = min(_CHUNK, len(cells))
        # flat buffers, viewed as contiguous (axes, stars) arrays for each chunk
        self.bins, self.frac = np.empty(2 * n_ch * m), np.empty(2 * n_ch * m)
        self.ok, self.near, self.tmp = (np.empty(2 * n_ch * m, bool) for _ in range(3))
        self.lower = np.concatenate([lo for lo, _ in self.edges])
        self.upper = np.concatenate([up for _, up in self.edges])
        self.first_edge = np.cumsum([0] + nbins[:-1])
        self.last_bin = np.array(nbins) - 1
        self.base = np.empty(m)
        self.flat = np.empty(n_ch * m, dtype=np.intp)
        self._lut = spec.transform_counts(np.arange(1024))

    def _values(self, row, stars):
        """The magnitudes or colours of axis ``row`` for the stars at indices ``stars``."""
        n_ch = len(self.spec.channels)
        ch = self.spec.channels[row % n_ch]
        bands = ch.row_bands if row < n_ch else ch.colour
        if len(bands) == 1:
            return self.mags[bands[0]][stars]
        return self.mags[bands[0]][stars] - self.mags[bands[1]][stars]

    def _fix_near(self, hits, k_len, start, bins, ok):
        """
        Exact bins and range tests at the sorted flat positions ``hits`` of the
        ``(axes, stars)`` arrays of the chunk that starts at star ``start``.
        """
        # hits are sorted: the stars of each axis form one contiguous run
        bounds = np.searchsorted(hits, np.arange(len(self.nbins) + 1) * k_len)
        rows = np.repeat(np.arange(len(self.nbins)), np.diff(bounds))
        stars = hits - rows * k_len + start
        values = np.empty(hits.size)
        for r in range(len(self.nbins)):
            if bounds[r + 1] > bounds[r]:
                at = slice(bounds[r], bounds[r + 1])
                values[at] = self._values(r, stars[at])
        # estimates clipped into the axis' range, as indices into the joined edge tables
        last = self.last_bin[rows]
        guess = np.minimum(np.maximum(bins.reshape(-1)[hits], 0), last).astype(np.intp)
        at = guess + self.first_edge[rows]
        # both comparisons with the estimate's edges: the bin is off by at most one
        guess -= values < self.lower[at]
        guess += values >= self.upper[at]
        bins.reshape(-1)[hits] = guess
        # the estimate's range test may be wrong here too: replace it
        ok.reshape(-1)[hits] = (guess >= 0) & (guess <= last)

    def lut(self, top):
        """Transformed counts 0..top (``spec.transform_counts`` of each)."""
        if top >= len(self._lut):
            self._lut = self.spec.transform_counts(np.arange(max(top + 1, 2 * len(self._lut))))
        return self._lut

    def count(self, start, stop, c_lo, c_hi):
        """Histogram counts of stars ``start:stop``, cells ``c_lo:c_hi`` (flat int64)."""
        n_ch = len(self.spec.channels)
        n = stop - start
        flat = self.flat if n_ch * n <= len(self.flat) else np.empty(n_ch * n, np.intp)
        for s in range(start, stop, _CHUNK):
            e = min(s + _CHUNK, stop)
            self._indices(s, e, c_lo, flat[(s - start) * n_ch:(e - start) * n_ch])
        # index 0 collects the stars that do not count
        return np.bincount(flat[:n_ch * n],
                           minlength=(c_hi - c_lo) * self.per_cell + 1)[1:]

    def _indices(self, start, stop, c_lo, out):
        """Write 1 + flat bin index (0: not counted) of stars start:stop, per channel."""
        # Stars with NaN or infinite magnitudes give NaN or inf estimates (inf - inf)
        # and arbitrary integer indices; they do not count, their index is zeroed.
        with np.errstate(invalid="ignore"):
            self._indices_unchecked(start, stop, c_lo, out)

    def _indices_unchecked(self, start, stop, c_lo, out):
        spec = self.spec
        n_ch, n_mag, n_col = spec.shape
        k_len = stop - start
        sl = slice(start, stop)
        c = self.cells[sl]
        n_axes = 2 * n_ch
        bins, frac, ok, near, tmp = (a[:n_axes * k_len].reshape(n_axes, k_len) for a in
                                     (self.bins, self.frac, self.ok, self.near, self.tmp))
        for k, ch in enumerate(spec.channels):
            row = ch.row_bands
            if len(row) == 1:
                np.subtract(self.mags[row[0]][sl], self.lo[k, 0], out=frac[k])
            else:
                np.subtract(self.mags[row[0]][sl], self.mags[row[1]][sl], out=frac[k])
                frac[k] -= self.lo[k, 0]
            colour = frac[n_ch + k]
            np.subtract(self.mags[ch.colour[0]][sl], self.mags[ch.colour[1]][sl],
                        out=colour)
            colour -= self.lo[n_ch + k, 0]
        # t = (v - lo) * n / (hi - lo): v >= lo exactly when t >= 0 (v - lo is exact
        # in sign); the bin estimate floor(t) and the test t <= n can differ from the
        # numpy.histogram2d binning (comparisons with the linspace edges) only within
        # rounding error of an edge: those few stars are recomputed exactly.
        frac *= self.scale
        np.greater_equal(frac, 0.0, out=ok)
        ok &= np.less_equal(frac, self.nmax, out=tmp)
        np.floor(frac, out=bins)
        frac -= bins
        np.less(frac, _NEAR_EDGE, out=near)
        near |= np.greater(frac, 1.0 - _NEAR_EDGE, out=tmp)
        # a few stars per chunk and axis, often exactly on an edge (3-decimal magnitudes)
        hits = np.flatnonzero(near)
        if hits.size:
            self._fix_near(hits, k_len, start, bins, ok)
        # a star counts in channel k if both its axes are in range and its bands pass
        counted = ok[:n_ch]
        counted &= ok[n_ch:]
        if c[0] < 0 or not self.sorted:  # sorted blocks start at cell >= 0
            counted &= np.greater_equal(c, 0, out=tmp[0])
        if self.cuts is not None:
            masks = self.cuts(start, stop)
            for k, ch in enumerate(spec.channels):
                for band in ch.bands:
                    counted[k] &= masks[band]
        index = bins[:n_ch]
        index *= n_col
        index += bins[n_ch:]
        base = self.base[:k_len]
        np.subtract(c, c_lo, out=base, casting="unsafe")
        base *= self.per_cell
        index += base
        index += self.offset
        dst = out.reshape(n_ch, k_len)
        np.copyto(dst, index, casting="unsafe")
        dst *= counted
