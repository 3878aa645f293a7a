# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json

from cnnext import __version__
from cnnext.cli import main
from cnnext.testing.models import write_tiny_model


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_info(tmp_path, capsys):
    path = write_tiny_model(tmp_path / "tiny.onnx", metadata_overrides={
        "metrics": {"median_rel_err_4kpc": 0.1}})
    assert main(["info", str(path), "--providers", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "100 nodes, 0.1-10 kpc" in out
    assert "median_rel_err_4kpc: 0.1" in out
    assert main(["info", str(path), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["cnnext.healpix_order"] == 7


def test_info_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
