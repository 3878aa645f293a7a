# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""QualityCuts against a star-by-star reference of the documented rules."""

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

import cnnext.quality as quality_module
from cnnext.quality import BANDS, QualityCuts


def reference_masks(cuts, stars):
    """The rules of the QualityCuts docstring, one star and band at a time."""
    n = len(stars["J"])
    names = stars.colnames

    def floats(name):
        return np.ma.filled(np.ma.asarray(stars[name], dtype=float), np.nan).tolist()

    def flags(name):
        col = stars[name]
        mask = np.ma.getmaskarray(col).tolist()
        values = [v.decode() if isinstance(v, bytes) else str(v)
                  for v in np.ma.getdata(col).tolist()]
        return ["XXX" if m else (v + "XXX")[:3] for v, m in zip(values, mask)]

    ph = flags("ph_qual") if "ph_qual" in names else None
    cc = flags("cc_flg") if "cc_flg" in names else None
    out = {}
    for k, band in enumerate(BANDS):
        mags = floats(band)
        errs = floats(f"e_{band}") if f"e_{band}" in names else None
        ok = []
        for i in range(n):
            good = bool(np.isfinite(mags[i]))
            if errs is not None:
                if not cuts.keep_upper_limits:
                    good &= bool(np.isfinite(errs[i]))
                if cuts.max_error is not None:
                    good &= not errs[i] > cuts.max_error
            if ph is not None:
                good &= ph[i][k] in cuts.ph_qual
            if cc is not None:
                good &= cc[i][k] in cuts.cc_flg
            ok.append(good)
        out[band] = np.array(ok, dtype=bool)
    return out


def random_table(n, seed):
    rng = np.random.default_rng(seed)
    chars = np.array(list("ABCDEFUX0cdpsb"))
    flags = lambda: np.array(["".join(r) for r in rng.choice(chars, (n, 3))])  # noqa: E731
    t = Table({b: np.where(rng.random(n) < 0.05, np.nan, rng.uniform(8, 16, n))
               for b in BANDS})
    for b in BANDS:
        t[f"e_{b}"] = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0.01, 0.3, n))
    t["ph_qual"] = flags()
    t["ph_qual"][::17] = "A"  # short strings: missing characters read as X
    t["cc_flg"] = MaskedColumn(flags(), mask=rng.random(n) < 0.05)
    t["e_H"] = MaskedColumn(t["e_H"], mask=rng.random(n) < 0.05)
    return t


CUTS = [QualityCuts(), QualityCuts(ph_qual="ABCX", cc_flg="0c", keep_upper_limits=True,
                                   max_error=0.2),
        QualityCuts(ph_qual="ACEU", cc_flg="0cdps", max_error=0.1), QualityCuts(ph_qual="")]


@pytest.mark.parametrize("cuts", CUTS)
def test_band_masks_match_reference(cuts, monkeypatch):
    monkeypatch.setattr(quality_module, "_CHUNK", 97)  # many chunks, a partial last one
    t = random_table(1000, seed=2)
    got = cuts.band_masks(t)
    want = reference_masks(cuts, t)
    for band in BANDS:
        assert got[band].dtype == bool
        np.testing.assert_array_equal(got[band], want[band], err_msg=band)


def test_flag_encodings():
    t = random_table(300, seed=4)
    want = QualityCuts().band_masks(t)
    tb = t.copy()
    tb["ph_qual"] = t["ph_qual"].astype("S3")  # bytes columns as FITS files give
    tb["cc_flg"] = MaskedColumn(np.asarray(t["cc_flg"]).astype("S3"), mask=t["cc_flg"].mask)
    got = QualityCuts().band_masks(tb)
    for band in BANDS:
        np.testing.assert_array_equal(got[band], want[band])
    # non-ASCII characters are simply not accepted
    tu = t.copy()
    tu["ph_qual"] = np.where(np.arange(300) % 2 == 0, "AĀA", "AAA")
    masks = QualityCuts(cc_flg="0cdpsbX").band_masks(tu)
    assert not masks["H"][::2].any()
    # wider string columns: only the first three characters are flags
    tw = t.copy()
    tw["ph_qual"] = np.char.add(np.asarray(t["ph_qual"], dtype="U3"), "ZZ")
    got = QualityCuts().band_masks(tw)
    want_w = reference_masks(QualityCuts(), tw)
    for band in BANDS:
        np.testing.assert_array_equal(got[band], want_w[band])


def test_missing_columns_are_not_tested():
    t = Table({"J": [12.0, np.nan], "H": [11.0, 11.0], "Ks": [10.0, 10.0]})
    masks = QualityCuts(max_error=0.01).band_masks(t)
    assert masks["J"].tolist() == [True, False]
    assert masks["Ks"].tolist() == [True, True]
    # a plain dict works too
    masks = QualityCuts().band_masks({b: np.asarray(t[b]) for b in BANDS})
    assert masks["H"].tolist() == [True, True]


def test_apply_sets_failing_magnitudes_to_nan():
    t = Table({"J": [12.0, 13.0], "H": [11.0, 12.0], "Ks": [10.0, 11.0],
               "e_J": [0.02, 0.02], "e_H": [0.02, np.nan], "e_Ks": [0.02, 0.02],
               "ph_qual": ["AAA", "AUA"], "cc_flg": ["000", "00c"]})
    mags = QualityCuts().apply(t)
    assert mags["J"].tolist() == [12.0, 13.0]
    assert mags["H"][0] == 11.0 and np.isnan(mags["H"][1])
    assert mags["Ks"][0] == 10.0 and np.isnan(mags["Ks"][1])
    kept = QualityCuts(ph_qual="AU", cc_flg="0c", keep_upper_limits=True).apply(t)
    assert kept["H"][1] == 12.0 and kept["Ks"][1] == 11.0


def test_empty_table():
    t = Table({c: np.zeros(0) for c in ("J", "H", "Ks", "e_J", "e_H", "e_Ks")})
    t["ph_qual"] = np.zeros(0, dtype="U3")
    masks = QualityCuts().band_masks(t)
    assert all(m.shape == (0,) and m.dtype == bool for m in masks.values())


def test_serialisation_and_validation():
    cuts = QualityCuts(ph_qual="AB", cc_flg="0", keep_upper_limits=True, max_error=0.2)
    assert QualityCuts.from_dict(cuts.to_dict()) == cuts
    with pytest.raises(TypeError, match="ph_qual must be a string"):
        QualityCuts(ph_qual=["A", "B"])
    with pytest.raises(ValueError, match="max_error must be positive"):
        QualityCuts(max_error=0.0)
