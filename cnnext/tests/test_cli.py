# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the ``cnnext`` command: in-process through cnnext.cli.main, and one subprocess."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cnnext import __version__
from cnnext.cli import main
from cnnext.exceptions import CnnextWarning
from cnnext.extinction import ExtinctionLaw
from cnnext.io.mapfile import read_map
from cnnext.profiles import ProfileMap
from cnnext.region import region_to_cells
from cnnext.testing.dustmaps import write_bayestar_h5, write_edenhofer_fits, write_marshall_h5
from cnnext.testing.models import write_tiny_model
from cnnext.testing.servers import random_stars

LAW = ExtinctionLaw("G23", 3.1)
D = np.round(np.arange(1, 101) * 0.1, 10)


@pytest.fixture(scope="module")
def linear_map(tmp_path_factory):
    """A map with A_V = 0.8 d (kpc) and sigma 0.2 over l = 283-287, |b| <= 1."""
    cells = region_to_cells("galactic; box(285, 0, 4, 2, 0)", 7)
    pm = ProfileMap(cells=cells, order=7, distances=D,
                    av=np.outer(np.ones(cells.size), 0.8 * D),
                    sigma=np.full((cells.size, D.size), 0.2),
                    n_stars=np.full(cells.size, 500), meta={"extinction_law": LAW.to_dict()})
    return pm.write(tmp_path_factory.mktemp("map") / "linear.fits")


def test_version_subprocess():
    out = subprocess.run([sys.executable, "-m", "cnnext.cli", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert out.stdout.strip() == f"cnnext {__version__}"


def test_version_and_help_in_process(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnnext {__version__}"
    # `cnnext` alone: the help, on stderr, and a failure status
    assert main([]) == 2
    out = capsys.readouterr().err
    for command in ("demo", "query", "map", "fetch", "compare"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["query", "--help"])
    assert "--band" in capsys.readouterr().out


def test_warning_printed_once_subprocess(linear_map):
    out = subprocess.run([sys.executable, "-m", "cnnext.cli", "query", "20", "0", "2",
                          "--map", str(linear_map)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1
    assert [line for line in out.stderr.splitlines() if "footprint" in line] == [
        line for line in out.stderr.splitlines() if line.strip()]
    assert out.stderr.count("footprint") == 1


@pytest.mark.slow
def test_closed_pipe_ends_quietly(linear_map):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        out = subprocess.run([sys.executable, "-m", "cnnext.cli", "query", "285", "0",
                              "--map", str(linear_map)], stdout=write,
                             stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert out.stderr == ""
    assert out.returncode == 141


def test_verbosity_after_subcommand(linear_map, capsys):
    assert main(["query", "-v", "285", "0", "2", "--map", str(linear_map)]) == 0
    assert main(["-q", "query", "285", "0", "2", "--map", str(linear_map)]) == 0
    assert main(["query", "--quiet", "285", "0", "2", "--map", str(linear_map)]) == 0
    assert capsys.readouterr().out.count("1.600") == 3
    with pytest.raises(SystemExit):
        main(["query", "-v", "-q", "285", "0", "--map", str(linear_map)])
    assert "not allowed with" in capsys.readouterr().err


def test_query_value_and_profile(linear_map, capsys):
    assert main(["query", "285", "0", "2", "--map", str(linear_map)]) == 0
    # the value, then the cell it comes from (no depth estimate in this map)
    assert capsys.readouterr().out.strip().splitlines() == [
        "A_V(l=285, b=0, d=2 kpc) = 1.600 ± 0.200 mag", "# sightline cell: 500 stars"]
    assert main(["query", "285", "0", "2", "--map", str(linear_map), "--band", "Ks"]) == 0
    ks = LAW.coefficients["Ks"]
    assert f"= {1.6 * ks:.3f} ± {0.2 * ks:.3f} mag" in capsys.readouterr().out
    assert main(["query", "285", "0", "--map", str(linear_map)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# A_V profile at l=285, b=0"
    assert lines[1] == "# sightline cell: 500 stars"
    rows = [line.split() for line in lines[5:]]
    assert len(rows) == 100
    values = np.array(rows, float)
    np.testing.assert_allclose(values[:, 0], D)
    np.testing.assert_allclose(values[:, 1], 0.8 * D, atol=5e-4)
    np.testing.assert_allclose(values[:, 2], 0.2)


def test_query_errors(linear_map, capsys):
    assert main(["query", "285", "0", "2", "--map", str(linear_map), "--band", "R"]) == 1
    assert "unknown --band 'R'" in capsys.readouterr().err
    assert main(["query", "285", "95", "--map", str(linear_map)]) == 1
    assert "b must be in [-90, 90]" in capsys.readouterr().err
    assert main(["query", "285", "0", "--map", "/nonexistent/map.fits"]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.warns(CnnextWarning, match="footprint"):
        assert main(["query", "20", "0", "2", "--map", str(linear_map)]) == 1
    assert "no data" in capsys.readouterr().out


def test_compare_profile_and_slice(linear_map, tmp_path, capsys):
    marshall = write_marshall_h5(tmp_path / "marshall.h5")
    bayestar = write_bayestar_h5(tmp_path / "bayestar.h5")
    eden = write_edenhofer_fits(tmp_path / "eden.fits")
    png = tmp_path / "profiles.png"
    assert main(["compare", str(linear_map), str(marshall), f"b19={bayestar}", str(eden),
                 "--lb", "285", "0", "--quantity", "A_Ks", "--distances", "1", "4",
                 "--png", str(png)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "# A_Ks (mag) at l=285, b=0"
    header = lines[1].split()
    assert header == ["distance", "linear", "linear_sigma", "marshall", "marshall_sigma",
                      "b19", "b19_sigma", "eden", "eden_sigma"]
    row1, row4 = (np.array(lines[i].split(), float) for i in (4, 5))
    ks = LAW.coefficients["Ks"]
    np.testing.assert_allclose(row1[[0, 1, 3]], [1.0, 0.8 * ks, 0.1], atol=6e-4)
    np.testing.assert_allclose(row4[[0, 1, 3, 5]], [4.0, 3.2 * ks, 0.4, 0.3026 * 1.2],
                               atol=0.01)
    assert np.isnan(row4[7])  # Edenhofer stops at 1.25 kpc
    assert "b19: A_Ks = 0.3026 x Bayestar19" in out
    assert png.read_bytes().startswith(b"\x89PNG")

    png = tmp_path / "slice.png"
    assert main(["compare", str(linear_map), "marshall=" + str(marshall), "--slice", "284",
                 "286", "--b", "0", "--distances", "2", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "# A_V (mag), median over l = 284..286 deg at b=0"
    row = np.array(out.splitlines()[4].split(), float)
    np.testing.assert_allclose(row, [2.0, 1.6, 5, 0.2 / LAW.coefficients["Ks"], 5], rtol=2e-3)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_compare_bad_other(linear_map, tmp_path, capsys):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    assert main(["compare", str(linear_map), str(bad), "--lb", "285", "0"]) == 1
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["compare", str(linear_map), str(tmp_path / "missing.h5"), "--lb", "285",
                 "0"]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def star_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stars")
    path = tmp / "stars.ecsv"
    random_stars(3000, l=(279.5, 280.5), b=(-0.5, 0.5), seed=3).write(path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def test_map_fetch_and_query(star_file, tiny_model, tmp_path, capsys):
    region = "galactic; circle(280, 0, 0.4)"
    out = tmp_path / "map.fits"
    assert main(["map", region, "-o", str(out), "--source", str(star_file), "--model",
                 str(tiny_model), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 3 cells at HEALPix order 7")
    pm = read_map(out)
    assert len(pm) == 3 and np.isfinite(pm.av).all()
    # refuses to overwrite, says so
    assert main(["map", region, "-o", str(out), "--source", str(star_file), "--model",
                 str(tiny_model), "--no-progress"]) == 1
    assert "exists" in capsys.readouterr().err
    # the same map from a fetched local catalogue, offline
    cat = tmp_path / "cat"
    assert main(["fetch", region, "-o", str(cat), "--source", str(star_file),
                 "--no-progress"]) == 0
    assert f"wrote {cat}: 3 cells" in capsys.readouterr().out
    out2 = tmp_path / "map2.fits"
    assert main(["map", region, "-o", str(out2), "--source", str(cat), "--model",
                 str(tiny_model), "--no-progress", "--order", "7"]) == 0
    pm2 = read_map(out2)
    np.testing.assert_array_equal(pm2.cells, pm.cells)
    np.testing.assert_allclose(pm2.av, pm.av)
    capsys.readouterr()
    assert main(["map", region, "-o", str(tmp_path / "m3.fits"), "--source", str(star_file),
                 "--model", str(tiny_model), "--order", "6"]) == 1
    assert "order" in capsys.readouterr().err
    assert main(["map", region, "-o", str(tmp_path / "m4.fits"), "--source", "nowhere"]) == 1
    assert "neither 'vizier'" in capsys.readouterr().err
    # query the built map
    c = pm.cells[0]
    from cnnext.healpix import cell_centres

    l, b = cell_centres([c], 7)
    assert main(["query", f"{l[0]:.6f}", f"{b[0]:.6f}", "10", "--map", str(out)]) == 0
    assert f"= {pm.av[0, -1]:.3f} ± {pm.sigma[0, -1]:.3f} mag" in capsys.readouterr().out
    # on the fly from the same stars: the same numbers, nothing cached on disk
    assert main(["query", f"{l[0]:.6f}", f"{b[0]:.6f}", "10", "--source", str(star_file),
                 "--model", str(tiny_model), "--no-cache"]) == 0
    assert f"= {pm.av[0, -1]:.3f} ± {pm.sigma[0, -1]:.3f} mag" in capsys.readouterr().out
