"""``reid-repro evaluate``: mAP/CMC of a checkpoint on test sets (the ``start`` stage: the pretrained start)."""

from __future__ import annotations

HELP = "evaluate a checkpoint on the query/gallery split of one or more datasets (params.yaml: data)"


def add_arguments(p) -> None:
    p.add_argument("--weights", required=True, help="an encoder checkpoint (model.pt of pretrain or a run)")
    p.add_argument("--test", nargs="+", required=True, help="keys of params.yaml: data")
    p.add_argument("--out", required=True, help="a JSON file: {dataset: {mAP, rank1, ...}}")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_model, load_params
    from reid_repro.device import params_device
    from reid_repro.io import write_json
    from reid_repro.models import ReidNet
    from reid_repro.training.run import evaluate, load_weights, test_set

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
