"""Issue 38, experiment E4 (and the domain levers after it) of bench/world_plan.md: one stand-in rendered with
other world settings, then the supervised ceiling and Cluster-Contrast trained on it from a start.

The variant is rendered alone into .cache/exp_world/<name>/<domain>/ with the committed seed streams (each
identity draws from ``[seed, domain index, role, k]``, so the test identities are the same people as in the
committed stand-in while ``test_ids`` is unchanged), prepared into a manifest beside it, and measured with
bench/exp_start.py's learning curves (true labels and pseudo labels, test mAP after every epoch) from the start
in ``--models`` (default: models/, today's start). Nothing under data/, models/ or runs/ is touched.

    python bench/exp_world_variant.py --name ids120 --domain market --profile train_ids=120 images_per_id=8
    python bench/exp_world_variant.py --name ids120_random --domain market --profile train_ids=120 images_per_id=8 \\
        --models .cache/exp_start/starts/random
    python bench/exp_world_variant.py --name fit11 --domain pretrain --look fit=1.1 --render-only   # for a start
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import key_values, write_results  # noqa: E402
from exp_start import curves  # noqa: E402

SCRATCH = ROOT / ".cache" / "exp_world"


def render(params: dict, name: str, domain: str, profile: dict, domain_over: dict,
           look_over: dict | None = None) -> tuple[Path, Path, dict]:
    """(world folder of the domain, manifest folder, counts) of the variant, rendered unless already there;
    ``look_over`` changes the domain's look (config.Look fields), as a look of its own named ``name``."""
    import os

    from reid_repro.config import load_world
    from reid_repro.data.manifest import prepare
    from reid_repro.world.body import make_body
    from reid_repro.world.generate import WorldWriter
    from reid_repro.world.render import Renderer

    base = SCRATCH / name
    root, manifest = base / domain, base / "manifests" / domain
    done = base / "rendered.json"
    if done.is_file():
        return root, manifest, json.loads(done.read_text())
    cfg = load_world(ROOT / "params.yaml")
    sizes = dataclasses.replace(cfg.profiles[cfg.profile], **profile)
    looks = dict(cfg.looks)
    if look_over:
        looks[name] = dataclasses.replace(cfg.look(domain), **look_over)
        looks[name].check(f"variant {name}")
        domain_over = {**domain_over, "look": name}
    cfg = dataclasses.replace(cfg, profiles={**cfg.profiles, cfg.profile: sizes}, looks=looks,
                              domains={**cfg.domains, domain: dataclasses.replace(cfg.domains[domain], **domain_over)})
    index = list(cfg.domains).index(domain)            # the committed stream of this domain
    body = make_body(cfg.body_model, Path(os.environ.get("ANNY_CACHE_DIR", ROOT / ".cache" / "anny")))
    t0 = time.perf_counter()
    table = WorldWriter(cfg, body, Renderer(cfg.height, cfg.width)).write_domain(domain, cfg.domains[domain], base,
                                                                                 index)
    seconds = time.perf_counter() - t0
    info = prepare(params["data"][domain]["format"], root, manifest)
    counts = {"render_seconds": round(seconds, 1), "images": len(table), "splits": info["splits"]}
    done.write_text(json.dumps(counts))
    return root, manifest, counts


def main() -> None:
    import os

    from reid_repro.config import load_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the variant's name (scratch folder and result case)")
    parser.add_argument("--domain", default="market")
    parser.add_argument("--profile", nargs="*", default=[], metavar="KEY=VALUE",
                        help="world profile sizes changed (train_ids, images_per_id, ...)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the domain's settings changed")
    parser.add_argument("--look", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the domain's look changed (config.Look fields, e.g. occlusion=0.25)")
    parser.add_argument("--models", default="models", help="folder holding the start (<models>/pretrain/model.pt)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop", nargs="*", default=[], metavar="KEY=VALUE",
                        help="loop settings of the learning curves changed (e.g. lr=3.5e-4 lr_step=12)")
    parser.add_argument("--kinds", nargs="+", default=["ground_truth", "pseudo"], choices=["ground_truth", "pseudo"],
                        help="which learning curves: true labels, pseudo labels (true labels vary little by seed: "
                             "the later seeds of a variant may train pseudo labels only)")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the CPU network changed (e.g. arch=resnet10; --models must hold a start of that network)")
    parser.add_argument("--results", default="exp_world_variant")
    parser.add_argument("--render-only", action="store_true",
                        help="render and prepare the variant, no curves (e.g. --domain pretrain, for a start trained "
                             "on it: bench/exp_start.py --world <name>)")
    args = parser.parse_args()
    os.chdir(ROOT)
    params = load_params("params.yaml")
    profile, domain_over = key_values(args.profile), key_values(args.set)
    look_over = key_values(args.look)
    root, manifest, counts = render(params, args.name, args.domain, profile, domain_over, look_over)
    if args.render_only:
        print(json.dumps({"variant": args.name, "domain": args.domain, "root": str(root), **counts}), flush=True)
        return
    variant = copy.deepcopy(params)
    variant["data"][args.domain] = {**variant["data"][args.domain], "root": str(root), "manifest": str(manifest)}
    network = key_values(args.model)
    variant["model"]["cpu"] = {**variant["model"]["cpu"], **network}
    loop = key_values(args.loop)
    rows = curves(variant, args.name, Path(args.models), args.epochs, args.seed, args.domain, loop=loop,
                  kinds=tuple(args.kinds))
    path = ROOT / "bench" / "results" / f"{args.results}.json"
    cases = json.loads(path.read_text())["cases"] if path.is_file() else []
    case = {"case": f"{args.name} seed {args.seed}", "domain": args.domain, "profile": profile, "set": domain_over,
            "look": look_over, "loop": loop, "model": network,
            "start": str(args.models), **counts, "curves": rows}
    write_results(args.results, [c for c in cases if c["case"] != case["case"]] + [case])


if __name__ == "__main__":
    main()
