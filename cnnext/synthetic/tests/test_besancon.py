# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from cnnext.exceptions import CnnextWarning
from cnnext.synthetic import BESANCON_EXTINCTION, distance_modulus, johnson_to_2mass, read_besancon

BANNER = """\
 ***********************************************************
 *   BESANCON MODEL OF STELLAR POPULATION SYNTHESIS (test)  *
 ***********************************************************

  (l =   280.0; b =    0.0)  Distance  0.0 a  25.0 kpc;  Solid angle      0.050  square degree
  SELECTIONS :
      Apparent magnitudes Band   K  :  -99.00- 16.00
{kin}
  Absorption at s.n. : {av:.2f} mag./kpc   0 clouds
"""
SUMMARY = """\
  Star density before selection    1234.0 after  theorical selection   1234.0
  TOTAL NUMBER OF STARS :    {n}
"""

# Dist Mv CL Typ LTef logg Age Mass, J-H H-K J-K V-K, ref, [kin], [Fe/H] l b Av Mbol
STARS = [
    # dist   Mv   CL  Typ  LTef  logg Age Mass  J-H    H-K    J-K    V-K   feh   Av
    (0.500, 4.80, 5, 4.50, 3.760, 4.44, 5, 1.00, 0.310, 0.050, 0.360, 1.480, 0.00, 0.35),
    (2.100, 0.80, 3, 8.10, 3.680, 2.50, 7, 1.20, 0.620, 0.120, 0.740, 2.450, -0.30, 1.47),
    (7.950, -2.10, 3, 9.50, 3.590, 1.10, 8, 0.90, 0.800, 0.250, 1.050, 3.900, -0.80, 5.57),
]
KIN = (1.25, -3.50, 12.3, -10.0, 15.2, 3.3)


def _write(path, ref="V", kinematics=False, av=0.0, total=None, header=None):
    cols = "Dist    Mv  CL Typ  LTef  logg Age Mass  J-H    H-K    J-K    V-K    " + ref
    if kinematics:
        cols += "  mux  muy  Vr  UU  VV  WW"
    cols += "  [Fe/H] l           b         Av   Mbol"
    header = header or cols
    lines = [BANNER.format(kin="      Kinematics" if kinematics else "      No kinematics",
                           av=av), "  " + header]
    for (d, mv, cl, typ, lt, lg, age, mass, jh, hk, jk, vk, feh, ext) in STARS:
        v = mv + distance_modulus(d) + ext
        k = v - vk
        refmag = v if ref == "V" else k
        row = (f"{d:7.3f} {mv:5.2f} {cl:2d} {typ:4.2f} {lt:5.3f} {lg:5.2f} {age:2d} {mass:4.2f}"
               f" {jh:6.3f} {hk:6.3f} {jk:6.3f} {vk:6.3f} {refmag:6.3f}")
        if kinematics:
            row += " " + " ".join(f"{x:7.2f}" for x in KIN)
        row += f" {feh:5.2f} 280.00000 0.00000 {ext:6.3f} 0.000"
        lines.append("  " + row)
    lines.append("  " + header)
    lines.append(SUMMARY.format(n=len(STARS) if total is None else total))
    path.write_text("\n".join(lines))
    return path


def _expected():
    out = []
    for (d, mv, _cl, _typ, _lt, _lg, _age, _mass, _jh, hk, jk, vk, _feh, ext) in STARS:
        v = mv + distance_modulus(d) + ext
        k = v - vk
        c = BESANCON_EXTINCTION.coefficients
        out.append(johnson_to_2mass(k + jk - c["J"] * ext, k + hk - c["H"] * ext,
                                    k - c["Ks"] * ext))
    return np.array(out, dtype=float)


@pytest.mark.parametrize("ref", ["V", "K"])
@pytest.mark.parametrize("kinematics", [False, True])
def test_read_both_references_with_and_without_kinematics(tmp_path, ref, kinematics):
    path = _write(tmp_path / f"bes_{ref}_{kinematics}.resu", ref=ref, kinematics=kinematics)
    t = read_besancon(path)
    assert len(t) == 3
    for name in ("l", "b", "distance", "M_J", "M_H", "M_Ks", "J", "H", "Ks", "population",
                 "age", "mh", "mass", "phase"):
        assert name in t.colnames
    np.testing.assert_allclose(np.c_[t["J"], t["H"], t["Ks"]], _expected(), atol=2e-3)
    np.testing.assert_allclose(t["Ks"] - t["M_Ks"], distance_modulus(t["distance"]))
    assert t["population"].tolist() == [5, 7, 8]
    np.testing.assert_allclose(t["age"], [4.0, 8.5, 11.0])
    assert np.all(np.isnan(t["Mbol"]))
    assert t.meta["reference_band"] == ref
    assert t.meta["kinematics"] is kinematics
    assert t.meta["l"] == 280.0 and t.meta["b"] == 0.0
    assert t.meta["solid_angle_deg2"] == 0.05
    assert t.meta["diffuse_av_per_kpc"] == 0.0
    assert ("mux" in t.colnames) is kinematics
    if kinematics:
        assert t["Vr"][0] == pytest.approx(12.3)


def test_carpenter_conversion():
    J, H, Ks = johnson_to_2mass(11.0, 10.4, 10.2)
    assert Ks == pytest.approx(10.2 - 0.039 + 0.001 * 0.8)
    assert J - Ks == pytest.approx(0.983 * 0.8 - 0.018)
    assert H - Ks == pytest.approx(0.971 * 0.2 + 0.034)
    J0, H0, K0 = johnson_to_2mass(11.0, 10.4, 10.2, {"k0": 0.0, "k1": 0.0, "jk1": 1.0,
                                                     "jk0": 0.0, "hk1": 1.0, "hk0": 0.0})
    assert (J0, H0, K0) == (11.0, 10.4, 10.2)


def test_diffuse_extinction_and_truncation_warn(tmp_path):
    with pytest.warns(CnnextWarning, match="diffuse extinction"):
        t = read_besancon(_write(tmp_path / "ext.resu", av=0.7))
    assert t.meta["diffuse_av_per_kpc"] == 0.7
    with pytest.warns(CnnextWarning, match="truncated"):
        read_besancon(_write(tmp_path / "trunc.resu", total=10))


def test_bad_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not\na catalogue\n")
    with pytest.raises(ValueError, match="junk.txt.*not a Besan"):
        read_besancon(junk)
    bad_header = "Dist    Mv  CL Typ  LTef  logg Age Mass  B-V  U-B  V-I  V-I2  K  " \
                 "[Fe/H] l b Av Mbol"
    path = _write(tmp_path / "nojh.resu", ref="K", header=bad_header)
    with pytest.raises(ValueError, match="nojh.resu.*cannot rebuild"):
        read_besancon(path)
    path = _write(tmp_path / "short.resu")
    text = path.read_text().splitlines()
    row = [i for i, line in enumerate(text) if line.strip().startswith("0.500")][0]
    text[row] = text[row].rsplit(" ", 2)[0]
    path.write_text("\n".join(text))
    with pytest.raises(ValueError, match=f"short.resu: line {row + 1} has"):
        read_besancon(path)
    path = _write(tmp_path / "nofield.resu")
    path.write_text(path.read_text().replace("Solid angle", "Solid cone"))
    with pytest.raises(ValueError, match="nofield.resu.*field line"):
        read_besancon(path)
    with pytest.raises(FileNotFoundError):
        read_besancon(tmp_path / "missing.resu")
