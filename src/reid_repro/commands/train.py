"""``reid-repro train --run <run>``: train and evaluate one declared run (conf/runs/<paper>.yaml);
``reid-repro train --tuned <study>``: the study's run at its best trial's settings (the ``tuned@<study>`` stage)."""

from __future__ import annotations

HELP = "train and evaluate one declared run with every seed (conf/runs/<paper>.yaml; params.yaml: seeds)"


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", "--run-name", dest="run",
                       help="a declared run (under torchrun write --run-name: torchrun reads --run as an "
                            "abbreviation of its own --run-path)")
    which.add_argument("--tuned", metavar="STUDY",
                       help="a key of conf/studies.yaml: studies: train its run at the best trial's settings "
                            "(<studies>/<study>/best.yaml) with every seed, tested on the test split")
    p.add_argument("--studies", default="studies", help="folder of the studies' results (with --tuned)")
    p.add_argument("--out", default=None, help="output folder (default runs/<run>, runs/tuned_<study>)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many epochs, keeping the checkpoint (resume by running again)")
    common_arguments(p)


def common_arguments(p) -> None:
    p.add_argument("--models", default="models", help="folder of starting checkpoints (<init>/model.pt)")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the run in MLflow")
    p.add_argument("--params", default="params.yaml")


def summary(name: str, metrics: dict) -> str:
    if "not_run" in metrics:
        return f"{name}: {metrics['not_run']}"
    if "rank" in metrics:
        return f"{name}: rank {metrics['rank']} done (rank 0 writes the results)"
    if "stopped_after_epoch" in metrics:
        return f"{name}: stopped after epoch {metrics['stopped_after_epoch']} (checkpoint kept; run again to resume)"
    if "num_seeds" in metrics:
        return (f"{name}: mAP {100 * metrics['mAP']:.1f} ± {100 * metrics['mAP_std']:.1f}  rank-1 "
                f"{100 * metrics['rank1']:.1f} ± {100 * metrics['rank1_std']:.1f} over {metrics['num_seeds']} "
                f"seeds  NMI {metrics['nmi']:.3f}  {metrics['num_clusters']:.0f} clusters / "
                f"{metrics['num_true_ids']} ids  in {metrics['wall_seconds']:.0f} s")
    return (f"{name}: mAP {100 * metrics['mAP']:.1f}  rank-1 {100 * metrics['rank1']:.1f}  NMI {metrics['nmi']:.3f}  "
            f"{metrics['num_clusters']} clusters / {metrics['num_true_ids']} ids  in {metrics['wall_seconds']:.0f} s")


def run(args) -> str:
    from reid_repro.config import load_params, load_run, not_run_reason, tuned_run
    from reid_repro.training.run import execute_seeds, write_not_run

    params = load_params(args.params)
    if args.tuned:
        name, stage, spec = f"tuned_{args.tuned}", f"tuned@{args.tuned}", tuned_run(params, args.tuned, args.studies)
    else:
        name, spec = args.run, load_run(params, args.run)
        stage = f"train_larger@{name}" if spec.larger else f"train@{name}"
        reason = not_run_reason(params, spec)
        if reason is not None:
            return summary(name, write_not_run(args.out or f"runs/{name}", name, stage, reason))
    metrics = execute_seeds(params, name, spec, args.out or f"runs/{name}", stage=stage,
                            models_dir=args.models, track=not args.no_mlflow, stop_after=args.stop_after)
    return summary(name, metrics)
