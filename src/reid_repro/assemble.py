"""Run assembly, above the method plug-ins: a declared run's model and method settings (its method's config class,
its base section, its overrides at the scale in use) and the check of all of params.yaml, which needs every
method's settings class. Configuration (reid_repro.config) knows no method; this module does."""

from __future__ import annotations

import dataclasses


from reid_repro.errors import ReidReproError

from reid_repro.config import (DATA_FORMATS, DATA_KEYS, SCALES, ModelConfig, RunSpec, VideoConfig, WorldConfig,
                               _scale, declared_runs, from_dict, larger_section, load_method_config, load_model,
                               load_run, load_study, load_warmup, pretrain_spec, run_seeds, settings_file, source_spec,
                               validate_meshes)


def resolve_run(params: dict, spec: RunSpec, section: str | None = None):
    """(model config, method config) of ``spec`` at ``params['scale']``, with the run's overrides applied.

    The method's settings come from ``params[section]`` (default: the method's own section)."""
    from reid_repro.methods import base_section, method_class

    overrides = spec.settings_overrides(_scale(params))
    model_over = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("model.")}
    model_cfg = load_model(params)
    if model_over:    # a row that changes the model, e.g. ISE + GeM pooling
        fields = {f.name for f in dataclasses.fields(model_cfg)}
        unknown = sorted(set(model_over) - fields)
        if unknown:
            raise ReidReproError(f"runs override 'model.{unknown[0]}' is not a model setting; "
                                 f"expected one of {sorted(fields)}")
        model_cfg = from_dict(ModelConfig, {**dataclasses.asdict(model_cfg), **model_over}, "model")
    cls = method_class(spec.method)
    base = base_section(spec.method)
    if spec.base != (base or spec.method) and section is None:
        raise ReidReproError(f"params.yaml: run base={spec.base!r} for method {spec.method!r}; expected "
                             f"{base or spec.method!r} (the section its settings build on)")
    cfg = load_method_config(params, section or spec.method, cls.config,
                             {k: v for k, v in overrides.items() if not k.startswith("model.")},
                             base=base)
    return model_cfg, cfg



def validate_params(params: dict) -> None:
    """Check all of ``params.yaml`` (every section at both scales, every run with its overrides at both scales),
    so that a typo anywhere stops every stage at its start with an error naming the key, instead of being
    ignored or surfacing days later at the other scale."""
    from reid_repro.methods import base_section, method_class, method_names

    from reid_repro.device import check_device_setting

    sections = ({"world", "scale", "device", "seeds", "data", "meshes", "model", "pretrain", "source", "sources",
                 "runs", "gcl_warmups", "studies", "larger", "video"}
                | (set(method_names()) - {"supervised"}))
    unknown = sorted(set(params) - sections)
    if unknown:
        raise ReidReproError(f"params.yaml: {unknown[0]}: unknown top-level key; expected one of {sorted(sections)}")
    missing = sorted(sections - set(params))
    if missing:
        raise ReidReproError(f"params.yaml: {missing[0]}: missing top-level section")
    _scale(params)
    check_device_setting(params["device"])
    run_seeds(params)
    from_dict(VideoConfig, params["video"], "video").check_world(from_dict(WorldConfig, params["world"], "world"))
    data = params["data"]
    if not isinstance(data, dict) or not data:
        raise ReidReproError("params.yaml: data: expected a mapping of dataset name -> {root, manifest, format}")
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise ReidReproError(f"params.yaml: data.{name}: expected a mapping with keys {list(DATA_KEYS)}")
        bad = sorted(set(entry) ^ set(DATA_KEYS))
        if bad:
            what = "unknown key" if bad[0] in entry else "missing"
            raise ReidReproError(f"params.yaml: data.{name}.{bad[0]}: {what}; expected keys {list(DATA_KEYS)}")
        for k in DATA_KEYS:
            if not isinstance(entry[k], str) or not entry[k]:
                raise ReidReproError(f"params.yaml: data.{name}.{k}={entry[k]!r}; expected a path or name")
        if entry["format"] not in DATA_FORMATS:
            raise ReidReproError(f"params.yaml: data.{name}.format={entry['format']!r}; expected one of "
                                 f"{sorted(DATA_FORMATS)}")
    validate_meshes(params)
    model = params["model"]
    if not isinstance(model, dict) or sorted(model) != sorted(SCALES):
        raise ReidReproError(f"params.yaml: model: expected exactly the scales {list(SCALES)}, got "
                             f"{sorted(model) if isinstance(model, dict) else model!r}")
    runs = params["runs"] or {}
    if not isinstance(runs, dict):
        raise ReidReproError("conf/runs.json: runs: expected a mapping of run name -> run")
    larger = larger_section(params)
    sources = params["sources"]
    if not isinstance(sources, list) or not sources or len(set(sources)) != len(sources) \
            or any(d not in data for d in sources):
        raise ReidReproError(f"params.yaml: sources={sources!r}; expected a list of distinct keys of data "
                             f"{sorted(data)} (the stand-ins source@ trains on)")
    starts = ({"pretrain"} | {f"source_{d}" for d in sources} | set(params["gcl_warmups"] or {})
              | set(larger["warmups"]))
    for key, raw in declared_runs(params).items():
        if isinstance(raw, dict) and raw.get("init") not in starts:
            where = "runs" if key in runs else "larger.runs"
            raise ReidReproError(f"params.yaml: {where}.{key}.init={raw.get('init')!r}; expected the model a run "
                                 "starts from (models/<init>): pretrain, source_<dataset> of a dataset in "
                                 "sources, or a GCL+ warm-up")
    for kind, default in (("runs", runs), ("warmups", params["gcl_warmups"] or {})):
        both = sorted(set(default) & set(larger[kind]))
        if both:
            raise ReidReproError(f"params.yaml: larger.{kind}.{both[0]}: also declared at the default scale; "
                                 "expected each name once")
    for scale in SCALES:
        at = {**params, "scale": scale}
        load_model(at)
        resolve_run(at, pretrain_spec(), section="pretrain")
        resolve_run(at, source_spec(next(iter(data))), section="source")
        for name in sorted(set(method_names()) - {"supervised"}):
            load_method_config(at, name, method_class(name).config, base=base_section(name))
        for key in declared_runs(at):
            try:
                spec = load_run(at, key)
                resolve_run(at, spec)
                run_seeds(at, spec)
            except ReidReproError as exc:
                text = str(exc).removeprefix("params.yaml: ")
                raise ReidReproError(f"runs.{key} (scale {scale}): {text}") from None
        for key in params["studies"] or {}:
            study = load_study(at, key)
            fields = {f.name for f in dataclasses.fields(resolve_run(at, load_run(at, study.run))[1])}
            unknown = sorted(set(study.space) - fields)
            if unknown:
                raise ReidReproError(f"{settings_file('studies')}: studies.{key}.space.{unknown[0]}: not a setting "
                                     f"of {study.method}; expected one of {sorted(fields)}")
        for key in [*(params["gcl_warmups"] or {}), *larger_section(params)["warmups"]]:
            try:
                resolve_run(at, load_warmup(at, key))
            except ReidReproError as exc:
                text = str(exc).removeprefix("params.yaml: ")
                raise ReidReproError(f"params.yaml: gcl_warmups.{key} (scale {scale}): {text}") from None
