# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
2MASS quality cuts, in one place.

The same `QualityCuts` decide which magnitudes count for real photometry (every
photometry source) and for mock observations (training), so that the network sees
the same kind of stars in both.
"""

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BANDS", "QualityCuts"]

#: The 2MASS bands, in the order of the ``ph_qual`` and ``cc_flg`` characters.
BANDS = ("J", "H", "Ks")


def _flag_codes(column, n):
    """Return a 2MASS three-character flag column as an ``(n, 3)`` uint8 array."""
    values = np.ma.filled(np.ma.asarray(column).astype("S3"), b"XXX") if np.ma.isMaskedArray(
        column) else np.asarray(column).astype("S3")
    codes = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
    codes = codes.reshape(n, 3).copy()
    codes[codes == 0] = ord("X")  # short strings are padded with NUL
    return codes


@dataclass(frozen=True)
class QualityCuts:
    """
    Which 2MASS magnitudes count, band by band.

    A magnitude counts when it is finite, its photometric quality letter
    (``ph_qual``) is in ``ph_qual``, its contamination flag (``cc_flg``) is in
    ``cc_flg``, it is not an upper limit (no error) unless ``keep_upper_limits``,
    and its error is at most ``max_error`` (when given). Flags that a table does not
    have are not tested.

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
        has = getattr(stars, "colnames", None) or list(stars.keys())
        ph = _flag_codes(stars["ph_qual"], n) if "ph_qual" in has and n else None
        cc = _flag_codes(stars["cc_flg"], n) if "cc_flg" in has and n else None
        ph_ok = np.frombuffer(self.ph_qual.encode("ascii"), np.uint8)
        cc_ok = np.frombuffer(self.cc_flg.encode("ascii"), np.uint8)
        masks = {}
        for k, band in enumerate(BANDS):
            mag = np.ma.filled(np.ma.asarray(stars[band], dtype=float), np.nan)
            ok = np.isfinite(mag)
            err_name = f"e_{band}"
            if err_name in has:
                err = np.ma.filled(np.ma.asarray(stars[err_name], dtype=float), np.nan)
                if not self.keep_upper_limits:
                    ok &= np.isfinite(err)
                if self.max_error is not None:
                    ok &= ~(err > self.max_error)
            if ph is not None:
                ok &= np.isin(ph[:, k], ph_ok)
            if cc is not None:
                ok &= np.isin(cc[:, k], cc_ok)
            masks[band] = ok
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
        return {band: np.where(masks[band],
                               np.ma.filled(np.ma.asarray(stars[band], dtype=float), np.nan),
                               np.nan)
                for band in BANDS}
