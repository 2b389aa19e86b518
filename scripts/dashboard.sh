#!/usr/bin/env bash
# optuna-dashboard over the project's studies (`make dashboard`, `make dashboard PORT=9000`): the journal file
# optuna.journal at the repository root, or OPTUNA_STORAGE (e.g. a PostgreSQL URL). Binds to 127.0.0.1 unless
# DASHBOARD_HOST says otherwise.
set -euo pipefail
storage="${OPTUNA_STORAGE:-optuna.journal}"
case "$storage" in
  *://*) ;;
  *) [ -f "$storage" ] || { echo "error: $storage: no study yet (run \`dvc repro\` or \`reid-repro tune --study <name> --out studies/<name>\` first)" >&2; exit 1; } ;;
esac
exec optuna-dashboard --host "${DASHBOARD_HOST:-127.0.0.1}" --port "${PORT:-8080}" "$storage"
