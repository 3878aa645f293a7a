# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``pip install .`` has no torch: querying, maps and the demo must work without it
(only `cnnext.training` needs it, through the ``train`` extra).
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cnnext.testing.models import write_tiny_model

# Runs in a fresh interpreter where importing torch or onnx fails, as on a machine
# with the plain install: import every module outside cnnext.training and run the
# demo on a tiny region, then check that torch was never imported.
SCRIPT = """
import importlib, pkgutil, sys

class NoTrainingDeps:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ImportError(f"No module named {name!r} (blocked by the test)")

sys.meta_path.insert(0, NoTrainingDeps())
import cnnext
for info in pkgutil.walk_packages(cnnext.__path__, "cnnext."):
    parts = info.name.split(".")
    if parts[1] in ("training", "testing", "conftest") or "tests" in parts:
        continue
    importlib.import_module(info.name)
from cnnext.cli import main
status = main(["demo", "--outdir", sys.argv[2], "--model", sys.argv[1], "--region",
               "galactic; box(285, 0, 1, 1, 0)", "--seed", "1", "--no-progress"])
assert status == 0, status
assert "torch" not in sys.modules and "onnx" not in sys.modules
print("NO TORCH OK")
"""


@pytest.mark.slow
def test_demo_and_imports_without_torch(tmp_path):
    pytest.importorskip("cnnext.synthetic", reason="needs the mock sky")
    model = write_tiny_model(tmp_path / "tiny.onnx")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(model), str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "NO TORCH OK" in out.stdout
    assert (tmp_path / "demo" / "demo-map.fits").is_file()


def test_torch_only_in_the_train_extra():
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    project = tomllib.loads(pyproject.read_text())["project"]

    def names(requirements):
        return {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].strip()
                for r in requirements}

    assert "torch" not in names(project["dependencies"])
    assert {"torch", "onnx"} <= names(project["optional-dependencies"]["train"])
    # the test extra keeps training (and so torch) for the training tests
    assert any("train" in r for r in project["optional-dependencies"]["test"])
