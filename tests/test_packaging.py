"""environment.yml (conda) and pyproject.toml must list the same packages, so neither drifts."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        py |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda |= {_name(r) for r in dep["pip"]}
        else:
            conda.add(_name(dep))
    conda -= {"python", "pip"}
    assert py == conda, f"only in pyproject: {py - conda}; only in environment.yml: {conda - py}"


def test_constraints_pin_torch():
    text = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==", text, re.M) and re.search(r"^torchvision==", text, re.M)
