"""The second table of bad inputs and faults (issue 21): each answered by one line and its exit code.

Damaged inputs to ``verify`` (exit 2, the file named, never numpy's pickle advice),
a resume that cannot lie (no checkpoint, changed flags, ``--override`` recorded),
the run lock, sha256 integrity of checkpoints and exports, ``--force`` over files
that are not regular, overflowing and impossible flag values, a missing optional
dependency, MemoryError, SIGTERM (143, intact checkpoint, ``--resume`` finishes),
and the exit-code contract in every ``--help``. Faults the machine cannot produce
on demand (a missing package, an allocation failure, a stale lock) are simulated.
Torch runs are the offline digits, one or two epochs of 256 images.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from brelax import cli, errors, schedules, steps
from brelax._atomic import LOCK_NAME, check_digest, folder_lock
from brelax.torch import QuantOptimizer, checkpoint
from brelax.torch import train as train_mod

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DIGITS = [
    "--dataset",
    "digits",
    "--epochs",
    "1",
    "--batch-size",
    "128",
    "--limit-train",
    "256",
    "--eval-batch-size",
    "512",
    "--no-eval-train",
    "--no-progress",
    "--quiet",
]


def _cli(argv, capsys):
    """``brelax ARGV`` in process: the exit code and stderr's non-empty lines."""
    rc = cli.main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return rc, err


def _one_line(rc, err, code, *words):
    assert rc == code and len(err) == 1, (rc, err)
    assert "Traceback" not in err[0] and "allow_pickle" not in err[0], err
    for w in words:
        assert w in err[0], (w, err)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A one-epoch digits run (with its step log) and a NumPy trajectory; each test copies what it changes."""
    d = tmp_path_factory.mktemp("faults2")
    assert cli.main(["train", *DIGITS, "--out", str(d / "run")]) == 0
    assert cli.main(["run", "lsq", "--steps", "20", "--m", "20", "--n", "5", "--out", str(d / "t.npz")]) == 0
    return d


def _copy(base, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(base / "run", dst)
    return dst


# ------------------------------------------------------------------ the contract in every --help


@pytest.mark.parametrize("command", ["project", "run", "train", "export", "verify"])
def test_every_help_states_the_exit_codes(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, _ in errors.EXIT_CODES:
        assert f"  {code:<3}  " in out, (code, out[-800:])


def test_only_the_cli_maps_errors_the_library_raises_its_own():
    assert issubclass(train_mod.TrainingStopped, errors.Diverged)
    assert issubclass(checkpoint.CheckpointError, errors.InputError)
    from brelax.commands import _args

    assert issubclass(_args.UsageError, errors.InputError) and issubclass(errors.InputError, ValueError)


# ------------------------------------------------------------------ verify: damaged inputs


def _flip_inside_member(src, dst, member_suffix):
    """Copy ``src`` with one bit flipped inside the data of the first archive member ending in ``member_suffix``."""
    blob = bytearray(Path(src).read_bytes())
    with zipfile.ZipFile(src) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    blob[start + info.compress_size - 3] ^= 0x10  # in the array's bytes, past its .npy header
    Path(dst).write_bytes(bytes(blob))


@pytest.fixture(scope="module")
def damaged(base, tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    good = (base / "t.npz").read_bytes()
    (d / "trunc.npz").write_bytes(good[: len(good) // 2])
    _flip_inside_member(base / "t.npz", d / "flip.npz", "a__aoc.npy")
    np.save(d / "plain.npy", np.zeros(3))
    (d / "notes.txt").write_text("hello\n")
    np.savez(d / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    np.savez(d / "other.npz", weights=np.zeros(3))
    z = dict(np.load(base / "t.npz"))
    z["a__aoc"] = z["a__aoc"][:-1]
    np.savez(d / "short.npz", **z)
    for name in ("trunc_epoch", "meta_list", "no_step", "short_column", "flip_epoch"):
        shutil.copytree(base / "run", d / name)
    epoch = "steps/epoch_0001.npz"
    blob = (base / "run" / epoch).read_bytes()
    (d / "trunc_epoch" / epoch).write_bytes(blob[: len(blob) // 2])
    _flip_inside_member(base / "run" / epoch, d / "flip_epoch" / epoch, "loss.npy")
    (d / "meta_list" / "steps" / "meta.json").write_text("[1, 2]\n")
    cols = dict(np.load(base / "run" / epoch))
    del cols["step"]
    np.savez(d / "no_step" / epoch, **cols)
    cols = dict(np.load(base / "run" / epoch))
    cols["loss"] = cols["loss"][:-1]
    np.savez(d / "short_column" / epoch, **cols)
    return d


VERIFY_CASES = [
    ("trunc.npz", "trunc.npz", "truncated or damaged"),
    ("flip.npz", "flip.npz", "damaged"),
    ("plain.npy", "plain.npy", "plain .npy array"),
    ("notes.txt", "notes.txt", "not a saved trajectory"),
    ("objects.npz", "objects.npz", "Python objects"),
    ("other.npz", "other.npz", "not a brelax trajectory"),
    ("short.npz", "a__aoc", "unequal length"),
    ("trunc_epoch", "epoch_0001.npz", "truncated or damaged"),
    ("flip_epoch", "epoch_0001.npz", "damaged"),
    ("meta_list", "meta.json", "JSON list"),
    ("no_step", "epoch_0001.npz", "'step'"),
    ("short_column", "'loss'", "unequal length"),
]


@pytest.mark.parametrize(("name", "names", "what"), VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_refuses_a_damaged_input_with_one_line(damaged, tmp_path, capsys, name, names, what):
    rc, err = _cli(["verify", damaged / name, "--out", tmp_path / "v"], capsys)
    _one_line(rc, err, 2, names, what)


@pytest.mark.parametrize("payload", ["object_array", "pickle"])
def test_project_input_never_relays_the_allow_pickle_advice(tmp_path, capsys, payload):
    path = tmp_path / "w.npy"
    if payload == "object_array":
        np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(__import__("pickle").dumps({"x": 1}))
    rc, err = _cli(["project", "--input", path], capsys)
    _one_line(rc, err, 2, "--input", "never loaded")


def test_verify_only_selects_among_the_results_of_saved_runs(base, tmp_path, capsys):
    rc, err = _cli(["verify", base / "t.npz", "--only", "theorem1", "--out", tmp_path / "v"], capsys)
    assert rc == 0, err
    report = json.loads((tmp_path / "v" / "verify-report.json").read_text())
    names = {r["name"] for r in report["results"]}
    assert names == {"theorem1"}, names
    rc, err = _cli(["verify", base / "t.npz", "--only", "no_such_result", "--out", tmp_path / "v"], capsys)
    _one_line(rc, err, 2, "--only", "no_such_result")


def test_verify_mutants_with_paths_is_refused(base, tmp_path, capsys):
    rc, err = _cli(["verify", "--mutants", base / "t.npz", "--out", tmp_path / "v"], capsys)
    _one_line(rc, err, 2, "--mutants", "t.npz")


# ------------------------------------------------------------------ resume cannot lie


def test_resume_without_a_checkpoint_is_refused_and_removes_nothing(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    os.unlink(run / "ckpt.pt")
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    rc, err = _cli(["train", *DIGITS, "--resume", "--out", run], capsys)
    _one_line(rc, err, 2, "--resume", "no checkpoint")
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_resume_without_a_checkpoint_creates_nothing_from_the_api(tmp_path):
    cfg = train_mod.recipe_config(dataset="digits", epochs=1, out=str(tmp_path / "never"), resume=True)
    with pytest.raises(errors.ResumeMismatch, match="no checkpoint"):
        train_mod.train(cfg)
    assert not (tmp_path / "never").exists()


def test_resume_refuses_changed_flags_naming_each(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    ck = (run / "ckpt.pt").read_bytes()
    rc, err = _cli(["train", "--resume", "--epochs", "2", "--momentum", "0", "--wd", "0", "--out", run], capsys)
    _one_line(rc, err, 2, "--momentum recorded 0.9, given 0.0", "--wd recorded 0.0001, given 0.0", "--override")
    assert (run / "ckpt.pt").read_bytes() == ck
    # a flag that defines the run (conv biases, the set) cannot change even with --override
    rc, err = _cli(["train", "--resume", "--set", "ternary", "--override", "--out", run], capsys)
    _one_line(rc, err, 2, "--set recorded 'binary', given 'ternary'", "cannot change")
    rc, err = _cli(["train", "--resume", "--no-conv-bias", "--out", run], capsys)
    _one_line(rc, err, 2, "--no-conv-bias")


@pytest.mark.parametrize("field", [f.name for f in train_mod.dataclasses.fields(train_mod.TrainConfig)])
def test_resume_compares_every_field_of_the_run_config(field):
    """Every TrainConfig field is compared on --resume except the few that say how to run, not what."""
    cfg = train_mod.TrainConfig(dataset="digits", model="digits_cnn")
    recorded = cfg.to_dict()
    other = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 2 + 1, str: lambda v: v + "x"}
    value = getattr(cfg, field)
    changed = [7] if isinstance(value, list) else 3 if value is None else other[type(value)](value)
    diffs = train_mod.config_differences(recorded, train_mod.dataclasses.replace(cfg, **{field: changed}))
    assert (field in diffs) == (field not in train_mod.NOT_COMPARED), (field, diffs)
    assert "conv_bias" in train_mod.RUN_KEYS


def test_resume_with_override_applies_the_flags_and_records_them(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    rc, err = _cli(
        [
            "train",
            "--resume",
            "--override",
            "--epochs",
            "2",
            "--momentum",
            "0",
            "--wd",
            "0",
            "--lam0",
            "2",
            "--out",
            run,
        ],
        capsys,
    )
    assert rc == 0, err
    ck = checkpoint.load(run / "ckpt.pt")
    assert ck["epoch"] == 2 and ck["config"]["momentum"] == 0.0 and ck["config"]["weight_decay"] == 0.0
    assert ck["config"]["epochs"] == 2
    groups = ck["optimizer"]["param_groups"]
    assert all(g["momentum"] == 0.0 and g["weight_decay"] == 0.0 for g in groups)  # what ran, not the old 0.9
    assert ck["overrides"] == [
        {"epoch": 1, "step": 2, "changed": {"momentum": [0.9, 0.0], "weight_decay": [0.0001, 0.0], "lam0": [1.0, 2.0]}}
    ]
    assert ck["optimizer"]["quant"]["lam0"] == 2.0  # the schedule that ran
    meta = json.loads((run / "steps" / "meta.json").read_text())
    assert meta["overrides"] == ck["overrides"] and meta["momentum"] == 0.0
    assert meta["plain_sgd"] is False  # epoch 1 ran with momentum: the run as a whole is not plain SGD
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == summary["last"]["epoch"] == 2
    # verify drops the one step that crosses the override (x re-formed with the new mu) and checks the rest
    from proofs_checks.run_file import load as load_saved

    traj = load_saved(run)
    assert traj.meta["masked_steps"] == [2] and np.isnan(traj.step_norm2[2]) and np.isfinite(traj.step_norm2[1])
    rc, err = _cli(["verify", run, "--out", tmp_path / "v"], capsys)
    assert rc == 0, err
    # --epochs below the epoch reached is refused (it used to write epochs: 1 with last.epoch: 2)
    rc, err = _cli(["train", "--resume", "--epochs", "1", "--out", run], capsys)
    _one_line(rc, err, 2, "--epochs 1 is below epoch 2")


# ------------------------------------------------------------------ the lock on --out


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with folder_lock(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        rc, err = _cli(["train", *DIGITS, "--out", out], capsys)
    _one_line(rc, err, 2, "in use by another brelax process", f"pid {os.getpid()}")
    assert not (out / LOCK_NAME).exists()  # released and removed


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid}\n")
    with folder_lock(tmp_path) as stale:
        assert stale == dead.pid
    assert f"stale lock {tmp_path / LOCK_NAME} of pid {dead.pid}" in capsys.readouterr().err


@pytest.mark.slow
def test_two_runs_started_together_into_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "brelax", "train", *DIGITS, "--out", str(out)]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in results] == [0, 2], results
    assert "--out" in results[1][1] and "Traceback" not in results[1][1]
    assert checkpoint.load(out / "ckpt.pt")["epoch"] == 1


# ------------------------------------------------------------------ integrity and --force


def _flip_byte_in_a_tensor(path):
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:  # a torch checkpoint is a zip; flip a byte of the largest tensor's data
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    blob[start + info.file_size // 2] ^= 0x01
    path.write_bytes(bytes(blob))


def test_a_bit_flipped_checkpoint_is_refused_on_resume_init_and_export(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    assert check_digest(run / "ckpt.pt")  # written beside it, and it matches
    _flip_byte_in_a_tensor(run / "ckpt.pt")
    rc, err = _cli(["train", *DIGITS, "--resume", "--epochs", "2", "--out", run], capsys)
    _one_line(rc, err, 2, "sha256", "ckpt.pt")
    rc, err = _cli(["train", *DIGITS, "--init", run / "ckpt.pt", "--out", tmp_path / "fresh"], capsys)
    _one_line(rc, err, 2, "sha256", "--init")
    rc, err = _cli(["export", run / "ckpt.pt", "--out", tmp_path / "m.safetensors"], capsys)
    _one_line(rc, err, 2, "sha256")
    assert not (tmp_path / "m.safetensors").exists()


def test_export_writes_a_digest_and_loading_checks_it(base, tmp_path, capsys):
    from brelax.torch.export import load_exported

    out = tmp_path / "m.safetensors"
    rc, err = _cli(["export", base / "run" / "ckpt.pt", "--out", out], capsys)
    assert rc == 0, err
    assert check_digest(out)
    load_exported(out)
    blob = bytearray(out.read_bytes())
    blob[-5] ^= 0x01
    out.write_bytes(bytes(blob))
    with pytest.raises(errors.IntegrityError, match="sha256"):
        load_exported(out)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_force_writes_only_over_regular_files(base, tmp_path, capsys, kind):
    target = tmp_path / "out.safetensors"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        (tmp_path / "real").write_text("keep me\n")
        os.symlink(tmp_path / "real", target)
    else:
        target = "/dev/null"
    rc, err = _cli(["export", base / "run" / "ckpt.pt", "--out", target, "--force"], capsys)
    _one_line(rc, err, 2, "--force replaces regular files only")
    if kind == "fifo":
        assert os.path.exists(target) and not os.path.isfile(target)
    if kind == "symlink":
        assert os.path.islink(target) and (tmp_path / "real").read_text() == "keep me\n"


def test_force_clears_the_earlier_run_steps_included(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    (run / "notes.txt").write_text("the user's own file\n")
    rc, err = _cli(["train", *DIGITS, "--force", "--no-diagnostics", "--out", run], capsys)
    assert rc == 0, err
    assert not (run / "steps").exists()  # verify can no longer read the earlier run's step log as this one's
    assert (run / "notes.txt").exists()
    rc, err = _cli(["verify", run, "--out", tmp_path / "v"], capsys)
    _one_line(rc, err, 2, "steps/meta.json")


def test_force_refuses_a_symlinked_run_output(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    (tmp_path / "elsewhere.jsonl").write_text("precious\n")
    os.unlink(run / "metrics.jsonl")
    os.symlink(tmp_path / "elsewhere.jsonl", run / "metrics.jsonl")
    rc, err = _cli(["train", *DIGITS, "--force", "--out", run], capsys)
    _one_line(rc, err, 2, "metrics.jsonl", "not a regular file")
    assert (tmp_path / "elsewhere.jsonl").read_text() == "precious\n" and (run / "ckpt.pt").exists()


# ------------------------------------------------------------------ flags: overflow, sizes, dependencies


FLAG_CASES = [
    (["train", *DIGITS, "--lr", "1e39"], "--lr"),
    (["train", *DIGITS, "--wd", "1e300"], "--wd"),
    (["train", *DIGITS, "--gamma", "1e308", "--milestones", "1,2"], "--gamma"),
    (["train", *DIGITS, "--seed", str(2**32)], "--seed"),
    (["train", "--synthetic", "--synthetic-n", "100000000000"], "--synthetic-n"),
    (["project", "--n", "100000000000000"], "--n"),
    (["project", "--seed", str(2**32)], "--seed"),
    (["run", "lsq", "--m", "100000000000"], "--m"),
    (["run", "lsq", "--steps", "1000000000000"], "--steps"),
    (["run", "lsq", "--seed", "-1"], "--seed"),
    (["verify", "--seed", str(2**32)], "--seed"),
]


@pytest.mark.parametrize(("argv", "flag"), FLAG_CASES, ids=[f"{a[0]}{f}" for a, f in FLAG_CASES])
def test_overflowing_and_impossible_flags_are_one_line_before_any_work(tmp_path, capsys, argv, flag):
    out = ["--out", tmp_path / ("o.npz" if argv[0] == "run" else "o")] if argv[0] != "project" else []
    rc, err = _cli([*argv, *out], capsys)
    _one_line(rc, err, 2, flag)
    assert not (tmp_path / "o" / "ckpt.pt").exists()


def test_a_missing_optional_dependency_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    rc, err = _cli(["train", *DIGITS, "--out", tmp_path / "o"], capsys)
    _one_line(rc, err, 2, "'sklearn'", "pip install 'brelax[digits]'")


def test_a_missing_torch_names_the_torch_extra():
    """In a fresh interpreter where ``import torch`` fails (as without brelax[torch])."""
    code = (
        "import sys; sys.modules['torch'] = None; from brelax import cli; sys.exit(cli.main(['train', '--synthetic']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, (proc.returncode, err)
    assert "'torch'" in err[0] and "pip install 'brelax[torch]'" in err[0]


def test_memory_error_is_one_line_naming_the_size(tmp_path, capsys, monkeypatch):
    def no_memory(*a, **k):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000000000,)")

    monkeypatch.setattr("brelax.commands.project.generate", no_memory)
    rc, err = _cli(["project", "--n", "1000"], capsys)
    _one_line(rc, err, 2, "not enough memory", "7.28 TiB")


def test_dataset_digits_picks_digits_cnn(capsys):
    from brelax.torch import train_cli

    parser, _ = cli.build_parser(["train"])
    args = parser.parse_args(["train", "--dataset", "digits"])
    assert train_cli.config_from_args(args).model == "digits_cnn"
    args = parser.parse_args(["train", "--dataset", "digits", "--model", "digits_mlp"])
    assert train_cli.config_from_args(args).model == "digits_mlp"


def test_digits_needs_only_the_torch_extra():
    import tomllib

    root = Path(__file__).resolve().parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("scikit-learn") for d in extras["torch"]), extras["torch"]
    assert any(d.startswith("scikit-learn") for d in extras["digits"]), extras


# ------------------------------------------------------------------ SIGTERM


@pytest.mark.slow
def test_sigterm_exits_143_with_the_resume_line_and_an_intact_checkpoint(tmp_path):
    out = tmp_path / "t"
    argv = [a if a != "1" else "30" for a in DIGITS]  # 30 epochs: it is still running when the signal comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "brelax", "train", *argv, "--out", str(out)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    # two rows: the second is written after epoch 1's checkpoint (the row of an epoch precedes its checkpoint)
    while not (out / "metrics.jsonl").exists() or len((out / "metrics.jsonl").read_text().splitlines()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "brelax train: terminated (SIGTERM); continue with --resume"
    ck = checkpoint.load(out / "ckpt.pt")  # sha256 checked too
    assert 1 <= ck["epoch"] < 30 and not (out / LOCK_NAME).exists()
    done = subprocess.run(
        [sys.executable, "-m", "brelax", "train", "--resume", "--epochs", str(ck["epoch"] + 1), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------------------ one description of a method


def test_a_method_added_as_contributing_says_runs_in_schedules_and_quantoptimizer(monkeypatch):
    """CONTRIBUTING's recipe: register a Method in brelax.steps.METHODS; nothing else names methods."""
    half = steps.Method("halfconnect", steps.lazy_init, steps.lazy_update, True, 0.5, summary="mu fixed at 1/2")
    monkeypatch.setitem(steps.METHODS, "halfconnect", half)
    assert schedules.RelaxSchedule("halfconnect").mu(7) == 0.5
    w = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = QuantOptimizer(torch.optim.SGD([w], lr=0.1), method="halfconnect", qset="binary")
    assert opt.mu == 0.5 and "latent" in opt.state[w]
    w.grad = torch.ones_like(w)
    opt.step()
    y = opt.state[w]["latent"]
    assert torch.equal(w.detach(), steps.lazy_init(y, 0.5, lambda v: opt.slots[0].qset.project(v, axis=0)).x)
    assert "halfconnect: mu fixed at 1/2" in steps.methods_help()


def test_rho_has_one_default():
    import inspect

    assert schedules.RelaxSchedule().rho == schedules.DEFAULT_RHO
    assert inspect.signature(QuantOptimizer).parameters["rho"].default == schedules.DEFAULT_RHO
    assert train_mod.TrainConfig().rho == schedules.DEFAULT_RHO
