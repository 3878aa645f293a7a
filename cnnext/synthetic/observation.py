# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Mock 2MASS observations of synthetic stars.

Intrinsic stars (from `GalaxyModel.sample` or `read_besancon`) are reddened by the
cumulative A_V in front of each of them, then "observed": a logistic completeness
in each band, the 2MASS photometric error model, larger errors for stars that
saturate the 1.3 s frames, ``ph_qual`` letters from S/N and error, and random
``cc_flg`` contamination flags. The result has the star-table schema of the real
photometry sources, so `cnnext.cmds.build_cmds` and the default
`~cnnext.quality.QualityCuts` apply unchanged.

`observe_many` is the training hot path: one intrinsic catalogue, many extinction
profiles, CMDs out, without building tables.
"""

import json
from dataclasses import asdict, dataclass, field

import numpy as np
from astropy.table import Table

from ..cmds import CMDSpec, build_cmds
from ..extinction import ExtinctionLaw
from ..observation import DESCRIPTORS, estimate_observation
from ..quality import BANDS

__all__ = ["PhotometricModel", "ObservingConditions", "observe", "observe_many",
           "reddening_law", "patchy_extinction", "DENSE_TAIL_RANGE"]

_LN10_04 = 0.4 * np.log(10.0)
# uint8 codes of the flag characters
_A, _B, _C, _D, _U, _X = (ord(c) for c in "ABCDUX")
_ZERO = ord("0")
_CC_CHARS = np.frombuffer(b"cdps", dtype=np.uint8)


def _band_dict(value, name):
    if isinstance(value, dict):
        missing = set(BANDS) - set(value)
        if missing:
            raise ValueError(f"{name} lacks bands {sorted(missing)}")
        return {b: float(value[b]) for b in BANDS}
    return {b: float(value) for b in BANDS}


@dataclass
class PhotometricModel:
    """
    Parameters of a mock 2MASS observation (stored in model metadata).

    The error of a magnitude m is ``sqrt((0.10857 x)**2 + poisson**2 x + floor**2)``
    with ``x = 10**(0.4 (m - m10))``; the reported error adds ``calibration`` in
    quadrature. Stars brighter than ``saturation`` add ``saturated_error`` in
    quadrature (2MASS measures them on the 51 ms frames). A band is detected with
    probability ``1 / (1 + exp((m - m10 - m50_offset) / width))`` (true magnitude).
    Letters: A for S/N > 10 and error < 0.10857, B for S/N > 7 and error < 0.1551,
    C for S/N > 5 and error < 0.21714, D otherwise, with S/N = 10 / x; a band not
    detected in a detected star is an upper limit (``U``, magnitude at the 50 %
    completeness limit, no error). Each detected band is flagged (``c``, ``d``,
    ``p`` or ``s`` at random) with probability ``flag_rate``.

    Parameters
    ----------
    m10 : dict
        Magnitude at S/N = 10 per band (J 15.8, H 15.1, Ks 14.3).
    poisson : float
        Source-photon term of the error model (mag at m10).
    floor : float
        Error floor of one measurement (mag).
    calibration : float
        Added in quadrature to the reported error (mag).
    m50_offset, width : dict or float
        Logistic completeness: 50 % at ``m10 + m50_offset``, width in mag.
    saturation : dict
        Magnitudes brighter than which the 1.3 s frames saturate.
    saturated_error : float
        Extra error (mag) of the saturated stars.
    flag_rate : float
        Probability of a non-zero ``cc_flg`` for a detected band.

    Examples
    --------
    >>> from cnnext.synthetic import PhotometricModel
    >>> pm = PhotometricModel()
    >>> float(pm.sigma("Ks", 14.3))  # doctest: +FLOAT_CMP
    0.11537956881528029
    """

    m10: dict = field(default_factory=lambda: {"J": 15.8, "H": 15.1, "Ks": 14.3})
    poisson: float = 0.03
    floor: float = 0.025
    calibration: float = 0.012
    m50_offset: dict = field(default_factory=lambda: {"J": 0.9, "H": 0.9, "Ks": 0.9})
    width: dict = field(default_factory=lambda: {"J": 0.2, "H": 0.2, "Ks": 0.2})
    saturation: dict = field(default_factory=lambda: {"J": 9.0, "H": 8.5, "Ks": 8.0})
    saturated_error: float = 0.03
    flag_rate: float = 0.02

    def __post_init__(self):
        self.m10 = _band_dict(self.m10, "m10")
        self.m50_offset = _band_dict(self.m50_offset, "m50_offset")
        self.width = _band_dict(self.width, "width")
        self.saturation = _band_dict(self.saturation, "saturation")
        if min(self.width.values()) <= 0:
            raise ValueError("completeness width must be positive")
        if not 0 <= self.flag_rate <= 1:
            raise ValueError(f"flag_rate must be in [0, 1], got {self.flag_rate!r}")

    def to_dict(self):
        """Return the parameters as a JSON-serialisable `dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Build a model from the output of `to_dict`."""
        return cls(**data)

    def m50(self, band):
        """50 % completeness magnitude of a band."""
        return self.m10[band] + self.m50_offset[band]

    def sigma(self, band, mag):
        """Measurement error (mag) at magnitude ``mag``, without calibration."""
        mag = np.asarray(mag, dtype=float)
        x = np.exp(_LN10_04 * (mag - self.m10[band]))
        var = (0.10857 * x) ** 2 + self.poisson ** 2 * x + self.floor ** 2
        var = var + np.where(mag < self.saturation[band], self.saturated_error ** 2, 0.0)
        return np.sqrt(var)

    def completeness(self, band, mag):
        """Detection probability of a band at true magnitude ``mag``."""
        mag = np.asarray(mag, dtype=float)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp((mag - self.m50(band)) / self.width[band]))


@dataclass
class ObservingConditions:
    """
    Ranges of 2MASS observing conditions, one draw per synthetic example.

    Real 2MASS depth is a property of each sightline (measured from its stars by
    `cnnext.observation`), not a constant: about half a magnitude deeper than the
    nominal S/N-10 limits off the plane, up to a magnitude shallower in confused
    plane fields. Training examples therefore each get their own observation,
    drawn here around a base `PhotometricModel`:

    - depth: one offset common to the three bands, uniform in ``depth_offset``
      (mag; positive is deeper), plus an independent Gaussian offset per band of
      ``band_scatter`` mag;
    - completeness: 50 % level ``m50_offset`` mag below the S/N-10 magnitude and
      logistic width ``width`` (mag), uniform in their ranges, per band;
    - error floor ``floor`` (mag) and contamination-flag rate ``flag_rate``,
      uniform in their ranges.

    The defaults cover real 2MASS (METHOD.md §4): depths from 1.0 mag brighter
    to 0.8 mag fainter than nominal, the count peaks measured off the plane.

    Parameters
    ----------
    depth_offset, m50_offset, width, floor, flag_rate : (float, float)
        Ranges (min, max) of uniform draws.
    band_scatter : float
        Standard deviation (mag) of the independent per-band depth offsets.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.synthetic import ObservingConditions, PhotometricModel
    >>> pm = ObservingConditions().draw(np.random.default_rng(1), PhotometricModel())
    >>> 14.3 - 1.5 < pm.m10["Ks"] < 14.3 + 1.3
    True
    """

    depth_offset: tuple = (-1.0, 0.8)
    band_scatter: float = 0.15
    m50_offset: tuple = (0.4, 1.1)
    width: tuple = (0.12, 0.35)
    floor: tuple = (0.015, 0.04)
    flag_rate: tuple = (0.0, 0.1)

    def __post_init__(self):
        for name in ("depth_offset", "m50_offset", "width", "floor", "flag_rate"):
            lo, hi = (float(v) for v in getattr(self, name))
            if lo > hi:
                raise ValueError(f"observing condition {name} range must be (min, max), "
                                 f"got {getattr(self, name)!r}")
            setattr(self, name, (lo, hi))
        if self.width[0] <= 0 or self.floor[0] < 0 or not 0 <= self.flag_rate[0] <= \
                self.flag_rate[1] <= 1:
            raise ValueError("observing conditions need width > 0, floor >= 0 and flag "
                             "rates within [0, 1]")
        self.band_scatter = float(self.band_scatter)

    def to_dict(self):
        """Return the ranges as a JSON-serialisable `dict`."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def max_offset(self):
        """Largest depth offset a draw can give (mag), for the intrinsic faint limit."""
        return self.depth_offset[1] + 3.0 * self.band_scatter

    def draw(self, rng, base):
        """Return one `PhotometricModel` drawn around ``base``."""
        common = rng.uniform(*self.depth_offset)
        scatter = np.clip(rng.normal(0.0, self.band_scatter, 3), -3 * self.band_scatter,
                          3 * self.band_scatter) if self.band_scatter else np.zeros(3)
        return PhotometricModel(
            m10={b: base.m10[b] + common + s for b, s in zip(BANDS, scatter)},
            poisson=base.poisson, floor=rng.uniform(*self.floor),
            calibration=base.calibration,
            m50_offset={b: rng.uniform(*self.m50_offset) for b in BANDS},
            width={b: rng.uniform(*self.width) for b in BANDS},
            saturation=base.saturation, saturated_error=base.saturated_error,
            flag_rate=rng.uniform(*self.flag_rate))


#: Where the dense-structure tail of `patchy_extinction` starts and ends, in units
#: of the cell's mean extinction
DENSE_TAIL_RANGE = (2.0, 30.0)


def patchy_extinction(av, dispersion, rng, *, dense_fraction=None, dense_index=3.0):
    """
    Scatter the extinction of each star around the cell's profile (a patchy screen).

    Dust varies across a 27' cell (molecular clouds are patchy on arcminute
    scales), so stars at the same distance in one cell see different extinctions.
    Each star's A_V is the profile times a factor ``X`` of mean 1, so the cell's
    *mean* profile, which is what the network is trained to return, is unchanged.

    ``X`` follows the column-density distribution of molecular clouds: a
    log-normal ``exp(s z - s**2 / 2)`` (``z`` standard normal, ``s`` the example's
    dispersion of ln A_V) and, behind a share ``f`` of the cell (``dense_fraction``),
    dense structure whose columns follow a power law ``p(X) ~ X**-n`` (``n``, the
    ``dense_index``) from 2 to 30 times the mean (`DENSE_TAIL_RANGE`) — the
    power-law tails that star-forming clouds show above A_V ~ 2-5 mag
    (Kainulainen et al. 2009; Lombardi et al. 2015 find n ~ 2-4). A few per cent
    of the stars then lie behind many magnitudes of dust while the mean column
    rises only a little: a red tail in the CMD does not mean a large mean
    extinction. Both parts are scaled together so that ``X`` has mean 1 exactly.

    Parameters
    ----------
    av : `numpy.ndarray`
        A_V in front of each star, ``(n_profiles, n_stars)``; changed in place.
    dispersion : array
        ``(n_profiles,)`` dispersion ``s`` of ln A_V per example (0: an even screen).
    rng : `numpy.random.Generator`
    dense_fraction : array, optional
        ``(n_profiles,)`` share ``f`` of each example's stars behind dense structure
        (0 or `None`, the default: none).
    dense_index : float or array
        Power-law index ``n > 1`` of the dense structure's columns, per example or
        one for all.

    Returns
    -------
    av : `numpy.ndarray`
        The same array.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.synthetic import patchy_extinction
    >>> av = np.full((3, 400_000), 2.0)
    >>> out = patchy_extinction(av, np.array([0.0, 0.8, 0.5]), np.random.default_rng(0),
    ...                         dense_fraction=np.array([0.0, 0.0, 0.1]))
    >>> np.round(out.mean(axis=1), 2).tolist(), float(out[0].std())
    ([2.0, 2.0, 2.0], 0.0)
    >>> far = np.mean(out[1:] > 20.0, axis=1)      # stars behind 10x the mean column
    >>> bool(far[1] > 3 * far[0])                   # the dense tail, not the log-normal
    True
    """
    s = np.asarray(dispersion, dtype=float).reshape(-1, 1)
    f = np.zeros_like(s) if dense_fraction is None else \
        np.broadcast_to(np.asarray(dense_fraction, dtype=float).reshape(-1, 1), s.shape)
    if np.any((f < 0) | (f >= 1)):
        raise ValueError("dense_fraction must be in [0, 1)")
    if not (np.any(s > 0) or np.any(f > 0)):
        return av
    x = np.exp(s * rng.standard_normal(av.shape) - 0.5 * s * s)
    if np.any(f > 0):
        n = np.broadcast_to(np.asarray(dense_index, dtype=float).reshape(-1, 1), s.shape)
        if np.any(n <= 1):
            raise ValueError("dense_index must be > 1")
        lo, hi = DENSE_TAIL_RANGE
        a, b = lo ** (1.0 - n), hi ** (1.0 - n)
        # truncated power law by its inverse CDF, and its mean
        tail = (a - rng.random(av.shape) * (a - b)) ** (1.0 / (1.0 - n))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_tail = np.where(np.isclose(n, 2.0), np.log(hi / lo) / (1.0 / lo - 1.0 / hi),
                                 (1.0 - n) / (2.0 - n) * (lo ** (2.0 - n) - hi ** (2.0 - n))
                                 / (a - b))
        dense = rng.random(av.shape) < f
        x = np.where(dense, tail, x) / ((1.0 - f) + f * mean_tail)
    av *= x
    return av


def reddening_law(law):
    """
    Return ``law`` as an `~cnnext.extinction.ExtinctionLaw` (default G23, R_V 3.1).

    Examples
    --------
    >>> from cnnext.synthetic import reddening_law
    >>> reddening_law(None)
    ExtinctionLaw('G23', Rv=3.1: A_J/A_V=0.2740, A_H/A_V=0.1661, A_Ks/A_V=0.1066)
    >>> print(f"A_Ks/A_V = {reddening_law('G23').coefficients['Ks']:.4f}")
    A_Ks/A_V = 0.1066
    """
    if law is None:
        return _default_law()
    if isinstance(law, ExtinctionLaw):
        return law
    if isinstance(law, dict):
        return ExtinctionLaw.from_dict(law)
    if isinstance(law, str):
        return ExtinctionLaw(law)
    raise TypeError(f"law must be an ExtinctionLaw, a dict or a law name, "
                    f"got {type(law).__name__}")


_LAW_CACHE = {}


def _default_law():
    if "G23" not in _LAW_CACHE:
        _LAW_CACHE["G23"] = ExtinctionLaw("G23", Rv=3.1)
    return _LAW_CACHE["G23"]


#: Magnitude grid of the per-band lookup tables (mag): errors, completeness and
#: letters are tabulated every millimagnitude, far finer than they vary.
_TABLE_LO, _TABLE_STEP, _TABLE_N = -10.0, 0.001, 50_001
_TABLE_CACHE = {}


def _model_tables(model):
    """`_band_tables` of the three bands, computed or fetched once."""
    key = json.dumps(vars(model), sort_keys=True)
    return {band: _band_tables(model, band, key) for band in BANDS}


def _band_tables(model, band, model_key):
    """Tabulated error, reported error, completeness and letter level of a band."""
    key = (model_key, band)
    if key not in _TABLE_CACHE:
        if len(_TABLE_CACHE) > 32:
            _TABLE_CACHE.clear()
        m = _TABLE_LO + _TABLE_STEP * np.arange(_TABLE_N)
        sig = model.sigma(band, m)
        rep = np.sqrt(sig ** 2 + model.calibration ** 2)
        snr = 10.0 * 10.0 ** (-0.4 * (m - model.m10[band]))
        # letter level 0 (A) .. 3 (D): the A, B, C conditions are nested
        level = (3 - ((snr > 5) & (rep < 0.21714)).astype(np.uint8)
                 - ((snr > 7) & (rep < 0.1551)) - ((snr > 10) & (rep < 0.10857)))
        p = model.completeness(band, m)

        def to16(prob):
            return np.clip(np.round(prob * 65536.0), 0, 65535).astype(np.uint16)

        _TABLE_CACHE[key] = {"sigma": sig.astype(np.float32), "error": rep.astype(np.float32),
                             "p16": to16(p), "p_flag16": to16(p * model.flag_rate),
                             "level": level.astype(np.uint8)}
    return _TABLE_CACHE[key]


def _normal_table():
    if "normal" not in _TABLE_CACHE:
        from scipy.special import ndtri

        _TABLE_CACHE["normal"] = ndtri((np.arange(65536) + 0.5) / 65536.0).astype(np.float32)
    return _TABLE_CACHE["normal"]


def draw_bits(rng, size):
    """Random 16-bit integers for `_simulate`: per band, ``(2, size)`` uint16."""
    out = {}
    for band in BANDS:
        raw = rng.bit_generator.random_raw((2 * size + 3) // 4).view(np.uint16)
        out[band] = raw[:2 * size].reshape(2, size)
    return out


def _simulate(intrinsic, av, law, tables, rng=None, bits=None):
    """
    Observe intrinsic magnitudes behind A_V; arrays ``(P, N)``, float32.

    Randomness is drawn as 16-bit integers from the generator's bit stream, two
    per star and band: ``r`` decides detection (``r < 65536 p``, p the
    completeness) and contamination flags (``r < 65536 p f``, f the flag rate, so
    that flags are independent of detection given it); the other picks a normal
    deviate from a 65536-point inverse-CDF table (abs(z) ≤ 4.3). Probabilities are
    thus quantised to 1/65536. Errors, completeness and letters are those of the
    true magnitude (2MASS derives them from the measured flux; the difference is
    far below the sensitivity of the letter thresholds), looked up in
    millimagnitude tables.

    ``bits`` (from `draw_bits`, possibly concatenated from several generators)
    replaces ``rng``.

    Returns, per band: observed magnitude, table index and ``r``.
    """
    if bits is None:
        bits = draw_bits(rng, int(np.prod(av.shape)))
    out = {}
    inv = np.float32(1.0 / _TABLE_STEP)
    normal = _normal_table()
    for band in BANDS:
        tab = tables[band]
        true = intrinsic[band] + np.float32(law.coefficients[band]) * av
        pos = (true - np.float32(_TABLE_LO)) * inv
        np.clip(pos, 0, _TABLE_N - 1, out=pos)
        idx = pos.astype(np.int32)
        raw = bits[band]
        r = raw[0].reshape(av.shape)
        z = np.take(normal, raw[1]).reshape(av.shape)
        obs = true + np.take(tab["sigma"], idx) * z
        out[band] = (obs, idx, r)
    return out


def _flag_chars(r, idx, tab):
    """``cc_flg`` character codes (uint8) of one band."""
    limit = np.take(tab["p_flag16"], idx)
    v = r.astype(np.float32) / np.maximum(limit, 1).astype(np.float32)
    return np.where(r < limit, _CC_CHARS[np.minimum(v * 4, 3).astype(np.uint8)],
                    np.uint8(_ZERO))


_LETTERS = np.frombuffer(b"ABCD", dtype=np.uint8)


def _av_at_stars(stars, profile):
    """A_V in front of each star, ``(P, N)``, from a profile set, an array or a number."""
    from .profiles import ExtinctionProfiles

    n = len(stars)
    if profile is None:
        return np.zeros((1, n))
    if isinstance(profile, ExtinctionProfiles):
        return profile.at(np.asarray(stars["distance"], dtype=float))
    av = np.asarray(profile, dtype=float)
    if av.ndim == 0:
        return np.full((1, n), float(av))
    if av.ndim == 1:
        if av.shape != (n,):
            raise ValueError(f"A_V per star must have shape ({n},), got {av.shape}")
        return av[None, :]
    if av.ndim == 2 and av.shape[1] == n:
        return av
    raise ValueError(f"A_V must be a number, an array ({n},) or ({n} stars as the last "
                     f"axis), got shape {av.shape}")


def _intrinsic(stars):
    names = stars.colnames if hasattr(stars, "colnames") else list(stars)
    missing = [b for b in BANDS if b not in names]
    if missing:
        raise KeyError(f"intrinsic stars lack apparent magnitude columns {missing}")
    return {b: np.asarray(stars[b], dtype=np.float32)[None, :] for b in BANDS}


def observe(stars, profile=None, *, law=None, model=None, seed=None):
    """
    Observe intrinsic stars through an extinction profile, as 2MASS would.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Intrinsic stars with apparent ``J``, ``H``, ``Ks`` (no extinction),
        ``l``, ``b`` and ``distance`` (kpc; needed with a profile set), e.g. from
        `GalaxyModel.sample`.
    profile : `ExtinctionProfiles`, array or float, optional
        One profile (a set of length 1, or index one first), A_V per star, or one
        A_V for all; none means no extinction.
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Reddening law (default G23, R_V = 3.1).
    model : `PhotometricModel`, optional
        Completeness, errors and flags (default `PhotometricModel()`).
    seed : int, `numpy.random.Generator` or None
        Random seed.

    Returns
    -------
    observed : `~astropy.table.Table`
        The detected stars (at least one band) with the star-table schema: ``l``,
        ``b``, ``J``, ``H``, ``Ks``, ``e_J``, ``e_H``, ``e_Ks``, ``ph_qual``,
        ``cc_flg``; upper limits have ``ph_qual`` U and a NaN error.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from cnnext.synthetic import observe
    >>> stars = Table({"l": [280.0, 280.1], "b": [0.0, 0.1], "distance": [1.0, 2.0],
    ...                "J": [11.0, 20.0], "H": [10.5, 19.5], "Ks": [10.3, 19.3]})
    >>> obs = observe(stars, 2.0, seed=1)
    >>> len(obs), str(obs["ph_qual"][0])
    (1, 'AAA')
    """
    law = reddening_law(law)
    model = PhotometricModel() if model is None else model
    av = _av_at_stars(stars, profile)
    if av.shape[0] != 1:
        raise ValueError(f"observe takes one profile, got {av.shape[0]}; index the "
                         f"profile set or use observe_many")
    rng = np.random.default_rng(seed)
    return observe_table(stars, av, law, model, draw_bits(rng, len(stars)))


def observe_table(stars, av, law, model, bits, return_keep=False):
    """`observe` with A_V ``(1, n)`` and pre-drawn random bits."""
    tables = _model_tables(model)
    sim = _simulate(_intrinsic(stars), np.asarray(av, np.float32).reshape(1, -1), law,
                    tables, bits=bits)
    detected = {band: (sim[band][2] < np.take(tables[band]["p16"], sim[band][1]))[0]
                for band in BANDS}
    keep = detected["J"] | detected["H"] | detected["Ks"]
    out = Table()
    out["l"] = np.asarray(stars["l"], dtype=float)[keep]
    out["b"] = np.asarray(stars["b"], dtype=float)[keep]
    ph, flags, errors = {}, {}, {}
    for band in BANDS:
        obs, idx, r = (a[0, keep] for a in sim[band])
        tab = tables[band]
        d = detected[band][keep]
        # an undetected band of a detected star is an upper limit at the 50 % limit
        out[band] = np.where(d, obs.astype(float), model.m50(band))
        errors[band] = np.where(d, tab["error"][idx].astype(float), np.nan)
        ph[band] = np.where(d, _LETTERS[tab["level"][idx]], np.uint8(_U))
        flags[band] = np.where(d, _flag_chars(r, idx, tab), np.uint8(_ZERO))
    for band in BANDS:
        out[f"e_{band}"] = errors[band]
    for name, codes in (("ph_qual", ph), ("cc_flg", flags)):
        # build the UCS-4 strings directly: far faster than converting from bytes
        arr = np.stack([codes[b] for b in BANDS], axis=1).astype(np.uint32)
        out[name] = np.ascontiguousarray(arr).view("U3").ravel()
    out["l"].unit = out["b"].unit = "deg"
    for c in ("J", "H", "Ks", "e_J", "e_H", "e_Ks"):
        out[c].unit = "mag"
    return (out, keep) if return_keep else out


def _quality_tables(model, tables, q, ph_ok, cc_ok):
    """Per band: which table entries pass the cuts, and the packed fast-path table."""
    key = ("quality", json.dumps(vars(model), sort_keys=True), repr(q))
    if key not in _TABLE_CACHE:
        passes, packed = {}, {}
        for band in BANDS:
            tab = tables[band]
            ok = ph_ok[_LETTERS][tab["level"]]
            if q.max_error is not None:
                ok &= tab["error"] <= q.max_error
            passes[band] = ok
            # common case in one look-up: good <=> p_flag16 <= r < p16 (and passing)
            low = np.where(ok, tab["p16"], 0).astype(np.uint32)
            high = tab["p_flag16"].astype(np.uint32) if cc_ok[_ZERO] else low
            packed[band] = low | (high << 16)
        _TABLE_CACHE[key] = (passes, packed)
    return _TABLE_CACHE[key]


def observe_many(stars, profiles, *, spec=None, law=None, model=None, seed=None,
                 chunk_stars=500_000, descriptors=False):
    """
    Observe one intrinsic catalogue through many profiles; return their CMDs.

    Equivalent to `observe` followed by `~cnnext.cmds.build_cmds` (with the quality
    cuts of ``spec``) for each profile, without building tables: the training hot
    path.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Intrinsic stars (apparent ``J``, ``H``, ``Ks`` and ``distance`` in kpc).
    profiles : `ExtinctionProfiles` or array
        ``n_prof`` profiles, or A_V in front of each star, shape ``(n_prof, n_star)``.
    spec : `~cnnext.cmds.CMDSpec`, optional
        CMD specification (default ``CMDSpec()``); its ``quality`` cuts apply.
    law, model, seed
        As in `observe`.
    chunk_stars : int
        Profiles are processed in chunks of about this many star-profile pairs to
        bound memory (results depend on the seed and on this value).
    descriptors : bool
        Also estimate each example's observation descriptors from its observed
        stars, with `cnnext.observation.estimate_observation` — the estimator run
        on real sightlines.

    Returns
    -------
    cmds : `numpy.ndarray`
        ``float32``, ``(n_prof, channels, n_mag, n_colour)``.
    n_stars : `numpy.ndarray`
        Stars counted in the first channel of each CMD.
    observation : `numpy.ndarray`
        Only with ``descriptors=True``: ``(n_prof, 6)`` estimated descriptors
        (mag, order of `cnnext.observation.DESCRIPTORS`).

    Examples
    --------
    >>> from cnnext.synthetic import GalaxyModel, random_profiles, observe_many
    >>> stars = GalaxyModel().sample(280.0, 0.0, 0.05, seed=1)
    >>> cmds, n = observe_many(stars, random_profiles(3, seed=2), seed=3)
    >>> cmds.shape
    (3, 2, 64, 64)
    """
    spec = CMDSpec() if spec is None else spec
    law = reddening_law(law)
    model = PhotometricModel() if model is None else model
    rng = np.random.default_rng(seed)
    intrinsic = _intrinsic(stars)
    av_all = _av_at_stars(stars, profiles)
    n_prof, n_star = av_all.shape
    q = spec.quality
    # which letter levels (A, B, C, D) and flag characters pass the quality cuts
    ph_ok = np.zeros(256, dtype=bool)
    ph_ok[np.frombuffer(q.ph_qual.encode("ascii"), np.uint8)] = True
    cc_ok = np.zeros(256, dtype=bool)
    cc_ok[np.frombuffer(q.cc_flg.encode("ascii"), np.uint8)] = True
    any_flag_ok = bool(cc_ok[_CC_CHARS].any())
    upper_ok = bool(q.keep_upper_limits and ph_ok[_U] and cc_ok[_ZERO])
    tables = _model_tables(model)
    passes, packed = _quality_tables(model, tables, q, ph_ok, cc_ok)
    simple = not (any_flag_ok or upper_ok)
    per = max(1, int(chunk_stars) // max(n_star, 1))
    cmd_parts, count_parts, obs_parts = [], [], []
    for start in range(0, n_prof, per):
        av = av_all[start:start + per].astype(np.float32)
        p = av.shape[0]
        sim = _simulate(intrinsic, av, law, tables, rng)
        ok, upper = {}, {}
        for band in BANDS:
            obs, idx, r = sim[band]
            if simple:
                t = np.take(packed[band], idx)
                ok[band] = (r < (t & 0xFFFF)) & (r >= (t >> 16))
                continue
            tab = tables[band]
            detected = r < np.take(tab["p16"], idx)
            good = detected & np.take(passes[band], idx)
            good &= cc_ok[_flag_chars(r, idx, tab)]
            ok[band] = good
            upper[band] = detected
        if upper_ok:
            any_det = upper["J"] | upper["H"] | upper["Ks"]
            upper = {band: any_det & ~upper[band] for band in BANDS}
        keep = np.zeros(av.shape, dtype=bool)
        for ch in spec.channels:  # star-profile pairs that can land in some channel
            usable = np.ones(av.shape, dtype=bool)
            for band in ch.bands:
                usable &= (ok[band] | upper[band]) if upper_ok else ok[band]
            keep |= usable
        flat = np.flatnonzero(keep.ravel())
        arrays = {}
        for band in BANDS:
            value = sim[band][0].ravel()[flat]
            good = ok[band].ravel()[flat]
            if upper_ok:
                up = upper[band].ravel()[flat]
                value = np.where(up, np.float32(model.m50(band)), value)
                good = good | up
            arrays[band] = np.where(good, value, np.float32(np.nan))
        cmds, counts = build_cmds(arrays, flat // n_star, p, spec, apply_quality=False)
        cmd_parts.append(cmds)
        count_parts.append(counts)
        if descriptors:
            obs_parts.append(_estimate_descriptors(sim, tables, p, n_star))
    if not cmd_parts:
        out = (np.zeros((0, *spec.shape), np.float32), np.zeros(0, np.int64))
        return out + (np.zeros((0, len(DESCRIPTORS))),) if descriptors else out
    out = (np.concatenate(cmd_parts), np.concatenate(count_parts))
    return out + (np.concatenate(obs_parts),) if descriptors else out


def _estimate_descriptors(sim, tables, n_prof, n_star):
    """Observation descriptors of simulated examples, from their detected stars."""
    stars = {}
    for band in BANDS:
        obs, idx, r = sim[band]
        detected = r < np.take(tables[band]["p16"], idx)
        stars[band] = np.where(detected, obs, np.float32(np.nan)).ravel()
        stars[f"e_{band}"] = np.where(detected, np.take(tables[band]["error"], idx),
                                      np.float32(np.nan)).ravel()
    groups = np.repeat(np.arange(n_prof), n_star)
    return estimate_observation(stars, groups, n_prof)[0]
