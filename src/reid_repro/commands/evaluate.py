"""``reid-repro evaluate``: mAP/CMC of a checkpoint on test sets (the ``start`` stage: the pretrained start), or of
a run's stored features (``--features``: no model is run; optional k-reciprocal re-ranking)."""

from __future__ import annotations

HELP = ("evaluate a checkpoint on the query/gallery split of one or more datasets (params.yaml: data), or score a "
        "run's stored features (--features runs/<run>/features), optionally re-ranked")


def add_arguments(p) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="an encoder checkpoint (model.pt of pretrain or a run)")
    what.add_argument("--features", nargs="+",
                      help="stored features: <seed>.parquet files or a run's features/ folder (every seed in it)")
    p.add_argument("--test", nargs="+", help="with --weights: keys of params.yaml: data")
    p.add_argument("--rerank", action="store_true",
                   help="with --features: k-reciprocal re-ranking (Zhong et al., CVPR 2017)")
    p.add_argument("--k1", type=int, default=20, help="re-ranking k1 (the papers' 20)")
    p.add_argument("--k2", type=int, default=6, help="re-ranking k2 (the papers' 6)")
    p.add_argument("--lambda-value", type=float, default=0.3, help="re-ranking weight of the original distance")
    p.add_argument("--out", required=True, help="a JSON file: {dataset or file: {mAP, rank1, ...}}")
    p.add_argument("--params", default="params.yaml")


def _feature_files(paths: list[str]) -> list:
    from pathlib import Path

    from reid_repro.errors import ReidReproError
    from reid_repro.evaluation.stored import seed_files

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = seed_files(p)
            if not found:
                raise ReidReproError(f"{p}: no .parquet files; expected a run's features folder (<seed>.parquet)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ReidReproError(f"{p}: missing; expected a <seed>.parquet file or a run's features/ folder")
    return files


def _score_features(args) -> str:
    import numpy as np

    from reid_repro.errors import ReidReproError
    from reid_repro.evaluation.stored import score_features
    from reid_repro.io import write_json

    if args.test:
        raise ReidReproError("--test applies to --weights; stored features carry their own test set")
    if not (0.0 <= args.lambda_value <= 1.0) or args.k1 < 1 or args.k2 < 1:
        raise ReidReproError(f"re-ranking: k1 {args.k1}, k2 {args.k2}, lambda {args.lambda_value}; expected k1, "
                             "k2 >= 1 and 0 <= lambda <= 1")
    options = {"k1": args.k1, "k2": args.k2, "lambda_value": args.lambda_value} if args.rerank else {}
    results = {str(f): score_features(f, rerank=args.rerank, **options) for f in _feature_files(args.features)}
    out = {"rerank": options or False, "files": results}
    if len(results) > 1:
        keys = next(iter(results.values()))           # the sd over files as metrics.json's over seeds (ddof 1)
        out["mean"] = {k: float(np.mean([m[k] for m in results.values()])) for k in keys}
        out["std"] = {k: float(np.std([m[k] for m in results.values()], ddof=1)) for k in keys}
    write_json(args.out, out)
    shown = out.get("mean") or next(iter(results.values()))
    return (f"evaluate {len(results)} stored feature file(s){' re-ranked' if args.rerank else ''}: "
            f"mAP {100 * shown['mAP']:.1f} rank-1 {100 * shown['rank1']:.1f}"
            + (" (mean over the files)" if len(results) > 1 else ""))


def run(args) -> str:
    if args.features:
        return _score_features(args)
    from reid_repro.config import load_model, load_params
    from reid_repro.device import params_device
    from reid_repro.errors import ReidReproError
    from reid_repro.io import write_json
    from reid_repro.models import ReidNet
    from reid_repro.training.run import evaluate, load_weights, test_set

    if not args.test:
        raise ReidReproError("--weights needs --test <dataset ...> (keys of params.yaml: data)")
    params = load_params(args.params)
    model_cfg = load_model(params)
    device = params_device(params)
    model = ReidNet.from_config(model_cfg)
    load_weights(model, args.weights, model_cfg)
    model = model.to(device)
    results = {test: evaluate(model, test_set(params, test, model_cfg), device) for test in args.test}
    write_json(args.out, results)
    return f"evaluate {args.weights}: " + "  ".join(f"{t} mAP {100 * m['mAP']:.1f} rank-1 {100 * m['rank1']:.1f}"
                                                     for t, m in results.items())
