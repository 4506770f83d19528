"""``brelax compare`` on CIFAR-10 on a GPU, short: ``python -m bench.cuda_compare --data DIR`` (about 5 minutes).

For a session that has a GPU and the CIFAR-10 python archive. It runs the
comparison of :mod:`brelax.torch.compare` (every method, its 8-point grid chosen
on a validation split of the training images, 2 test seeds) on ResNet-20 and on
VGG-11 with ``--recipe yin2018``, binary weights, with a short budget
(``--epochs 2``, the first ``--limit-train 10000`` training images), and writes
``OUT/resnet20/`` and ``OUT/vgg11/`` (comparison.json, .md, .png) and
``OUT/cuda_compare.md`` with the wall time of each study. The short budget checks
that the whole path runs on CUDA and measures its cost; the numbers are not a
result (the paper's setting is 200 epochs on all 50,000 images, see the README).

``--device cpu --quick`` runs the same code on CPU on a tiny CIFAR-format archive
that it writes itself, to check the script where there is no GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cuda_compare")
STUDIES = (("resnet20", ()), ("vgg11", ("--recipe", "yin2018")))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="CIFAR-10 python archive or its folder (not needed with --quick)")
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--device", default="cuda")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=10_000)
    p.add_argument("--quick", action="store_true", help="a tiny archive written here, 1 epoch, BinaryRelax only")
    args = p.parse_args(argv)

    from brelax import cli
    from brelax.torch import write_tiny_cifar

    with tempfile.TemporaryDirectory() as tmp:
        data, extra = args.data, []
        if args.quick:
            data = str(write_tiny_cifar(tmp, "cifar10", n_train=40, n_test=12, seed=0, archive=True))
            extra = ["--methods", "binaryrelax", "--epochs", "1", "--no-plot"]
        elif not data:
            print("bench.cuda_compare: give --data DIR (the CIFAR-10 python archive) or --quick", file=sys.stderr)
            return 2
        lines = [
            "# brelax compare on CIFAR-10, short budget (a check of the path and its cost, not a result)",
            "",
            f"device {args.device}, {args.epochs} epochs, first {args.limit_train} training images, binary, 2 seeds",
            "",
            "| model | minutes | best quantized method (mean test acc.) |",
            "|---|---|---|",
        ]
        for model, recipe in STUDIES:
            out = os.path.join(args.out, model)
            argv_ = ["compare", "--dataset", "cifar10", "--data", data, "--models", model, *recipe, "--sets", "binary"]
            argv_ += ["--seeds", "2", "--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]
            argv_ += ["--device", args.device, "--out", out, "--force", *extra]
            t0 = time.perf_counter()
            rc = cli.main(argv_)
            if rc:
                return rc
            import json

            with open(os.path.join(out, "comparison.json")) as f:
                doc = json.load(f)
            best = max((r for r in doc["records"] if r["set"] != "float"), key=lambda r: r["mean"])
            lines.append(
                f"| {model} | {(time.perf_counter() - t0) / 60:.1f} | {best['method']} ({100 * best['mean']:.1f}%) |"
            )
    from brelax._atomic import atomic_write_text

    atomic_write_text(os.path.join(args.out, "cuda_compare.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
