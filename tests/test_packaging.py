"""The chapters are tested against the built wheel, as a reader who installed the package runs them.

`make test` builds the wheel, installs it with its declared dependencies and the ``book`` extra into
a second environment, and runs strict nbval in a Jupyter kernel of that environment. These checks
make sure that environment really holds the wheel (not the editable source tree) and its assets.
Run alone (outside `make test`, with no ``KERNELNOTES_WHEEL_ENV``) they are skipped.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL_ENV = os.environ.get("KERNELNOTES_WHEEL_ENV")

pytestmark = pytest.mark.skipif(not WHEEL_ENV, reason="KERNELNOTES_WHEEL_ENV is not set "
                                "(make test sets it after building the wheel environment)")


def wheel_python() -> Path:
    python = ROOT / WHEEL_ENV / "bin" / "python"
    assert python.exists(), f"{python} is missing: run 'make wheel-env'"
    return python


def test_wheel_environment_imports_the_installed_package_not_the_source():
    # run from a neutral directory, as a notebook kernel does from book/
    probe = ("import json, kernelnotes, importlib.metadata as m; "
             "d = m.distribution('kernelnotes'); "
             "print(json.dumps({'file': kernelnotes.__file__, "
             "'direct_url': d.read_text('direct_url.json')}))")
    out = subprocess.run([str(wheel_python()), "-c", probe], cwd=ROOT / "book",
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert "site-packages" in found["file"], found["file"]
    assert str(ROOT / "kernelnotes") not in found["file"]
    direct_url = json.loads(found["direct_url"] or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), "an editable install"


def test_the_wheel_kernel_is_registered_in_the_main_environment():
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "kernelnotes-wheel" / "kernel.json"
    assert spec.exists(), f"{spec} is missing: run 'make wheel-env'"
    argv = json.loads(spec.read_text())["argv"]
    assert Path(argv[0]).resolve() == wheel_python().resolve()
