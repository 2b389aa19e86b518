"""environment.yml (the conda route for older NVIDIA drivers) names the same packages as the project at the
pins of requirements.lock, so both routes install the same package set."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch", "faiss-cpu": "faiss-gpu"}   # conda-forge's names for the GPU route


def _name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _lock() -> dict:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _environment() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for req in dep["pip"]:
                name, _, version = req.partition("==")
                pins[_name(name)] = version
        else:
            name, _, version = dep.partition("=")
            pins[name.lower()] = version.split("=")[0]
    return pins


def test_environment_yml_has_every_dependency_at_the_locked_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    lock, env = _lock(), _environment()
    missing, differ = [], []
    for name in wanted:
        conda = CONDA_NAMES.get(name, name)
        if conda not in env:
            missing.append(name)
        elif env[conda] != lock[name]:
            differ.append(f"{conda}: environment.yml {env[conda]}, requirements.lock {lock[name]}")
    assert not missing, f"environment.yml lacks {missing}"
    assert not differ, "pins differ: " + "; ".join(differ)


def test_the_avx2_reference_settings_hold_torch_to_avx2_and_fp32():
    """scripts/cpu_avx2.env (`make repro CPU=avx2`): sourced, torch's kernels are AVX2, oneDNN reports no native
    bf16, so `precision: auto` computes in float32, as the committed results did, on any x86 CPU with AVX2, and
    torch runs 2 intra-op threads (the committed runs' count; gradients depend on it in the last bit)."""
    import platform
    import subprocess
    import sys

    import pytest

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the AVX2 reference settings are for x86-64 CPUs")
    code = ("import torch; from reid_repro.models import resolve_precision; "
            "print(torch.backends.cpu.get_cpu_capability(), resolve_precision('auto', 'cpu'), torch.get_num_threads())")
    out = subprocess.run(["bash", "-c", f'. "{ROOT / "scripts" / "cpu_avx2.env"}" && "{sys.executable}" -c "{code}"'],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["AVX2", "fp32", "2"]   # 2 intra-op threads, as the committed runs
