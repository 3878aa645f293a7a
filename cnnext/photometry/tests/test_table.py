# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Column normalisation and TableSource: names, files, cells, bad input."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable.exceptions import VOWarning
from astropy.table import MaskedColumn, Table

from cnnext.healpix import lonlat_to_cells
from cnnext.photometry import COLUMN_ALIASES, TableSource, to_star_table
from cnnext.photometry.base import STAR_COLUMNS

from .conftest import ORDER, assert_same_stars, expected_stars


def _vizier_style(cat):
    t = Table()
    t["RAJ2000"], t["DEJ2000"] = cat["ra"], cat["dec"]
    t["2MASS"] = cat["designation"]
    for band, name in (("J", "J"), ("H", "H"), ("Ks", "K")):
        t[f"{name}mag"] = cat[band]
        t[f"e_{name}mag"] = MaskedColumn(np.nan_to_num(cat[f"e_{band}"]),
                                         mask=np.isnan(cat[f"e_{band}"]))
    t["Qflg"], t["Cflg"] = cat["ph_qual"], cat["cc_flg"]
    return t


def _irsa_style(cat):
    names = {"l": "glon", "b": "glat", "J": "j_m", "H": "h_m", "Ks": "k_m",
             "e_J": "j_msigcom", "e_H": "h_msigcom", "e_Ks": "k_msigcom",
             "ph_qual": "ph_qual", "cc_flg": "cc_flg"}
    return Table({new: cat[old] for old, new in names.items()})


@pytest.mark.parametrize("style", [_vizier_style, _irsa_style])
def test_recognised_names(catalogue, style):
    got = to_star_table(style(catalogue))
    assert got.colnames == list(STAR_COLUMNS) + ["ph_qual", "cc_flg"]
    assert got["l"].unit == u.deg and got["Ks"].unit == u.mag
    assert_same_stars(got, catalogue)


def test_plain_names_without_flags():
    t = Table({"l": [10.0], "b": [1.0], "J": [12.0], "H": [11.0], "Ks": [10.5]})
    got = to_star_table(t)
    assert got.colnames == list(STAR_COLUMNS)
    assert np.isnan(got["e_J"][0])


def test_masked_values_become_nan():
    t = Table({"glon": [1.0, 2.0], "glat": [0.0, 0.0],
               "j_m": MaskedColumn([12.0, 13.0], mask=[False, True]),
               "h_m": [11.0, 12.0], "k_m": [10.0, 11.0],
               "ph_qual": MaskedColumn(["AAA", "AAA"], mask=[False, True])})
    got = to_star_table(t)
    assert got["J"].tolist()[0] == 12.0 and np.isnan(got["J"][1])
    assert not hasattr(got["J"], "mask")
    assert got["ph_qual"].tolist() == ["AAA", ""]


def test_units_converted():
    t = Table({"ra": [np.radians(266.405)] * u.rad, "dec": [np.radians(-28.936)] * u.rad,
               "J": [12.0], "H": [11.0], "Ks": [10.5]})
    got = to_star_table(t)
    gc = SkyCoord(266.405 * u.deg, -28.936 * u.deg).galactic
    np.testing.assert_allclose([got["l"][0], got["b"][0]],
                               [gc.l.deg, gc.b.deg], atol=1e-9)
    with pytest.raises(u.UnitsError, match="'J' has unit s"):
        to_star_table(Table({"l": [1.0], "b": [1.0], "J": [1.0] * u.s, "H": [1.0],
                             "Ks": [1.0]}))


def test_explicit_mapping():
    t = Table({"GLON_deg": [10.0], "GLAT_deg": [1.0], "J": [12.0], "H": [11.0],
               "Kmag_2mass": [10.5]})
    got = to_star_table(t, columns={"l": "GLON_deg", "b": "GLAT_deg", "Ks": "Kmag_2mass"})
    assert got["Ks"][0] == 10.5 and got["l"][0] == 10.0
    with pytest.raises(KeyError, match="maps 'Ks' to 'nope'"):
        to_star_table(t, columns={"Ks": "nope"})
    with pytest.raises(KeyError, match="unknown star-table names"):
        to_star_table(t, columns={"Kband": "Kmag_2mass"})


def test_bad_input():
    with pytest.raises(TypeError, match="astropy Table"):
        to_star_table("stars.fits")
    with pytest.raises(TypeError, match="astropy Table"):
        to_star_table(3.0)
    with pytest.raises(KeyError, match=r"no column for \['Ks'\]"):
        to_star_table(Table({"l": [1.0], "b": [1.0], "J": [1.0], "H": [1.0]}))
    with pytest.raises(KeyError, match="no position columns"):
        to_star_table(Table({"J": [1.0], "H": [1.0], "Ks": [1.0]}))
    with pytest.raises(TypeError, match="'J' must be numeric"):
        to_star_table(Table({"l": [1.0], "b": [1.0], "J": ["a"], "H": [1.0], "Ks": [1.0]}))
    assert "Ks" in COLUMN_ALIASES


def test_empty_table_gives_empty_result():
    t = Table({"l": np.zeros(0), "b": np.zeros(0), "J": np.zeros(0), "H": np.zeros(0),
               "Ks": np.zeros(0)})
    source = TableSource(t)
    got = source.query_cells([1, 2, 3], ORDER)
    assert len(got) == 0 and got.colnames == list(STAR_COLUMNS) + ["cell"]
    assert len(source.query_cone(SkyCoord(0, 0, unit="deg"), 1 * u.deg)) == 0


def test_nan_coordinates_rejected():
    t = Table({"l": [1.0, np.nan], "b": [0.0, 0.0], "J": [1.0, 1.0], "H": [1.0, 1.0],
               "Ks": [1.0, 1.0]})
    with pytest.raises(ValueError, match=r"1 star\(s\) have NaN .*rows \[1\]"):
        TableSource(t)


def test_query_cells_matches_brute_force(catalogue, catalogue_cells):
    source = TableSource(_vizier_style(catalogue))
    rng = np.random.default_rng(0)
    cells = rng.choice(np.unique(catalogue_cells), 12, replace=False)
    query = np.concatenate([cells, cells[:3], [0, 196607]])  # duplicates, empty cells
    got = source.query_cells(query, ORDER)
    assert_same_stars(got, expected_stars(catalogue, catalogue_cells, cells))
    assert np.all(np.diff(got["cell"]) >= 0)
    # the cells of another order are computed (and kept) separately
    coarse = source.query_cells(np.unique(catalogue_cells >> 2), ORDER - 1)
    assert len(coarse) == len(catalogue)


def test_query_cone(catalogue):
    source = TableSource(catalogue)
    centre = SkyCoord(280.0 * u.deg, 0.0 * u.deg, frame="galactic")
    got = source.query_cone(centre.icrs, 0.25 * u.deg)
    sep = SkyCoord(catalogue["l"], catalogue["b"], unit="deg",
                   frame="galactic").separation(centre)
    assert_same_stars(got, catalogue[sep <= 0.25 * u.deg])
    with pytest.raises(ValueError, match="positive"):
        source.query_cone(centre, 0 * u.deg)
    with pytest.raises(ValueError, match="scalar"):
        source.query_cone(SkyCoord([1, 2], [0, 0], unit="deg"), 1 * u.deg)


@pytest.mark.parametrize("ext, fmt", [(".fits", None), (".xml", "votable"), (".csv", None),
                                      (".ecsv", None), (".parquet", None)])
def test_files(catalogue, catalogue_cells, tmp_path, ext, fmt):
    t = _vizier_style(catalogue)
    if ext == ".csv":
        t = _irsa_style(catalogue)
    path = tmp_path / f"stars{ext}"
    with warnings.catch_warnings():
        # astropy's VOTable writer notes that '2MASS' is not a valid ID
        warnings.simplefilter("ignore", VOWarning)
        t.write(path, format=fmt) if fmt else t.write(path)
    source = TableSource(path, format=fmt)
    assert source.key.startswith(f"table:stars{ext}:") and len(source) == len(catalogue)
    # the key follows the content: the same stars from any file format share it, other
    # stars do not
    assert source.key.split(":")[-1] == TableSource(catalogue).key.split(":")[-1]
    assert TableSource(catalogue[:-1]).key != TableSource(catalogue).key
    cells = np.unique(catalogue_cells)[:5]
    assert_same_stars(source.query_cells(cells, ORDER),
                      expected_stars(catalogue, catalogue_cells, cells))


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TableSource(tmp_path / "missing.fits")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(ValueError, match="could not read star table file"):
        TableSource(bad)


def test_many_cells_one_searchsorted(catalogue):
    # all cells of the sky at order 7 in one call: no loop over cells
    source = TableSource(catalogue)
    got = source.query_cells(np.arange(12 * 4**ORDER), ORDER)
    assert len(got) == len(catalogue)
    np.testing.assert_array_equal(got["cell"],
                                  np.sort(lonlat_to_cells(catalogue["l"], catalogue["b"],
                                                          ORDER)))


def test_table_without_flags_is_cut_on_errors():
    from cnnext.cmds import build_cmds
    from cnnext.exceptions import CnnextWarning

    t = Table({"l": [280.0, 280.0], "b": [0.0, 0.0], "J": [12.0, 15.5], "H": [11.5, 15.0],
               "Ks": [11.3, 14.8], "e_J": [0.03, 0.30], "e_H": [0.03, 0.05],
               "e_Ks": [0.03, 0.05]})
    with pytest.warns(CnnextWarning, match=r"no 2MASS quality flags.*0\.21714"):
        source = TableSource(t)
    stars = source.stars
    # the second star's J error (0.30 mag) is beyond 2MASS's C grade: its J-Ks is not
    # counted, while the same star with a C-grade letter and no cc flag would be
    _, n = build_cmds(stars, np.array([0, 0]), 1)
    assert n.tolist() == [1]
    flagged = stars.copy()
    flagged["ph_qual"], flagged["cc_flg"] = ["AAA", "AAA"], ["000", "000"]
    _, n_flagged = build_cmds(flagged, np.array([0, 0]), 1)
    assert n_flagged.tolist() == [2]
