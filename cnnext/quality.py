# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
2MASS quality cuts, in one place.

The same `QualityCuts` decide which magnitudes count for real photometry (every
photometry source) and for mock observations (training), so that the network sees
the same kind of stars in both.
"""

from dataclasses import asdict, dataclass

import numpy as np

from .extinction import BANDS

__all__ = ["BANDS", "QualityCuts", "UNFLAGGED_MAX_ERROR"]


#: Largest error (mag) accepted from a table without ``ph_qual``: the 2MASS C-grade
#: limit (S/N 5), so that such a table is cut as its flags would have cut it.
UNFLAGGED_MAX_ERROR = 0.21714

#: Stars whose cuts are evaluated together.
_CHUNK = 1 << 15


def _flag_codes(column, n):
    """
    Return a 2MASS three-character flag column as an ``(n, 3)`` array of character codes.

    Unicode and byte strings are viewed in place (no conversion of the strings:
    that used to dominate the cost of the cuts); masked entries and characters
    missing from short strings read as ``X`` (2MASS "no measurement").
    """
    mask = np.ma.getmaskarray(column) if np.ma.isMaskedArray(column) else None
    values = np.asarray(np.ma.getdata(column))
    if values.dtype.kind not in "US":
        values = values.astype("U3")
    width = values.dtype.itemsize // (4 if values.dtype.kind == "U" else 1)
    unit = np.uint32 if values.dtype.kind == "U" else np.uint8
    codes = np.ascontiguousarray(values).view(unit).reshape(n, width)
    if width > 3:
        codes = np.ascontiguousarray(codes[:, :3])
    elif width < 3:
        codes = np.concatenate([codes, np.zeros((n, 3 - width), unit)], axis=1)
    if mask is not None and mask.any():
        codes = codes.copy()
        codes[mask] = ord("X")
    return codes


def _runs(accepted):
    """The accepted characters as runs ``(first code point, length)`` (``"ABC"`` is one)."""
    points = sorted({ord(ch) for ch in accepted} | ({0} if "X" in accepted else set()))
    runs = []
    for p in points:  # NUL (padding of short strings) reads as 'X', hence the 0 above
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return [tuple(r) for r in runs]


def _accept_into(codes, runs, out, tmp, hit):
    """
    ``out[:] =`` which ``codes`` (1-D, contiguous) are in the ``runs`` of `_runs`.

    One unsigned subtraction and comparison per run (``code - first < length``
    with wrap-around): much faster than `numpy.isin` or a lookup table.
    """
    top = np.iinfo(codes.dtype).max
    started = False
    for first, length in runs:
        if first > top:
            break
        dst = hit if started else out
        if length == 1:
            np.equal(codes, first, out=dst)
        else:
            np.subtract(codes, codes.dtype.type(first), out=tmp)
            np.less(tmp, length, out=dst)
        if started:
            out |= hit
        started = True
    if not started:
        out[...] = False


def as_float64(column):
    """A column as a float64 array, masked entries NaN (no copy when already float64)."""
    if np.ma.isMaskedArray(column):
        return np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
    return np.ascontiguousarray(column, dtype=np.float64)


@dataclass(frozen=True)
class QualityCuts:
    """
    Which 2MASS magnitudes count, band by band.

    A magnitude counts when it is finite, its photometric quality letter
    (``ph_qual``) is in ``ph_qual``, its contamination flag (``cc_flg``) is in
    ``cc_flg``, it is not an upper limit (no error) unless ``keep_upper_limits``,
    and its error is at most ``max_error`` (when given). Flags that a table does not
    have are not tested; a table without ``ph_qual`` has its errors cut at
    `UNFLAGGED_MAX_ERROR` instead (2MASS's C-grade limit) unless ``max_error`` is
    smaller (`cnnext.photometry.TableSource` warns when it reads such a table).

    Parameters
    ----------
    ph_qual : str
        Accepted ``ph_qual`` letters (2MASS: A best … E, F, U upper limit, X none).
    cc_flg : str
        Accepted ``cc_flg`` characters (``0`` clean, ``c`` confusion, ``d``
        diffraction spike, ``p`` persistence, ``s`` stripe, ``b`` band-merge).
    keep_upper_limits : bool
        Keep magnitudes without an error (2MASS upper limits).
    max_error : float or None
        Largest accepted photometric error in mag.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from cnnext.quality import QualityCuts
    >>> t = Table({"J": [12.0, 15.0], "H": [11.5, 14.6], "Ks": [11.3, 14.9],
    ...            "e_J": [0.02, 0.1], "e_H": [0.02, 0.1], "e_Ks": [0.02, float("nan")],
    ...            "ph_qual": ["AAA", "CCU"], "cc_flg": ["000", "000"]})
    >>> masks = QualityCuts().band_masks(t)
    >>> masks["Ks"].tolist()
    [True, False]
    """

    ph_qual: str = "ABC"
    cc_flg: str = "0"
    keep_upper_limits: bool = False
    max_error: float | None = None

    def __post_init__(self):
        for name in ("ph_qual", "cc_flg"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"QualityCuts {name} must be a string of accepted flag "
                                f"characters, got {getattr(self, name)!r}")
        if self.max_error is not None and not self.max_error > 0:
            raise ValueError(f"QualityCuts max_error must be positive, got {self.max_error!r}")

    def to_dict(self):
        """Return the cuts as a JSON-serialisable `dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Build cuts from the output of `to_dict`."""
        return cls(**data)

    def band_masks(self, stars):
        """
        Return, for each band, which stars' magnitude passes the cuts.

        Parameters
        ----------
        stars : `~astropy.table.Table` or mapping of arrays
            A star table with the cnnext schema (``J``, ``H``, ``Ks``, ``e_J``,
            ``e_H``, ``e_Ks`` and optionally ``ph_qual``, ``cc_flg``).

        Returns
        -------
        masks : dict of str to `numpy.ndarray` of bool
        """
        n = len(stars[BANDS[0]])
        masks = {band: np.empty(n, dtype=bool) for band in BANDS}
        chunks = ChunkedCuts(self, stars)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            for band, ok in chunks(start, stop).items():
                masks[band][start:stop] = ok
        return masks

    def apply(self, stars):
        """
        Return the ``J``, ``H``, ``Ks`` magnitudes with failing values set to NaN.

        Parameters
        ----------
        stars : `~astropy.table.Table` or mapping of arrays

        Returns
        -------
        mags : dict of str to `numpy.ndarray` of float64
        """
        masks = self.band_masks(stars)
        return {band: np.where(masks[band], as_float64(stars[band]), np.nan) for band in BANDS}


class ChunkedCuts:
    """
    `QualityCuts.band_masks` evaluated chunk by chunk, for callers that fuse the cuts
    into their own chunked loop (the CMD builder): the magnitudes of a chunk are
    then still in the CPU cache when they are binned.

    ``chunks(start, stop)`` returns ``{band: bool array}`` for stars
    ``start:stop`` (at most ``chunk`` of them); the arrays are reused by the next
    call.
    """

    def __init__(self, cuts, stars, chunk=_CHUNK, bands=BANDS, check_magnitudes=True):
        n = len(stars[BANDS[0]])
        has = getattr(stars, "colnames", None) or list(stars.keys())
        self.cuts = cuts
        self.bands = tuple(bands)
        # callers that range-check the magnitudes themselves skip the finiteness test
        self.check_magnitudes = check_magnitudes
        self.flags = []
        for name, accepted in (("ph_qual", cuts.ph_qual), ("cc_flg", cuts.cc_flg)):
            if name in has and n:
                codes = _flag_codes(stars[name], n)
                # ASCII flags (always, for 2MASS) are narrowed to one byte per code
                narrow = codes.dtype == np.uint8 or int(codes.max()) <= 0xFF
                self.flags.append((codes, np.uint8 if narrow else codes.dtype,
                                   _runs(accepted)))
        self.mags = {band: as_float64(stars[band]) for band in self.bands}
        self.errs = {band: as_float64(stars[f"e_{band}"]) for band in self.bands
                     if f"e_{band}" in has}
        self.max_error = cuts.max_error
        if "ph_qual" not in has and cuts.ph_qual and not set("DEFUX") & set(cuts.ph_qual):
            # no quality letters to test: cut on the error, as the letters would
            self.max_error = min(cuts.max_error or np.inf, UNFLAGGED_MAX_ERROR)
        m = max(1, min(n, chunk))
        self.out = {band: np.empty(m, dtype=bool) for band in self.bands}
        self.hit = np.empty(m, dtype=bool)
        self.narrowed = [np.empty((m, 3), dtype=dt) for _, dt, _ in self.flags]
        self.accepted = [np.empty((m, 3), dtype=bool) for _ in self.flags]
        self.tmp = [np.empty((m, 3), dtype=dt) for _, dt, _ in self.flags]
        self.scratch = np.empty((m, 3), dtype=bool)
        self.both = np.empty((3, m), dtype=bool)

    def __call__(self, start, stop):
        k_len = stop - start
        sl = slice(start, stop)
        hit = self.hit[:k_len]
        good = None
        # The flags are tested on the contiguous (m, 3) codes of the chunk, the two
        # flags combined, and the result transposed once: every later test reads
        # contiguous memory (strided per-band reads cost several times more).
        for (codes, _, runs), narrow, acc, tmp in zip(self.flags, self.narrowed,
                                                      self.accepted, self.tmp):
            c = narrow[:k_len]
            np.copyto(c, codes[sl], casting="unsafe")
            a = acc[:k_len]
            _accept_into(c.reshape(-1), runs, a.reshape(-1), tmp[:k_len].reshape(-1),
                         self.scratch[:k_len].reshape(-1))
            if good is None:
                good = a
            else:
                good &= a
        rows = None
        if good is not None:
            rows = self.both[:, :k_len]
            np.copyto(rows, good.T)
        out = {}
        for band in self.bands:
            k = BANDS.index(band)
            ok = self.out[band][:k_len]
            err = self.errs[band][sl] if band in self.errs else None
            test_err = err is not None and not self.cuts.keep_upper_limits
            if self.check_magnitudes:
                np.isfinite(self.mags[band][sl], out=ok)
                if test_err:
                    ok &= np.isfinite(err, out=hit)
            elif test_err:
                np.isfinite(err, out=ok)
            else:
                ok[...] = True
            if err is not None and self.max_error is not None:
                ok &= ~np.greater(err, self.max_error, out=hit)
            if rows is not None:
                ok &= rows[k]
            out[band] = ok
        return out
