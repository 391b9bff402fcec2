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
