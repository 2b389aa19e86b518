"""Reference numerics: the CPU kernels, thread count and precision every committed result was computed with.

The committed results were trained in float32 with the CPU libraries held to their AVX2 kernels on 2 threads.
Each library picks its kernels from the CPU it finds (AVX-512, AVX512-BF16, AMX; MKL also by vendor), so on
another CPU the same code computes other numbers unless those choices are pinned. Every entry point pins them by
default: ``reid-repro`` (and so every DVC stage) sets :data:`REFERENCE_ENV` and starts itself again when the
environment it was started with differs (most libraries read their switch once, when they load); the Makefile
and the test suite set it too. ``REID_CPU=native`` (``make repro CPU=native``) opts out: the machine's own
kernels, and every run records that it is off the reference (``run.json`` ``environment.numerics``), which the
report and ``reid-repro verify`` show.

``REID_THREADS=<n>`` changes the thread count (the reference is 2: torch splits a convolution's weight-gradient
reduction across its threads, and 1 and 2 threads differ in the last bit). ``scripts/cpu_avx2.env`` is the same
settings for a shell (`tests/test_environment.py` checks that the two agree).

This module imports nothing heavy: it must run before numpy and torch load.
"""

from __future__ import annotations

import os
import platform
import sys

MODES = ("reference", "native")
REFERENCE_THREADS = 2

# The libraries' own switches. Each is read when its library loads or first computes. MKL chooses its code path
# by CPU vendor: a branch such as MKL_CBWR=AVX2 holds only on Intel CPUs (an AMD one falls back to MKL's own
# choice), so AMD and Intel machines computed different products until 2026-12-07; COMPATIBLE is the one branch
# MKL applies everywhere (docs/numerics.md "Across CPUs"; bench/exp_cross_vendor.py measures it).
REFERENCE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",          # PyTorch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",           # oneDNN (convolutions; also what reports native bf16)
    "DNNL_MAX_CPU_ISA": "AVX2",             # the same, by its older name
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",      # MKL inside torch (matrix products)
    "MKL_CBWR": "COMPATIBLE",               # MKL's one code path for every x86 CPU (AVX2 is Intel-only: above)
    "MKL_DYNAMIC": "FALSE",                 # MKL uses the threads it is given, never fewer by its own judgement
    "OPENBLAS_CORETYPE": "Haswell",         # NumPy's and SciPy's OpenBLAS
    "FAISS_OPT_LEVEL": "avx2",              # faiss' AVX2 build of its kernels
    "NUMBA_CPU_NAME": "haswell",            # numba's compiled k-reciprocal and ranking loops
    "LP_NATIVE_VECTOR_WIDTH": "256",        # Mesa llvmpipe (the world's renderer)
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR",
}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# set by :func:`ensure` before it starts the process again, so that it does so at most once
REEXEC_MARK = "REID_REPRO_NUMERICS_SET"


class NumericsError(ValueError):
    """An unknown ``REID_CPU`` or ``REID_THREADS`` (raised before anything is computed)."""


def mode(environ=None) -> str:
    """``reference`` (the default) or ``native``: what ``REID_CPU`` asks for."""
    environ = os.environ if environ is None else environ
    value = environ.get("REID_CPU", "") or "reference"
    value = {"avx2": "reference"}.get(value, value)      # `make repro CPU=avx2`, the older spelling
    if value not in MODES:
        raise NumericsError(f"REID_CPU={value!r}; expected reference (the default: the kernels the committed "
                            "results were computed with) or native (this CPU's own kernels)")
    return value


def threads(environ=None) -> int:
    """The thread count of the reference (``REID_THREADS`` overrides it, at the cost of matching)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("REID_THREADS", "") or str(REFERENCE_THREADS)
    if not raw.isdigit() or int(raw) < 1:
        raise NumericsError(f"REID_THREADS={raw!r}; expected a whole number >= 1")
    return int(raw)


def x86() -> bool:
    """The reference is an x86-64 one (AVX2 kernels): elsewhere (aarch64) there is none to hold the libraries to,
    runs compute natively and record that they are off the reference."""
    return platform.machine().lower() in ("x86_64", "amd64")


def wanted(environ=None) -> dict[str, str]:
    """The variables the current mode sets: the reference's in reference mode on x86-64, none in native mode or
    on another architecture."""
    environ = os.environ if environ is None else environ
    if mode(environ) == "native" or not x86():
        return {}
    n = str(threads(environ))
    return {**REFERENCE_ENV, **{name: n for name in THREAD_VARS}}


def apply(environ=None) -> list[str]:
    """Set the current mode's variables in ``environ`` (default ``os.environ``); returns the names it changed.
    Effective for every library that has not loaded yet (numpy and torch: call it before importing them)."""
    environ = os.environ if environ is None else environ
    changed = [k for k, v in wanted(environ).items() if environ.get(k) != v]
    for k in changed:
        environ[k] = wanted(environ)[k]
    environ["REID_CPU"] = mode(environ)
    return changed


def ensure(argv: list[str]) -> None:
    """At the start of the ``reid-repro`` command: in reference mode, when the environment differs from the
    reference, set it and start the command again (``os.execv``), because numpy, torch, oneDNN and MKL read
    their switches when they load, and some may have loaded already (the console script's imports). Does
    nothing when the environment already holds, in native mode, or when it has started once already."""
    if os.environ.get(REEXEC_MARK) == "1":
        return
    changed = apply()
    if changed and any(m in sys.modules for m in ("numpy", "torch")):
        os.environ[REEXEC_MARK] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "reid_repro.cli", *argv])


def kernel_set() -> str:
    """The CPU kernel set this process computes with, e.g. ``reference (torch AVX2, oneDNN AVX2, 2 threads)`` or
    ``native (torch AVX512, oneDNN default, 2 threads)``: named in errors and recorded by every run."""
    import torch

    return (f"{mode()} (torch {torch.backends.cpu.get_cpu_capability()}, oneDNN "
            f"{os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get('DNNL_MAX_CPU_ISA') or 'default'}, "
            f"{torch.get_num_threads()} threads)")


def cpu() -> dict:
    """The CPU's vendor and model name as Linux reports them (recorded by every run beside its numerics: under the
    reference two vendors are meant to agree, and a run's record says which one computed it)."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            key, _, value = line.partition(":")
            if key.strip() in ("vendor_id", "model name") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return {"vendor": fields.get("vendor_id") or platform.processor() or None, "model": fields.get("model name")}


def describe() -> dict:
    """What a run records (``run.json`` ``environment.numerics``): the mode, whether this process computes
    exactly as the reference does (its variables set, torch on AVX2, the reference thread count), and each
    variable as found."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    reference = (mode() == "reference" and all(os.environ.get(k) == v for k, v in REFERENCE_ENV.items())
                 and capability == "AVX2" and torch.get_num_threads() == REFERENCE_THREADS)
    return {"mode": mode(), "reference": reference, "cpu_capability": capability,
            "torch_threads": torch.get_num_threads(), "kernel_set": kernel_set(),
            "env": {k: os.environ.get(k) for k in (*REFERENCE_ENV, *THREAD_VARS)}}


def run_is_reference(run_info: dict) -> bool | None:
    """Whether a run's ``run.json`` says it was computed under reference numerics: its ``environment.numerics``
    when recorded; for runs written before that was recorded, float32 on torch's AVX2 kernels with 2 threads
    (how the committed runs were built). None when the record says too little to tell."""
    env = run_info.get("environment") or {}
    numerics = env.get("numerics")
    if isinstance(numerics, dict) and "reference" in numerics:
        return bool(numerics["reference"])
    capability = (env.get("device") or {}).get("cpu_capability")
    precision = (run_info.get("inputs") or {}).get("precision")
    if capability is None or precision is None:
        return None
    return capability == "AVX2" and precision == "fp32" and env.get("torch_threads") == REFERENCE_THREADS
