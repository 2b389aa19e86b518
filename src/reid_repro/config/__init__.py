"""Typed loading of ``params.yaml`` and the declared runs: frozen dataclasses, unknown or missing keys are errors
naming the key. One module per owner: ``core`` (loading, conversion, scale), ``world``, ``video``, ``model``,
``loop``, ``runs``, ``data``, ``studies``. Configuration knows no method: a run's method settings are assembled, and
all of params.yaml validated, above the method plug-ins (reid_repro.assemble)."""

from reid_repro.config.core import (GENERATED, PAPERS, SCALES, SETTINGS, _convert, _scale, from_dict, load_declared,
                                    load_params, params_hash, settings_file)
from reid_repro.config.data import DATA_FORMATS, DATA_KEYS, MESH_SOURCES, check_mesh_source, validate_meshes
from reid_repro.config.loop import LoopConfig, load_method_config
from reid_repro.config.model import ModelConfig, load_model
from reid_repro.config.runs import (LARGER_KEYS, MAX_SEEDS, SOURCE_SECOND_SEED, WARMUP_KEYS, RunSpec, declared_runs,
                                    larger_section, load_run, load_warmup, not_run_reason, pretrain_spec, run_seeds,
                                    source_spec)
from reid_repro.config.studies import KINDS, PRUNERS, Dimension, StudyConfig, load_study, tuned_run
from reid_repro.config.video import VIDEO_LAYOUTS, VideoConfig, VideoDomain, VideoProfile, load_video
from reid_repro.config.world import (BAGS, BODY_FACTORS, TEXTURES, Domain, Look, Profile, WorldConfig, _range,
                                    load_world)

__all__ = ["GENERATED", "PAPERS", "SCALES", "SETTINGS", "_convert", "_scale", "from_dict", "load_declared",
           "load_params", "params_hash", "settings_file", "DATA_FORMATS", "DATA_KEYS", "MESH_SOURCES",
           "check_mesh_source", "validate_meshes",
           "LoopConfig", "load_method_config", "ModelConfig", "load_model", "LARGER_KEYS", "MAX_SEEDS",
           "SOURCE_SECOND_SEED", "WARMUP_KEYS", "RunSpec", "declared_runs", "larger_section", "load_run", "load_warmup",
           "not_run_reason", "pretrain_spec", "run_seeds", "source_spec", "KINDS", "PRUNERS", "Dimension",
           "StudyConfig", "load_study", "tuned_run", "VIDEO_LAYOUTS", "VideoConfig", "VideoDomain", "VideoProfile",
           "load_video", "BAGS", "BODY_FACTORS", "TEXTURES", "Domain", "Look", "Profile", "WorldConfig", "_range",
           "load_world"]
