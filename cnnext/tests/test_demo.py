# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the offline demo (cnnext.demo and ``cnnext demo``) on a tiny region and model."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable

from cnnext import demo
from cnnext.cli import main
from cnnext.exceptions import ModelFileError
from cnnext.testing.models import write_tiny_model

TINY_REGION = "galactic; box(285, 0, 1, 1, 0)"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def demo_run(tiny_model, tmp_path_factory):
    pytest.importorskip("cnnext.synthetic", reason="needs the mock sky")
    out = tmp_path_factory.mktemp("demo")
    return demo.run_demo(out, model=tiny_model, region=TINY_REGION, seed=1)


def test_run_demo_tiny_region(demo_run, tiny_model):
    r = demo_run
    pm = r.profile_map
    assert r.map_path.is_file() and (r.outdir / "metrics.ecsv").is_file()
    assert len(pm) > 0 and r.truth.shape == pm.av.shape
    # the truth is a cumulative extinction: non-negative and non-decreasing
    assert np.all(r.truth >= 0) and np.all(np.diff(r.truth, axis=1) >= -1e-9)
    m = r.metrics
    assert m["distance"].to_value(u.kpc).tolist() == list(demo.METRIC_DISTANCES)
    # recompute the 2 kpc row from the arrays: the table is the truth comparison
    i = int(np.argmin(np.abs(pm.distances - 2.0)))
    ok = np.isfinite(pm.av[:, i])
    err = pm.av[ok, i] - r.truth[ok, i]
    assert m["n"][1] == ok.sum()
    assert m["bias"][1].to_value(u.mag) == pytest.approx(err.mean(), rel=1e-5, abs=1e-6)
    assert m["rms"][1].to_value(u.mag) == pytest.approx(np.sqrt((err**2).mean()), rel=1e-5)
    assert m["coverage68"][1] == pytest.approx(
        np.mean(np.abs(err) <= pm.sigma[ok, i]), abs=1e-9)
    saved = QTable.read(r.outdir / "metrics.ecsv")
    np.testing.assert_allclose(saved["rms"].value, m["rms"].value)
    assert set(r.figures) == {"slice", "face_on", "profiles", "cmd"}
    for path in r.figures.values():
        assert path.read_bytes().startswith(b"\x89PNG")
    text = demo.format_report(r)
    assert f"{len(pm)} cells at HEALPix order 7" in text
    assert text.count("\n") > 10 and "cover68" in text



def test_run_demo_structure(demo_run):
    from cnnext.metrics import STRUCTURE_SCALES, ring_share

    r = demo_run
    pm = r.profile_map
    s = r.structure
    assert s["scale"].to_value(u.kpc).tolist() == list(STRUCTURE_SCALES)
    assert s["ring_share"][0] == pytest.approx(ring_share(pm.av, r.truth, pm.distances))
    assert "fog_index" in s.meta
    saved = QTable.read(r.outdir / "structure.ecsv")
    np.testing.assert_allclose(saved["density_r"], s["density_r"])
    text = demo.format_report(r)
    assert "density_r" in text and "fingers-of-God index" in text
    assert str(r.outdir / "structure.ecsv") in text

@pytest.mark.slow
def test_demo_cli(tiny_model, tmp_path, capsys):
    pytest.importorskip("cnnext.synthetic", reason="needs the mock sky")
    out = tmp_path / "cli-demo"
    assert main(["demo", "--outdir", str(out), "--model", str(tiny_model), "--region",
                 TINY_REGION, "--seed", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"cnnext demo: {TINY_REGION}")
    rows = [line.split() for line in text.splitlines()
            if line.strip() and line.split()[0] in ("1.0", "2.0", "4.0", "6.0", "8.0")]
    assert [r[0] for r in rows] == ["1.0", "2.0", "4.0", "6.0", "8.0"]
    assert (out / "slice.png").is_file() and (out / "demo-map.fits").is_file()
    # it ends by saying what to try next, with a command that works on its map
    tail = text[text.index("What to try next:"):].splitlines()
    query = tail[1].split()
    assert query[:1] == ["cnnext"] and query[-1] == str(out / "demo-map.fits")
    assert main(query[1:]) == 0
    assert "A_V(l=" in capsys.readouterr().out


def test_missing_shipped_model(tmp_path, monkeypatch, capsys):
    import cnnext.model

    monkeypatch.setattr(cnnext.model, "default_model_path",
                        lambda: tmp_path / "cnnext-carina.onnx")
    with pytest.raises(ModelFileError, match="shipped model .* is missing.*--model PATH"):
        demo.run_demo(tmp_path / "out")
    assert main(["demo", "--outdir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "cnnext demo: error: the shipped model" in err and "cnnext train" in err
