"""Test accuracy at P(y) of ``brelax train --dataset digits``: BinaryRelax, BinaryConnect and gd, binary and ternary.

Runs ``brelax.torch.train.train`` (the code behind ``brelax train``) for every method, set and
seed, then evaluates the quantized model ``P(y)`` on the fixed test split (for gd: ``P(x_T)``,
the float model quantized after training, and the float model itself). Prints a Markdown
table of mean +- std over the seeds and writes every number to ``OUT/digits_accuracy.json``.

    python examples/digits_accuracy.py --out brelax-out/digits-acc [--seeds 5] [--epochs 20]

Each run trains on scikit-learn's 8x8 digits (1346 training images, offline) on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

from brelax._atomic import atomic_write_text
from brelax.torch.data import normalize
from brelax.torch.train import TrainConfig, digits_data, train

METHODS = ("binaryrelax", "binaryconnect", "gd")
SETS = ("binary", "ternary")


@torch.no_grad()
def accuracy(net, images, labels, norm) -> float:
    net.eval()
    return float((net(normalize(images, *norm)).argmax(1) == labels).double().mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="brelax-out/digits-acc")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--model", default="digits_cnn", choices=("digits_cnn", "digits_mlp"))
    args = p.parse_args(argv)
    (_, (te_x, te_y)), norm = digits_data()
    e = args.epochs
    flags = dict(
        dataset="digits",
        model=args.model,
        epochs=e,
        batch_size=64,
        lr=0.1,
        rho=1.2,
        milestones=[int(0.6 * e), int(0.8 * e)],
        phase2_epoch=int(0.75 * e),
        eval_train=False,
        progress=False,
        quiet=True,
        diagnostics=False,
    )
    results = {"flags": flags, "seeds": args.seeds, "runs": []}
    for qset in SETS:
        for method in METHODS:
            for seed in range(args.seeds):
                out = os.path.join(args.out, f"{args.model}-{qset}-{method}-{seed}")
                res = train(TrainConfig(**flags, set=qset, method=method, seed=seed, out=out, force=True))
                run = {"set": qset, "method": method, "seed": seed}
                if method == "gd":  # the float model, then P(x_T)
                    run["float_acc"] = accuracy(res.model, te_x, te_y, norm)
                    res.optimizer.finalize()
                run["acc_Py"] = accuracy(res.model, te_x, te_y, norm)  # the model holds P(y) (gd: P(x_T))
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
    lines = [f"| method | {' | '.join(SETS)} |", "|---|" + "---|" * len(SETS)]

    def cell(rs, key):
        v = [100 * r[key] for r in rs]
        return f"{statistics.mean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}"

    for method in METHODS:
        rs = {q: [r for r in results["runs"] if r["set"] == q and r["method"] == method] for q in SETS}
        name = {"gd": "gd, P(x_T) (quantized after training)"}.get(method, method)
        lines.append(f"| {name} | " + " | ".join(cell(rs[q], "acc_Py") for q in SETS) + " |")
    gd = [r for r in results["runs"] if r["method"] == "gd"]
    lines.append(
        "| gd, float weights | " + " | ".join(cell([r for r in gd if r["set"] == q], "float_acc") for q in SETS) + " |"
    )
    table = "\n".join(lines)
    results["table"] = table
    atomic_write_text(os.path.join(args.out, "digits_accuracy.json"), json.dumps(results, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
