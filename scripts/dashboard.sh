#!/usr/bin/env bash
# optuna-dashboard over the project's studies (`make dashboard`, `make dashboard PORT=9000`): OPTUNA_STORAGE (e.g.
# a PostgreSQL URL) when set; else the journal optuna.journal at the repository root when this machine has run
# studies; else (a fresh clone) a journal rebuilt from the committed exports studies/<name>/trials.csv
# (`reid-repro studies`, written to .cache/studies.journal). Binds to 127.0.0.1 unless DASHBOARD_HOST says otherwise.
set -euo pipefail
storage="${OPTUNA_STORAGE:-}"
case "$storage" in
  ""|*://*) ;;
  *) [ -f "$storage" ] || { echo "error: $storage: no study yet (OPTUNA_STORAGE names a journal file that does not exist; unset it to serve the committed studies)" >&2; exit 1; } ;;
esac
if [ -z "$storage" ]; then
  if [ -f optuna.journal ]; then
    storage=optuna.journal
  else
    reid-repro studies --journal .cache/studies.journal
    storage=.cache/studies.journal
  fi
fi
exec optuna-dashboard --host "${DASHBOARD_HOST:-127.0.0.1}" --port "${PORT:-8080}" "$storage"
