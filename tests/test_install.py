"""The install instructions: the CPU wheel's requirements file pins the torch that pyproject.toml pins."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cpu_requirements_pin_the_same_torch_from_the_cpu_index():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if re.match(r"torch\b", d)).replace(" ", "")
    lines = [s.strip() for s in (ROOT / "requirements-cpu.txt").read_text().splitlines()
             if s.strip() and not s.startswith("#")]
    assert lines == ["--index-url https://download.pytorch.org/whl/cpu", pin]
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements-cpu.txt" in readme and "download.pytorch.org/whl/cpu" in readme


def test_every_package_folder_is_installed():
    """A fresh install ships every folder of se_app with an __init__.py (se_app.ui is a package of its own)."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "se_app").rglob("__init__.py")}
    assert found <= set(listed), f"add {sorted(found - set(listed))} to [tool.setuptools] packages"


def test_extras_name_the_optional_packages_and_dev_installs_them():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("speechmos==") for d in extras["dnsmos"])
    for name in ("dnsmos", "onnx", "peers", "baselines"):
        assert set(extras[name]) <= set(extras["dev"]), name
