"""``brelax compare``: equal grids, the validation split, the t-intervals, PARQ's quantized point, the outputs."""

import json
import math
import os

import pytest
import torch

from brelax import cli
from brelax.torch import compare, write_tiny_cifar

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_every_method_gets_a_grid_of_the_same_size_with_its_own_axes():
    study = compare.Study()
    grids = {m: compare.method_grid(m, study) for m in compare.METHODS}
    assert {len(g) for g in grids.values()} == {compare.GRID_SIZE}
    for m, g in grids.items():
        assert len({json.dumps(p, sort_keys=True) for p in g}) == compare.GRID_SIZE, m  # no repeated point
        assert set(g[0]) == {"lr", *compare.METHODS[m].axes}
    assert {p["rho"] for p in grids["binaryrelax"]} == set(study.rhos)
    assert {p["ramp"] for p in grids["parq"]} == set(study.ramps)
    with pytest.raises(ValueError, match="grid has 3 points"):
        compare.method_grid("float", compare.Study(lrs_wide=(0.1, 0.2, 0.3)))
    with pytest.raises(ValueError, match="unknown method"):
        compare.method_grid("adam", study)


def test_t_quantiles_and_the_interval_match_scipy():
    from scipy import stats  # a dependency of brelax: no skip

    for df in (1, 2, 4, 10, 30):
        assert compare.t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=5e-4)
    values = [0.91, 0.95, 0.93, 0.97, 0.92]
    s = compare.summarize(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=s["mean"], scale=stats.sem(values))
    assert s["ci95"] == pytest.approx([lo, hi], abs=1e-4)
    assert s["std"] == pytest.approx(stats.tstd(values))
    assert s["n_seeds"] == 5 and s["ci95"][0] < s["mean"] < s["ci95"][1]
    with pytest.raises(ValueError, match="at least 2"):
        compare.summarize([0.9])
    with pytest.raises(ValueError, match="df"):
        compare.t975(0)


def test_validation_split_is_stratified_disjoint_and_fixed():
    labels = torch.arange(10).repeat_interleave(torch.tensor([30, 20, 25, 40, 10, 15, 35, 30, 20, 25]))
    tr, val = compare.validation_split(labels)
    assert len(set(tr.tolist()) & set(val.tolist())) == 0 and len(tr) + len(val) == len(labels)
    for c, n in enumerate([30, 20, 25, 40, 10, 15, 35, 30, 20, 25]):
        assert int((labels[val] == c).sum()) == round(0.2 * n)
    _, val2 = compare.validation_split(labels)
    assert torch.equal(val, val2)
    assert not torch.equal(val, compare.validation_split(labels, seed=1)[1])
    with pytest.raises(ValueError, match="fraction"):
        compare.validation_split(labels, fraction=1.0)


def test_selection_never_reads_the_test_split():
    study = compare.Study(epochs=2)
    train, test, norm = compare.load_data(study)
    spec = {
        "model": "digits_mlp",
        "set": "binary",
        "method": "binaryrelax",
        "hp": {"lr": 0.1, "rho": 1.3, "phase2": 0.5},
    }
    spec.update(seed=1000, split="selection", study=compare._study_dict(study))
    real = compare.train_one(spec, (train, test, norm))
    poisoned = (torch.full((3, 1, 8, 8), float("nan")), torch.zeros(3, dtype=torch.int64))
    assert compare.train_one(spec, (train, poisoned, norm))["final"] == real["final"]
    assert 0.5 < real["final"] <= 1.0
    spec["split"] = "test"  # the test runs do read it (the poison shows)
    assert compare.train_one(spec, (train, poisoned, norm))["final"] != real["final"]


@pytest.mark.parametrize("qset, levels", [("binary", 2), ("ternary", 3), ("2bit", 4)])
def test_parq_is_evaluated_at_its_own_quantizers_levels(qset, levels):
    import torchao  # noqa: F401  (installed by .[all], which CI uses: a missing peer fails, never skips)

    from brelax.torch.models import build_model

    study = compare.Study(epochs=2)
    net = build_model("digits_mlp", 10, seed=0)
    opt, _, quantized = compare._optimizer(
        "parq", {"lr": 0.1, "ramp": 0.5, "phase2": 0.5}, net, compare.SETS[qset], study, 3
    )
    x = torch.randn(16, 1, 8, 8)
    for _ in range(2):  # inside the ramp: the parameter is between latent and quantized
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), torch.arange(16) % 10).backward()
        opt.step()
    w = net.fc1.weight
    before = w.detach().clone()
    assert max(len(torch.unique(row)) for row in before) > levels
    with quantized():
        assert max(len(torch.unique(row)) for row in w) <= levels
        assert min(len(torch.unique(row)) for row in w) >= 2
    assert torch.equal(w, before)  # restored after the block
    assert len(torch.unique(net.fc.weight[0])) > levels  # the classifier stays float


def _run(argv):
    return cli.main(["compare", *argv])


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    assert _run(["--models", "resnet20", "--out", str(tmp_path / "a")]) == 2
    assert "--models resnet20: does not fit --dataset digits" in capsys.readouterr().err
    assert _run(["--dataset", "cifar10", "--out", str(tmp_path / "b")]) == 2
    assert "--data" in capsys.readouterr().err
    assert _run(["--methods", "binaryrelax,adam", "--out", str(tmp_path / "c")]) == 2
    assert "--methods" in capsys.readouterr().err
    assert _run(["--lrs", "0.1", "--out", str(tmp_path / "d")]) == 2
    assert "--lrs '0.1': needs 2" in capsys.readouterr().err
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "comparison.json").write_text("{}")
    assert _run(["--quick", "--out", str(tmp_path / "e")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "e" / "comparison.json").read_text() == "{}"


def _check_outputs(out, n_seeds, expect_methods):
    doc = json.loads((out / "comparison.json").read_text())
    recs = doc["records"]
    assert {r["method"] for r in recs} == set(expect_methods)
    for r in recs:
        assert r["n_seeds"] == n_seeds == len(r["values"]) == len(r["curves"])
        assert r["ci95"][0] <= r["mean"] <= r["ci95"][1]
        assert math.isclose(r["mean"], sum(r["values"]) / n_seeds, abs_tol=1e-9)
        assert r["std"] >= 0 and 0.0 <= r["mean"] <= 1.0
        assert len(r["grid"]) == compare.GRID_SIZE and r["chosen"] in r["grid"]
        assert len(r["val_acc"]) == compare.GRID_SIZE
        assert r["val_acc"].index(max(r["val_acc"])) == r["grid"].index(r["chosen"])
        assert all(c[-1] == v for c, v in zip(r["curves"], r["values"], strict=True))  # the last epoch, not a best
    md = (out / "comparison.md").read_text()
    for r in recs:
        assert f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" in md
    return doc


@pytest.mark.slow
def test_quick_study_writes_sane_results(tmp_path):
    out = tmp_path / "quick"
    assert _run(["--quick", "--out", str(out)]) == 0
    doc = _check_outputs(out, 2, compare.METHODS)
    assert os.path.getsize(out / "comparison.png") > 10_000
    by = {r["method"]: r for r in doc["records"]}
    assert by["float"]["mean"] > 0.85  # far above chance (0.1) on the digits
    for m in compare.METHODS:
        assert by[m]["mean"] > 0.5, m  # every method learns; none is broken
    best = max((r for r in doc["records"] if r["set"] != "float"), key=lambda r: r["mean"])
    assert doc["winners"] == {"digits_mlp/binary": best["method"]}
    # --resume reuses every run: the same numbers without training again
    first = (out / "comparison.json").read_text()
    assert _run(["--quick", "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "comparison.json").read_text())
    assert [r["values"] for r in again["records"]] == [r["values"] for r in json.loads(first)["records"]]


@pytest.mark.slow
def test_cifar_files_run_the_same_comparison(tmp_path):
    """The CIFAR path on tiny archives in CIFAR's own format (CPU): VGG-11 with yin2018 and ResNet-20."""
    root = write_tiny_cifar(tmp_path / "cifar", "cifar10", n_train=40, n_test=12, seed=0, archive=True)
    out = tmp_path / "c"
    common = ["--dataset", "cifar10", "--data", str(root), "--epochs", "1", "--seeds", "2", "--no-plot"]
    argv = [*common, "--models", "vgg11", "--recipe", "yin2018", "--sets", "binary", "--methods", "binaryrelax,parq"]
    argv += ["--out", str(out)]
    assert _run(argv) == 0
    doc = _check_outputs(out, 2, ["binaryrelax", "parq"])
    assert doc["study"]["models"] == ["vgg11"] and doc["study"]["rhos"] == list(compare.CIFAR_RHOS)
    out2 = tmp_path / "r"
    argv = [*common, "--models", "resnet20", "--sets", "ternary", "--methods", "binaryconnect", "--out", str(out2)]
    assert _run(argv) == 0
    _check_outputs(out2, 2, ["binaryconnect"])


@pytest.mark.slow
def test_the_gpu_script_runs_on_cpu_on_its_own_tiny_archive(tmp_path):
    from bench import cuda_compare

    assert cuda_compare.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "cuda_compare.md").read_text()
    assert "| resnet20 |" in text and "| vgg11 |" in text
    for model in ("resnet20", "vgg11"):
        _check_outputs(tmp_path / model, 2, ["binaryrelax"])
    assert cuda_compare.main(["--out", str(tmp_path / "x")]) == 2  # no --data, no --quick


RESULTS = os.path.join(os.path.dirname(__file__), "..", "examples", "results", "compare", "comparison.json")


def test_the_digits_defaults_are_binaryrelaxs_validation_choice_in_the_committed_study():
    """``brelax train --dataset digits`` defaults = the grid point ``brelax compare`` chose on the validation split."""
    from brelax.torch.train import DATASET_DEFAULTS

    with open(RESULTS) as f:
        doc = json.load(f)
    (rec,) = [
        r for r in doc["records"] if (r["model"], r["set"], r["method"]) == ("digits_cnn", "binary", "binaryrelax")
    ]
    e = doc["study"]["epochs"]
    d = DATASET_DEFAULTS["digits"]
    assert d["epochs"] == e and d["batch_size"] == doc["study"]["batch_size"]
    assert d["lr"] == rec["chosen"]["lr"] and d["rho"] == rec["chosen"]["rho"]
    assert d["phase2_epoch"] == round(rec["chosen"]["phase2"] * e)
    assert d["milestones"] == [round(f * e) for f in doc["protocol"]["lr_drops"]]


@pytest.mark.slow
def test_brelax_train_on_the_digits_with_its_defaults_reaches_93_percent(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "digits", "--set", "binary", "--out", str(tmp_path), "--no-progress"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["epoch"] == 30 and last["test_acc"] >= 0.93


def test_the_readme_tables_are_the_committed_comparison():
    """Every row of the README's results tables is exactly what compare.table_lines makes of comparison.json."""
    with open(RESULTS) as f:
        doc = json.load(f)
    with open(os.path.join(os.path.dirname(RESULTS), "..", "..", "..", "README.md")) as f:
        readme = f.read()
    study = compare.Study(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["study"].items()})
    assert study.epochs == 30 and study.seeds == 5 and set(study.models) == {"digits_cnn", "digits_mlp"}
    for model in study.models:
        table = "\n".join(compare.table_lines(doc["records"], study, model))
        assert table in readme, model
    with open(os.path.join(os.path.dirname(RESULTS), "comparison.md")) as f:
        md = f.read()
    assert all("\n".join(compare.table_lines(doc["records"], study, m)) in md for m in study.models)
