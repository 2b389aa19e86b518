"""``reid-repro studies``: the committed Optuna studies as a journal optuna-dashboard reads (``make dashboard``).

The tune stage keeps each study in the shared journal ``optuna.journal`` (reid_repro/tuning.py), which is machine
state, not a result: it is not committed, so a fresh clone has none. What is committed for each study is its
export, ``studies/<name>/trials.csv`` (every trial's number, state, value, seconds, parameters and whether it is
the paper's setting) and ``metrics.json`` (the study's name). This command rebuilds a journal from those: one
study per export, under its committed name, each trial with its parameters and their search-space
distributions (``conf/studies.yaml: studies.<name>.space``), its state and value, and as user attributes the
seconds it took and whether it is the paper's setting. The per-epoch values a pruned trial reported are not in
the export; its last reported value is kept as the user attribute ``last_value``.
"""

from __future__ import annotations

HELP = "rebuild an Optuna journal of the committed studies (studies/<name>/trials.csv) for optuna-dashboard"


def add_arguments(p) -> None:
    p.add_argument("--studies", default="studies", help="folder of the committed study exports")
    p.add_argument("--journal", default=".cache/studies.journal", help="the journal file to write (replaced)")
    p.add_argument("--params", default="params.yaml")


def distributions(space: dict) -> dict:
    """optuna distributions of a study's search space (the dimensions tuning.suggest draws from)."""
    import optuna

    out = {}
    for key, d in space.items():
        if d.kind == "float":
            out[key] = optuna.distributions.FloatDistribution(d.low, d.high, log=d.log)
        elif d.kind == "int":
            out[key] = optuna.distributions.IntDistribution(int(d.low), int(d.high), log=d.log)
        else:
            out[key] = optuna.distributions.CategoricalDistribution(d.choices)
    return out


def write_journal(params: dict, studies: str, journal: str) -> list[tuple[str, int]]:
    """Write ``journal`` from every committed export under ``studies`` that params.yaml declares; returns
    (study name, trials) per study."""
    import json
    from pathlib import Path

    import optuna
    import pandas as pd
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from reid_repro.config import load_study
    from reid_repro.errors import ReidReproError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = Path(journal)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, path.with_name(path.name + ".lock")):
        old.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    written = []
    for key in sorted(params.get("studies") or {}):
        folder = Path(studies) / key
        if not (folder / "trials.csv").is_file() or not (folder / "metrics.json").is_file():
            continue                     # declared but not built (yet)
        cfg = load_study(params, key)
        dists = distributions(cfg.space)
        name = json.loads((folder / "metrics.json").read_text())["study"]
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr("export", str(folder / "trials.csv"))
        study.set_user_attr("run", cfg.run)
        table = pd.read_csv(folder / "trials.csv")
        for row in table.to_dict("records"):
            values = {k.removeprefix("params_"): v for k, v in row.items() if k.startswith("params_")}
            unknown = sorted(set(values) - set(dists))
            if unknown:
                raise ReidReproError(f"{folder / 'trials.csv'}: parameter {unknown[0]!r} is not in params.yaml: "
                                     f"studies.{key}.space (the export is of another space)")
            trial_params = {k: (int(v) if isinstance(dists[k], optuna.distributions.IntDistribution) else
                                float(v) if isinstance(dists[k], optuna.distributions.FloatDistribution) else v)
                            for k, v in values.items()}
            state = optuna.trial.TrialState[row["state"]]
            attrs = {"paper_setting": bool(row["paper_setting"]), "seconds": row["seconds"],
                     "number_in_export": int(row["number"])}
            if state != optuna.trial.TrialState.COMPLETE:
                attrs["last_value"] = row["value"]
            study.add_trial(optuna.trial.create_trial(
                state=state, value=row["value"] if state == optuna.trial.TrialState.COMPLETE else None,
                params=trial_params, distributions={k: dists[k] for k in trial_params}, user_attrs=attrs))
        written.append((name, len(table)))
    return written


def run(args) -> str:
    from reid_repro.config import load_params

    written = write_journal(load_params(args.params), args.studies, args.journal)
    return (f"studies: {len(written)} committed studies ("
            + ", ".join(f"{name}: {n} trials" for name, n in written) + f") in {args.journal}")
