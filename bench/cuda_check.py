"""The CUDA check of issues 12 and 19, for a session that has a GPU: ``python -m bench.cuda_check`` (under 10 minutes).

1. CUDA == CPU: codes (equal) and scales (to 1e-6 relative) of binary, ternary and
   uniform:3 per channel, on random weights and on VGG-11's conv weights
   (level sets with more than two levels run the reference sweep on CUDA).
2. Per-channel projection of VGG-11's conv weights against one pass
   ``w.abs().sum()`` on the GPU (CUDA events, synchronised).
3. Training images/s on VGG-11 and ResNet-20 (batch 128) for SGD, BinaryRelax
   (binary, ternary, uniform:3) and torchao PARQ (binary), in fp32, with bf16
   autocast, and with ``torch.compile`` of the model.

Writes ``bench/results/cuda.md`` (atomically). ``--device cpu --quick`` runs the
same code on CPU at tiny sizes, to check the script itself where there is no GPU
(the results then say so and are not written unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cuda.md")
SPECS = ("binary", "ternary", "uniform:3")


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time(fn, dev, repeats):
    fn()
    _sync(dev)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def equality(torch, brelax, ws, dev) -> list:
    lines = ["| weights | set | codes equal | max rel. scale diff |", "|---|---|---|---|"]
    for tag, tensors in ws.items():
        for spec in SPECS:
            Q = brelax.get_set(spec)
            same, diff = True, 0.0
            for w in tensors:
                a, b = Q.quantize(w, axis=0), Q.quantize(w.to(dev), axis=0)
                same &= bool(torch.equal(a.codes, b.codes.cpu()))
                diff = max(diff, float(((a.scales - b.scales.cpu()).abs() / a.scales.clamp_min(1e-300)).max()))
            lines.append(f"| {tag} | {spec} | {'yes' if same else '**no**'} | {diff:.2e} |")
    return lines


def per_channel(torch, brelax, ws, dev, repeats) -> list:
    """Each set against one pass, interleaved rounds (bench.timing.interleaved), synchronised on the device."""
    from .timing import interleaved

    wd = [w.to(dev) for w in ws]
    sets = {spec: brelax.get_set(spec) for spec in SPECS}
    fns = {"one pass": lambda: [w.abs().sum() for w in wd]}
    for spec in SPECS:
        fns[spec] = lambda spec=spec: [sets[spec].project(w, axis=0) for w in wd]

    def step(k):
        fns[k]()
        _sync(dev)

    _, stats = interleaved(step, list(fns), repeats)
    lines = ["| set | Q.project(w, axis=0) / w.abs().sum() | min-max (rounds) | target |", "|---|---|---|---|"]
    for spec, target in zip(SPECS, ("<= 2.5x", "<= 6x", "<= 40x"), strict=True):
        r = stats(spec, "one pass")
        lines.append(f"| {spec} | {r['ratio']:.3g}x | {r['min']:.3g}x-{r['max']:.3g}x ({r['repeats']}) | {target} |")
    return lines


def throughput(torch, dev, batch, steps, quick) -> list:
    from brelax.torch.models import param_groups, resnet20, vgg11
    from brelax.torch.optimizer import QuantOptimizer

    from .training import _parq

    lines = [
        "| model | mode | SGD img/s | BR binary | BR ternary | BR uniform:3 | PARQ binary | BR binary / SGD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    x = torch.randn(batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    for mname, build in (("VGG-11", vgg11), ("ResNet-20", resnet20)):
        for mode in ("fp32", "bf16 autocast", "torch.compile"):
            rates = {}
            for var in ("sgd", "binary", "ternary", "uniform:3", "parq"):
                if mode == "torch.compile" and var in ("ternary", "uniform:3"):  # compile time: 10-minute budget
                    rates[var] = float("nan")
                    continue
                torch.manual_seed(0)
                model = build().to(dev)
                if var == "sgd":
                    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                elif var == "parq":
                    opt, _err = _parq(model, torch)
                    if opt is None:
                        rates[var] = float("nan")
                        continue
                else:
                    base = torch.optim.SGD(param_groups(model, var, axis=0), lr=0.05, momentum=0.9)
                    opt = QuantOptimizer(base, method="binaryrelax", qset=var, axis=0)
                fwd = torch.compile(model) if mode == "torch.compile" else model

                def step():
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=mode == "bf16 autocast"):
                        loss = loss_fn(fwd(x), y)
                    loss.backward()
                    opt.step()

                for _ in range(2 if quick else 5):
                    step()
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                _sync(dev)
                rates[var] = batch * steps / (time.perf_counter() - t0)
            r = rates
            lines.append(
                f"| {mname} | {mode} | {r['sgd']:.0f} | {r['binary']:.0f} | {r['ternary']:.0f} | "
                f"{r['uniform:3']:.0f} | {r['parq']:.0f} | {r['binary'] / r['sgd']:.3f} |"
            )
    return lines


def main(argv=None) -> int:
    import torch

    import brelax
    from brelax._atomic import atomic_write_text

    from .channels import vgg11_conv_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run of this script)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a dry run)")
    ap.add_argument("--out", default=None, help=f"output file (default {RESULTS} on CUDA)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "bench.cuda_check: no CUDA device here (torch.cuda.is_available() is False); "
            "run with --device cpu --quick to check the script",
            file=sys.stderr,
        )
        return 2
    dev = torch.device(args.device)
    torch.manual_seed(0)
    vgg = vgg11_conv_weights(torch, small=args.quick)
    rand = [torch.randn(64, 576), torch.randn(7, 3, 3, 3), torch.randn(256, 2304) * torch.rand(256, 1)]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU (dry run)"
    lines = [
        "# brelax on CUDA (issues 12 and 19)",
        "",
        f"Device: {name}; torch {torch.__version__}; "
        f"written by `python -m bench.cuda_check` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "## CUDA results equal CPU results (codes and scales, per channel)",
        "",
    ]
    lines += equality(torch, brelax, {"random": rand, "VGG-11 conv": vgg}, dev)
    lines += ["", "## Per-channel projection of VGG-11's conv weights / one pass, on the device", ""]
    lines += per_channel(torch, brelax, vgg, dev, 5 if args.quick else 20)
    lines += ["", "## Training throughput (images/s, batch 128; target: BR >= 0.95 x SGD on VGG-11)", ""]
    lines += throughput(torch, dev, 4 if args.quick else 128, 2 if args.quick else 20, args.quick)
    out = args.out or (RESULTS if dev.type == "cuda" else None)
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        atomic_write_text(out, text)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
