#!/usr/bin/env bash
# What a fresh machine needs besides python3: git (DVC and the run provenance), EGL (rendering the synthetic
# world and the structure renders headless). Names the Debian package of anything missing; exit 1 if so.
missing=()
command -v git >/dev/null 2>&1 || missing+=("git (Debian: git)")
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3 venv (Debian: python3-venv)")
if [ "${PYOPENGL_PLATFORM:-egl}" = "osmesa" ]; then
  ldconfig -p 2>/dev/null | grep -q 'libOSMesa.so' || missing+=("OSMesa (Debian: libosmesa6)")
else
  ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing+=("EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)")
  ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so.0' || missing+=("Mesa's EGL driver (Debian: libegl-mesa0 libgl1-mesa-dri)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "reid-repro needs these system packages, missing here:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "install them (e.g. sudo apt-get install git libegl1 libegl-mesa0 libgl1-mesa-dri) and run make again" >&2
  exit 1
fi
