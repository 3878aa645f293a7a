# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Piecewise power-law initial mass functions (IMFs), integrated analytically."""

import numpy as np

__all__ = ["PowerLawIMF"]


class PowerLawIMF:
    """
    A continuous piecewise power-law IMF, dN/dm ∝ m^-alpha_i between breaks.

    The normalisation is arbitrary (1 at m = 1 on the segment containing 1 M☉):
    cnnext only uses ratios of its integrals.

    Parameters
    ----------
    slopes : sequence of float
        ``alpha`` of each segment, from low to high mass.
    breaks : sequence of float
        Masses (M☉) separating the segments; ``len(slopes) - 1`` values.

    Examples
    --------
    >>> from cnnext.synthetic.imf import PowerLawIMF
    >>> imf = PowerLawIMF([1.6, 3.0], [1.0])
    >>> float(imf.number(0.5, 2.0))  # doctest: +FLOAT_CMP
    1.2345276108506624
    """

    def __init__(self, slopes, breaks=()):
        self.slopes = np.atleast_1d(np.asarray(slopes, dtype=float))
        self.breaks = np.atleast_1d(np.asarray(breaks, dtype=float))
        if len(self.breaks) != len(self.slopes) - 1:
            raise ValueError(f"an IMF with {len(self.slopes)} slopes needs "
                             f"{len(self.slopes) - 1} breaks, got {len(self.breaks)}")
        if np.any(np.diff(self.breaks) <= 0) or np.any(self.breaks <= 0):
            raise ValueError(f"IMF breaks must be positive and increasing, got {breaks!r}")
        # coefficient of each segment so that dN/dm is continuous, 1 at m = 1
        coef = np.ones(len(self.slopes))
        for i, m in enumerate(self.breaks):
            coef[i + 1] = coef[i] * m ** (self.slopes[i + 1] - self.slopes[i])
        k1 = np.searchsorted(self.breaks, 1.0)
        self.coef = coef / coef[k1]
        # primitive at each break, to add up segments
        edges = np.concatenate([[0.0], self.breaks])
        self._edges = edges

    def __repr__(self):
        return f"PowerLawIMF(slopes={self.slopes.tolist()}, breaks={self.breaks.tolist()})"

    def to_dict(self):
        """Return the IMF as a JSON-serialisable `dict`."""
        return {"slopes": self.slopes.tolist(), "breaks": self.breaks.tolist()}

    def _primitive(self, m, power):
        # integral of m^power * dN/dm from the first break below m (or 0) to m,
        # plus all full segments below: a cumulative function up to a constant
        m = np.asarray(m, dtype=float)
        seg = np.searchsorted(self.breaks, m, side="right")
        out = np.zeros(m.shape)
        lo_all = np.concatenate([[1e-3], self.breaks])
        full = np.zeros(len(self.slopes))
        for i in range(1, len(self.slopes)):
            full[i] = full[i - 1] + self._segment(i - 1, lo_all[i - 1], self.breaks[i - 1],
                                                  power)
        for i in range(len(self.slopes)):
            sel = seg == i
            if np.any(sel):
                out[sel] = full[i] + self._segment(i, lo_all[i], m[sel], power)
        return out

    def _segment(self, i, lo, hi, power):
        e = power + 1.0 - self.slopes[i]
        if abs(e) < 1e-12:
            return self.coef[i] * (np.log(hi) - np.log(lo))
        return self.coef[i] * (np.power(hi, e) - lo ** e) / e

    def number(self, m1, m2):
        """Number of stars between masses ``m1`` and ``m2`` (M☉), arbitrary units."""
        return self._primitive(m2, 0.0) - self._primitive(m1, 0.0)

    def mass(self, m1, m2):
        """Mass (M☉) in stars between ``m1`` and ``m2``, in the units of `number`."""
        return self._primitive(m2, 1.0) - self._primitive(m1, 1.0)
