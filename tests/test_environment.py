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


def _clean_env(**extra) -> dict:
    """This process's environment without any numerics setting (as a fresh shell has it), plus ``extra``."""
    import os

    from reid_repro.numerics import REFERENCE_ENV, THREAD_VARS

    drop = {*REFERENCE_ENV, *THREAD_VARS, "REID_CPU", "REID_THREADS", "REID_REPRO_NUMERICS_SET",
            "OPENBLAS_NUM_THREADS"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _x86():
    import platform

    import pytest

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the AVX2 reference settings are for x86-64 CPUs")


def test_the_avx2_reference_settings_hold_torch_to_avx2_and_fp32():
    """scripts/cpu_avx2.env (what the Makefile sources by default): sourced, torch's kernels are AVX2, `precision:
    auto` computes in float32, as the committed results did, on any x86 CPU with AVX2, and torch runs 2 intra-op
    threads (the committed runs' count; gradients depend on it in the last bit). The file sets exactly the
    variables reid_repro/numerics.py sets."""
    import re
    import subprocess
    import sys

    from reid_repro.numerics import REFERENCE_ENV, THREAD_VARS

    _x86()
    exported = dict(re.findall(r"^export (\w+)=(.*?)\s*(?:#.*)?$", (ROOT / "scripts" / "cpu_avx2.env").read_text(), re.M))
    exported = {k: v.strip('"') for k, v in exported.items()}
    assert exported == {**REFERENCE_ENV, **{k: "${REID_THREADS:-2}" for k in THREAD_VARS}}
    code = ("import torch; from reid_repro.models import resolve_precision; "
            "print(torch.backends.cpu.get_cpu_capability(), resolve_precision('auto', 'cpu'), torch.get_num_threads())")
    out = subprocess.run(["bash", "-c", f'. "{ROOT / "scripts" / "cpu_avx2.env"}" && "{sys.executable}" -c "{code}"'],
                         capture_output=True, text=True, check=True, env=_clean_env()).stdout.split()
    assert out == ["AVX2", "fp32", "2"]   # 2 intra-op threads, as the committed runs


def test_mkl_computes_on_the_reference_branch_on_this_cpu():
    """MKL picks its code path by CPU vendor: a branch such as ``MKL_CBWR=AVX2`` holds only on Intel CPUs, and an
    AMD one falls back to its own automatic choice (MKL_VERBOSE then prints ``CNR:AUTO``), so AMD and Intel
    machines computed different matrix products (measured 2026-12-07: the pretrained start's weights differed).
    Under the reference settings MKL must say that it computes on the reference's branch, whatever CPU runs this."""
    import subprocess
    import sys

    from reid_repro.numerics import REFERENCE_ENV

    _x86()
    code = "import torch; torch.randn(64, 512) @ torch.randn(512, 10)"   # nn.Linear's product: MKL's sgemm
    out = subprocess.run(["bash", "-c", f'. "{ROOT / "scripts" / "cpu_avx2.env"}" && "{sys.executable}" -c "{code}"'],
                         capture_output=True, text=True, check=True, env=_clean_env(MKL_VERBOSE="1")).stdout
    calls = [line for line in out.splitlines() if "SGEMM(" in line]
    assert calls, f"MKL_VERBOSE printed no SGEMM call:\n{out}"
    assert all(f"CNR:{REFERENCE_ENV['MKL_CBWR']}" in line for line in calls), calls


def test_the_command_computes_under_reference_numerics_unless_told_native():
    """`reid-repro` started from a bare environment holds itself to the reference (torch AVX2, 2 threads, fp32 on
    the CPU), also when numpy or torch loaded before its main() ran (it starts itself again, once); REID_CPU=native
    leaves the machine's kernels alone and the record says it is off the reference; a wrong value is an error."""
    import json
    import subprocess
    import sys

    _x86()
    cmd = [sys.executable, "-m", "reid_repro.cli", "numerics", "--json", "--params", str(ROOT / "params.yaml")]
    ref = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=_clean_env()).stdout)
    assert ref["mode"] == "reference" and ref["reference"] and ref["cpu_capability"] == "AVX2"
    assert ref["torch_threads"] == 2 and ref["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert ref["precision"]["cpu"] == "fp32"
    preloaded = ("import sys, numpy, torch; sys.argv = ['reid-repro', 'numerics', '--json', '--params', "
                 f"{str(ROOT / 'params.yaml')!r}]; from reid_repro.cli import main; sys.exit(main())")
    again = json.loads(subprocess.run([sys.executable, "-c", preloaded], capture_output=True, text=True, check=True,
                                      env=_clean_env()).stdout)
    assert again["reference"] and again["cpu_capability"] == "AVX2" and again["torch_threads"] == 2
    native = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                       env=_clean_env(REID_CPU="native")).stdout)
    assert native["mode"] == "native" and not native["reference"]
    assert native["env"]["ONEDNN_MAX_CPU_ISA"] is None and native["precision"]["cpu"] == "fp32"
    bad = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(REID_CPU="fast"))
    assert bad.returncode == 2 and "REID_CPU='fast'; expected reference" in bad.stderr
