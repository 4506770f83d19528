"""figures/: every script runs with --quick, writes valid files, and its data agree with a recomputation."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import brelax
from figures import FIGURES, _lsq, cli, style
from theory.lemmas import LemmaB

DATA_EXT = {"recovery": "csv", "prox_map": "csv", "projection_error": "csv"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """Every figure script run through its own ``main`` with --quick, in one directory."""
    d = str(tmp_path_factory.mktemp("figures"))
    for name in FIGURES:
        mod = importlib.import_module(f"figures.{name}")
        argv = ["--out", d, "--quick", "--seed", "0"] + (["--jobs", "1"] if name == "recovery" else [])
        assert mod.main(argv) == 0
    return d


def load(out, name):
    ext = DATA_EXT.get(name, "json")
    path = os.path.join(out, f"{name}.{ext}")
    if ext == "csv":
        return style.read_csv(path)
    with open(path) as fh:
        return json.load(fh)


def nan(a):
    """JSON null -> NaN, as a float array."""
    return np.array([np.nan if v is None else v for v in a], dtype=float)


# -- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIGURES)
def test_every_file_exists_and_is_valid(out, name):
    import matplotlib.image as mpimg

    png, pdf = os.path.join(out, f"{name}.png"), os.path.join(out, f"{name}.pdf")
    with open(png, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 500
    assert float(np.std(img[..., :3])) > 0.05, "blank image"
    with open(pdf, "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    assert os.path.getsize(pdf) > 5000
    data = load(out, name)
    assert len(data) > 0


def test_no_temp_files_left(out):
    assert not [f for f in os.listdir(out) if f.startswith(".fig-")]


def test_readme_copies_are_committed_small_and_valid():
    import matplotlib.image as mpimg

    for name in cli.README_FIGURES:
        path = os.path.join(cli.README_DIR, f"{name}.png")
        assert os.path.getsize(path) <= style.README_MAX_BYTES, path
        with open(path, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
        assert float(np.std(mpimg.imread(path)[..., :3])) > 0.05


# -- data agree with a recomputation ---------------------------------------------------------------


def test_objective_trajectories_replay_bit_for_bit(out):
    data = load(out, "objective")
    for method in ("binaryrelax", "proxquant"):
        run = data["runs"][method]
        traj = _lsq.rerun(run, data["seed"])
        assert np.array_equal(nan(run["f"]), traj.f)
        assert np.array_equal(nan(run["f_quant"]), traj.f_quant)
        assert run["recovered"] == traj.meta["recovered"]
    assert data["phase2_start"] == data["runs"]["binaryrelax"]["optimize"]["phase2_start"]


def test_objective_is_deterministic_from_the_seed(out):
    from figures import objective

    again = json.loads(json.dumps(style._finite(objective.compute(quick=True, seed=0))))
    assert again == load(out, "objective")
    other = objective.compute(quick=True, seed=1)
    assert other["runs"]["gd"]["f"] != again["runs"]["gd"]["f"]


def test_aoc_linear_ramp_run_replays(out):
    from figures import aoc

    data = load(out, "aoc")
    entry = data["runs"]["linear mu ramp 0 -> 1"]
    traj = _lsq.rerun(entry, data["seed"], aoc.mu_schedule_of(entry))
    assert np.array_equal(nan(entry["aoc"]), traj.aoc, equal_nan=True)
    assert entry["flips"] == traj.flips.tolist()
    # the ramp really was used: mu rises linearly before Phase II
    assert entry["mu"][1] == pytest.approx(1.0 / entry["linear_mu_ramp"])
    assert data["threshold"] == pytest.approx(1.0 - entry["optimize"]["lr"] * data["L"] / 2.0)


def test_fact_c_in_the_aoc_data(out):
    """On resolved pattern-stable steps with fixed mu, delta_t <= 0 up to round-off (Fact C)."""
    for entry in load(out, "aoc")["runs"].values():
        v = entry["summary"]["max_delta_stable_fixed_mu"]
        assert v is None or v < 1e-6


def test_rate_bound_is_the_theorem_and_holds(out):
    from figures.rate import loglog_slope, s_grid
    from theory import StationarityRate

    data = load(out, "rate")
    for label, run in data["runs"].items():
        assert run["status"] == "holds", label
        assert all(m <= b for m, b in zip(run["min_grad_norm2"], run["bound"], strict=True)), label
        assert run["s"] == s_grid(run["t1"])
        traj = _lsq.rerun(run, data["seed"])
        G2 = np.minimum.accumulate(traj.grad_norm2[: run["t1"]])
        assert run["min_grad_norm2"] == [float(G2[s - 1]) for s in run["s"]]
        last = StationarityRate().check(traj, t1=run["s"][-1]).details["final_bound"]
        assert run["bound"][-1] == pytest.approx(last, rel=1e-12)
        assert run["slope_measured"] == pytest.approx(loglog_slope(run["s"], run["min_grad_norm2"]), rel=1e-12)
    # fixed mu: C is flat (no flips late, no continuation), so the bound falls like 1/s
    assert data["runs"]["GD (mu = 0)"]["slope_bound"] == pytest.approx(-1.0, abs=1e-6)


def test_rate_s_grid_and_slope():
    from figures.rate import loglog_slope, s_grid

    g = s_grid(300)
    assert g[0] == 1 and g[-1] == 300 and g == sorted(set(g))
    s = np.arange(1, 101)
    assert loglog_slope(s, 3.0 * s**-2.0) == pytest.approx(-2.0)
    assert s_grid(0) == [] and loglog_slope([1, 2], [1, 2]) is None


def test_flip_excess_data_recompute(out):
    from theory import descent_terms
    from theory.context import Context

    data = load(out, "flip_excess")
    assert set(data["runs"]) == {"binaryrelax", "binaryconnect", "proxquant"}
    assert not data["runs"]["proxquant"]["lazy"]
    for method in ("binaryrelax", "binaryconnect"):
        run = data["runs"][method]
        E, Eb = nan(run["E"]), nan(run["Ebar"])
        assert run["steps_over_bound"] == 0 and np.all(Eb + 1e-9 * np.abs(Eb) + 1e-12 >= E)
        assert run["cum_E"][-1] == pytest.approx(np.nansum(E), abs=1e-9)
        assert np.all(np.diff(run["cum_Ebar"]) >= 0)
        traj = _lsq.rerun(run, data["seed"])
        assert np.array_equal(E, traj.f[1:] - traj.f_stable)
        assert np.array_equal(Eb, descent_terms(Context(traj), data["L"])["Ebar"])
    for c in data["coverage"]:
        assert c["violated"] == [], c
        # at g = 1/L the lazy methods have a descent guarantee on every step; PGD/ProxQuant need g L < 1
        assert c["fraction"] >= 0.95 if c["method"] not in ("pgd", "proxquant") else c["fraction"] == 0.0, c


def test_lemma_b_slack_nonnegative_and_replays(out):
    data = load(out, "lemma_b")
    for label, run in data["runs"].items():
        slack = nan(run["lemma_b_slack"])
        assert np.all(slack >= -run["summary"]["tolerance"]), label
        traj = _lsq.rerun(run, data["seed"])
        L = _lsq.make_problem(data["seed"]).L
        assert np.array_equal(slack, LemmaB.slack(traj.f, traj.mu, traj.lr, traj.step_norm2, traj.inner, traj.cross, L))
        assert np.array_equal(nan(run["descent"]), traj.descent)
    assert data["runs"]["gd"]["summary"]["negative_descent_steps"] == 0


def test_recovery_point_recomputes(out):
    from figures import recovery

    rows = load(out, "recovery")
    g = recovery.grid(True)
    assert len(rows) == len(recovery.METHODS) * len(g["noises"]) * len(g["ratios"])
    row = next(r for r in rows if float(r["m_over_n"]) == 2.0 and float(r["noise"]) == 0.0)
    m, n, steps, seeds = int(row["m"]), int(row["n"]), int(row["steps"]), int(row["seeds"])
    results = [recovery.recovered_one(m, n, 0.0, int(row["seed_base"]) + k, steps) for k in range(seeds)]
    for r in rows:
        if float(r["m_over_n"]) == 2.0 and float(r["noise"]) == 0.0:
            assert int(r["recovered"]) == sum(res[r["method"]] for res in results)
            assert float(r["probability"]) == int(r["recovered"]) / seeds


def test_recovery_same_result_in_parallel(out):
    from figures import recovery

    serial = [tuple(r.values()) for r in load(out, "recovery")]
    parallel = recovery.compute(True, 0, jobs=2)
    assert [tuple(str(v) for v in r) for r in parallel] == [tuple(str(v) for v in r) for r in serial]


def test_prox_map_matches_the_formula(out):
    rows = load(out, "prox_map")
    assert {r["set"] for r in rows} == {"binary", "ternary"}
    checked = 0
    for r in rows:
        u, lam = float(r["u"]), float(r["lam"])
        if r["set"] == "ternary" and abs(abs(u) - 0.5) < 1e-12:
            continue  # the tie |u| = 1/2 between levels 0 and 1: either is a nearest level
        if r["set"] == "binary":
            p = 1.0 if u >= 0 else -1.0  # sign(0) = +1
        else:
            p = 0.0 if abs(u) < 0.5 else math.copysign(1.0, u)
        assert float(r["P_u"]) == p
        checked += 1
        assert float(r["prox"]) == pytest.approx((u + lam * p) / (1 + lam), abs=1e-12)
    assert checked > 1000


def test_projection_error_value_recomputes(out):
    from figures import projection_error as pe

    rows = load(out, "projection_error")
    row = next(r for r in rows if r["distribution"] == "laplacian" and r["set"] == "ternary" and r["method"] == "exact")
    n, trials = int(row["n"]), int(row["trials"])
    errs = []
    for k in range(trials):
        w = pe.weights("laplacian", n, 0, k)
        errs.append(np.linalg.norm(w - brelax.ternary().project(w)) / np.linalg.norm(w))
    assert float(row["rel_error_mean"]) == pytest.approx(np.mean(errs), rel=1e-12)
    # F4: no method beats the exact projection on its own set (2-bit greedy/PARQ use a larger set)
    for r in rows:
        if r["status"] != "ok" or (r["set"] == "2-bit" and r["method"] in ("greedy residual", "PARQ LSBQ optimal")):
            continue
        assert float(r["sq_error_ratio_to_exact"]) >= 1 - 1e-9, r
    parq = {r["status"] for r in rows if r["method"] == "PARQ LSBQ optimal"}
    assert parq == {"ok"} or all(s.startswith("unavailable") for s in parq)


def test_digits_accuracy_replays(out):
    from brelax.problems import digits_mlp
    from figures import _digits

    data = load(out, "digits_mlp")
    run = data["runs"]["BR ternary"]
    kw = dict(run["optimize"])
    lr = brelax.schedules.multistep(
        data["lr"]["lr0"], [int(m * kw["steps"]) for m in data["lr"]["milestones"]], data["lr"]["gamma"]
    )
    prob = digits_mlp(hidden=_digits.HIDDEN, seed=data["seed"])
    traj = brelax.optimize(prob, y0=prob.init(np.random.default_rng(data["seed"] + 1)), lr=lr, seed=data["seed"], **kw)
    assert run["flips"] == traj.flips.tolist()
    assert run["t"] == traj.iterates["t"].tolist()
    assert run["test_accuracy"][-1] == prob.test_accuracy(traj.iterates["p"][-1])
    assert run["test_accuracy"][0] == prob.test_accuracy(traj.iterates["p"][0])


def test_weight_histograms_recompute(out):
    from figures import _digits
    from figures import weight_histograms as wh

    data = load(out, "weight_histograms")
    prob = _digits.problem(data["seed"])
    traj = _digits.run("binaryrelax", "binary", True, data["seed"])
    last = data["panels"][-1]
    i = traj.iterates["t"].tolist().index(last["t"])
    xs = wh.normalized(prob, traj.iterates["x"][i], traj.iterates["p"][i])
    edges = np.asarray(data["edges"])
    assert last["x_counts"] == np.histogram(np.clip(xs, edges[0], edges[-1]), edges)[0].tolist()
    # Phase II: x_t = P(y_t), so every weight sits at exactly ±a
    assert last["mu"] == 1.0 and last["x_mass_near_pm1"] == 1.0
    assert data["panels"][0]["x_mass_near_pm1"] < 1.0


def _log_rows():
    rows = []
    for e in range(1, 4):
        rows.append(
            {
                "epoch": e,
                "lr": 0.1,
                "lam": 1.04 ** (e - 1),
                "mu": 1.0 if e == 3 else 0.5,
                "phase": "II" if e == 3 else "I",
                "train_loss": None,
                "train_acc": None,
                "test_loss": 2.0 / e,
                "test_acc": 0.3 * e,
                "running_loss": 2.1 / e,
                "running_acc": 0.25 * e,
                "aoc_mean": -0.1 * e,
                "aoc_max": 0.5,
                "aoc_nonpos_frac": 0.9,
                "flips": 100 // e,
                "layers": {
                    "conv1": {"aoc_mean": -0.2, "aoc_max": 0.4, "aoc_nonpos_frac": 0.9, "flips": 10, "dist_y": 1.0},
                    "conv2": {"aoc_mean": 0.1 * e, "aoc_max": 0.5, "aoc_nonpos_frac": 0.8, "flips": 20, "dist_y": None},
                },
                "seconds": 1.0,
                "images_per_s": 50.0,
            }
        )
    return rows


def test_cifar_curves_from_a_generated_log(tmp_path):
    from figures import cifar_curves

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _log_rows()) + "\n")
    d = str(tmp_path / "fig")
    assert cifar_curves.main(["--metrics", str(log), "--out", d]) == 0
    data = json.loads((tmp_path / "fig" / "cifar_curves.json").read_text())
    assert data["synthetic"] is False
    s = data["series"]
    assert s["test_acc"] == pytest.approx([0.3, 0.6, 0.9])
    assert s["train_acc"] == [None, None, None]
    assert s["layers"]["conv2"]["aoc_mean"] == pytest.approx([0.1, 0.2, 0.3])
    assert s["phase"] == ["I", "I", "II"]
    assert not os.path.exists(os.path.join(d, cifar_curves.EXAMPLE_LOG))
    assert data["steplog"] is None  # no RUN/steps/ beside this log: the bottom panels say so


def test_cifar_curves_example_is_labelled(out):
    data = load(out, "cifar_curves")
    assert data["synthetic"] is True
    assert data["source"].endswith("cifar_curves_example_metrics.jsonl")


def test_cifar_curves_step_panels_of_the_example_recompute(out):
    from figures import _digits, cifar_curves

    st = load(out, "cifar_curves")["steplog"]
    assert st["source"].startswith("NumPy example")
    traj = _digits.run("binaryrelax", "binary", True, 0)
    k = cifar_curves.EXAMPLE_STEPS_PER_EPOCH
    assert st["steps"] == traj.steps and st["epochs"] == list(range(1, -(-traj.steps // k) + 1))
    for name, lay in st["layers"].items():
        fl = np.asarray(traj.layers[name]["flips"], dtype=float)
        assert lay["flips_per_epoch"] == [float(fl[i * k : (i + 1) * k].sum()) for i in range(len(st["epochs"]))]
    # the every-step inequality summed: measured above the bound at every step, and the run is covered
    assert all(m >= b for m, b in zip(st["cum_measured"], st["cum_bound"], strict=True))
    assert st["monotonicity_status"] == "holds" and st["violated"] == []
    assert st["conformance_steps"] >= 0.95 * st["steps"]


def test_cifar_curves_bad_log_names_the_line(tmp_path):
    from figures import cifar_curves

    log = tmp_path / "metrics.jsonl"
    log.write_text(json.dumps(_log_rows()[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        cifar_curves.read_metrics(log)
    log.write_text(json.dumps({"test_acc": 0.5}) + "\n")
    with pytest.raises(ValueError, match="epoch"):
        cifar_curves.read_metrics(log)


# -- command line ----------------------------------------------------------------------------------


def test_brelax_figures_subset_and_bad_name(tmp_path, capsys):
    from brelax.cli import main

    assert main(["figures", "--out", str(tmp_path), "--quick", "--only", "prox_map"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["prox_map.csv", "prox_map.pdf", "prox_map.png"]
    assert "1 figures, 3 files" in capsys.readouterr().out
    assert cli.selected("prox_map, cifar_curves") == ["prox_map", "cifar_curves"]
    assert cli.selected(None) == list(FIGURES)
    assert main(["figures", "--out", str(tmp_path), "--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().out
    with pytest.raises(ValueError, match="nope"):
        cli.selected("prox_map,nope")


def test_script_runs_alone_as_a_module(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "figures.prox_map", "--out", str(tmp_path), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "prox_map.png").exists() and (tmp_path / "prox_map.csv").exists()


def test_same_seed_same_bytes(out, tmp_path):
    from figures import prox_map

    assert prox_map.main(["--out", str(tmp_path), "--quick", "--seed", "0"]) == 0
    for f in ("prox_map.png", "prox_map.pdf", "prox_map.csv"):
        with open(os.path.join(out, f), "rb") as fh:
            assert (tmp_path / f).read_bytes() == fh.read(), f
