"""Every subcommand against a table of bad inputs: one line naming the flag, exit 2, no traceback.

Also the promises that nothing is lost: the divergence stop keeps a finite last good
checkpoint, export never writes onto its input, a second run into the same folder is
refused, an interruption between the metrics row and the checkpoint loses nothing, and
Ctrl-C exits with 130. In-process through :func:`brelax.cli.main` (one subprocess for
a real SIGINT).
"""

import errno
import gzip
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from brelax import cli
from brelax.commands import _args
from brelax.torch import checkpoint, write_tiny_cifar
from brelax.torch import train as train_mod
from brelax.torch.train import TrainConfig, TrainingStopped, first_nonfinite, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = [
    "--synthetic",
    "--synthetic-n",
    "16",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--eval-batch-size",
    "16",
    "--no-eval-train",
    "--no-progress",
    "--quiet",
]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A good checkpoint and bad files: a plain file, truncated, garbage and malicious checkpoints, bad data."""
    d = tmp_path_factory.mktemp("files")
    cfg = TrainConfig(
        synthetic=True,
        synthetic_n=16,
        epochs=1,
        batch_size=16,
        eval_batch_size=16,
        eval_train=False,
        progress=False,
        quiet=True,
        out=str(d / "good"),
        seed=0,
    )
    train(cfg)
    good = d / "good" / "ckpt.pt"
    blob = good.read_bytes()
    (d / "file.txt").write_text("not a folder\n")
    diverged = checkpoint.load(good)
    diverged["model"]["bn1.running_var"][0] = math.inf  # what --lr 30 used to leave in the checkpoint
    torch.save(diverged, d / "diverged.pt")
    (d / "trunc.pt").write_bytes(blob[: len(blob) // 2])
    (d / "garbage.pt").write_bytes(b"definitely not a checkpoint " * 20)
    with open(d / "evil.pt", "wb") as f:
        pickle.dump({"format": checkpoint.FORMAT, "x": _Evil()}, f, protocol=2)
    torch.save({"format": checkpoint.FORMAT, "x": _Evil()}, d / "evil_zip.pt")
    for name in ("trunc.pt", "garbage.pt", "evil.pt"):  # the same files as RUN/ckpt.pt for --resume
        (d / f"run-{name}").mkdir()
        (d / f"run-{name}" / "ckpt.pt").write_bytes((d / name).read_bytes())
    (d / "bad.jsonl").write_text('{"epoch": 1}\nnot json\n')
    (d / "busy").mkdir()
    (d / "busy" / "metrics.jsonl").write_text('{"epoch": 1}\n')
    # CIFAR: a malicious pickle in place of a batch, and an archive cut short.
    evil_data = write_tiny_cifar(d / "evil-data", "cifar10", 10, 5, archive=False)
    (evil_data / "test_batch").write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    archive = write_tiny_cifar(d / "cut", "cifar10", 200, 10, archive=True)
    raw = gzip.decompress(archive.read_bytes())
    archive.write_bytes(gzip.compress(raw[: len(raw) // 2], mtime=0))
    return d


def _bad_inputs(d):
    """``(id, argv, the flag or value the one line must name)``."""
    f, good = str(d / "file.txt"), str(d / "good" / "ckpt.pt")
    out = lambda name: str(d / "outs" / name)  # noqa: E731  (a fresh, empty --out per case)
    t = ["train", *TINY]
    return [
        ("verify-out-file", ["verify", "--out", f, "--quick"], "--out"),
        ("verify-out-under-file", ["verify", "--out", f + "/sub", "--quick"], "--out"),
        ("verify-seed", ["verify", "--seed", "-1", "--out", out("v")], "--seed"),
        ("figures-out-file", ["figures", "--out", f, "--quick"], "--out"),
        ("figures-jobs", ["figures", "--jobs", "0", "--out", out("f")], "--jobs"),
        ("figures-metrics-missing", ["figures", "--metrics", str(d / "nope.jsonl"), "--out", out("f")], "--metrics"),
        ("figures-metrics-bad", ["figures", "--metrics", str(d / "bad.jsonl"), "--out", out("f")], "--metrics"),
        ("figures-seed", ["figures", "--seed", "-2", "--out", out("f")], "--seed"),
        ("bench-out-file", ["bench", "--out", f, "--quick"], "--out"),
        ("bench-seed", ["bench", "--seed", "-1", "--out", out("b")], "--seed"),
        ("run-out-under-file", ["run", "lsq", "--steps", "3", "--out", f + "/t.npz"], "--out"),
        ("run-out-dir", ["run", "lsq", "--steps", "3", "--out", str(d)], "--out"),
        ("run-lr", ["run", "lsq", "--lr", "-1", "--out", out("r.npz")], "--lr"),
        ("run-steps", ["run", "lsq", "--steps", "0", "--out", out("r.npz")], "--steps"),
        ("train-out-file", [*t, "--out", f], "--out"),
        ("train-out-busy", [*t, "--out", str(d / "busy")], "--resume"),
        ("train-limit-train-0", [*t, "--limit-train", "0", "--out", out("t")], "--limit-train"),
        ("train-limit-train-neg", [*t, "--limit-train", "-1", "--out", out("t")], "--limit-train"),
        ("train-limit-test-0", [*t, "--limit-test", "0", "--out", out("t")], "--limit-test"),
        ("train-momentum", [*t, "--momentum", "2", "--out", out("t")], "--momentum"),
        ("train-momentum-neg", [*t, "--momentum", "-0.5", "--out", out("t")], "--momentum"),
        ("train-phase2", [*t, "--phase2-epoch", "-3", "--out", out("t")], "--phase2-epoch"),
        ("train-device", [*t, "--device", "mps", "--out", out("t")], "--device"),
        ("train-lr", [*t, "--lr", "0", "--out", out("t")], "--lr"),
        ("train-epochs", [*t, "--epochs", "0", "--out", out("t")], "--epochs"),
        ("train-seed", [*t, "--seed", "-1", "--out", out("t")], "--seed"),
        ("train-float-flag", [*t, "--momentum", "x", "--out", out("t")], "--momentum"),
        ("train-resume-trunc", [*t, "--resume", "--out", str(d / "run-trunc.pt")], "--resume"),
        ("train-resume-garbage", [*t, "--resume", "--out", str(d / "run-garbage.pt")], "--resume"),
        ("train-resume-evil", [*t, "--resume", "--out", str(d / "run-evil.pt")], "--resume"),
        ("train-init-missing", [*t, "--init", str(d / "nope.pt"), "--out", out("t")], "--init"),
        ("train-init-trunc", [*t, "--init", str(d / "trunc.pt"), "--out", out("t")], "--init"),
        ("train-init-garbage", [*t, "--init", str(d / "garbage.pt"), "--out", out("t")], "--init"),
        ("train-init-evil", [*t, "--init", str(d / "evil.pt"), "--out", out("t")], "--init"),
        ("train-init-evil-zip", [*t, "--init", str(d / "evil_zip.pt"), "--out", out("t")], "--init"),
        ("train-init-other-arch", [*t, "--model", "resnet32", "--init", good, "--out", out("t")], "--init"),
        ("train-data-evil", ["train", *TINY[3:], "--data", str(d / "evil-data"), "--out", out("t")], "--data"),
        ("train-data-truncated", ["train", *TINY[3:], "--data", str(d / "cut"), "--out", out("t")], "truncated"),
        ("train-data-missing", ["train", *TINY[3:], "--data", str(d / "nothing"), "--out", out("t")], "--data"),
        ("export-onto-input", ["export", good, "--out", good], "--out"),
        ("export-onto-input-force", ["export", good, "--out", good, "--force"], "--out"),
        ("export-existing", ["export", good, "--out", f], "--force"),
        ("export-out-under-file", ["export", good, "--out", f + "/m.safetensors"], "--out"),
        ("export-missing", ["export", str(d / "nope.pt")], "CHECKPOINT"),
        ("export-trunc", ["export", str(d / "trunc.pt"), "--out", out("m.safetensors")], "CHECKPOINT"),
        ("export-garbage", ["export", str(d / "garbage.pt"), "--out", out("m.safetensors")], "CHECKPOINT"),
        ("export-evil", ["export", str(d / "evil.pt"), "--out", out("m.safetensors")], "CHECKPOINT"),
        ("export-diverged", ["export", str(d / "diverged.pt"), "--out", out("m.safetensors")], "bn1.running_var"),
        ("project-n", ["project", "--n", "0"], "--n"),
        ("project-input", ["project", "--input", str(d / "nope.npy")], "--input"),
        ("project-set", ["project", "--set", "levels:1,1e154", "--n", "10"], "levels"),
    ]


CASES = [c[0] for c in _bad_inputs(__import__("pathlib").Path("."))]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_naming_the_flag_with_exit_code_2(case, files, capsys):
    _, argv, flag = next(c for c in _bad_inputs(files) if c[0] == case)
    before = {p: p.stat().st_mtime_ns for p in files.rglob("*") if p.is_file()}
    rc = cli.main(argv)
    cap = capsys.readouterr()
    lines = [line for line in (cap.out + cap.err).splitlines() if line.strip()]
    assert rc == 2, (rc, cap.out[-500:], cap.err[-2000:])
    assert "Traceback" not in cap.out + cap.err
    assert len(lines) == 1, lines
    assert flag in lines[0] and "error" in lines[0], lines[0]
    # Nothing that existed was written over (the malicious files ran nothing either).
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_debug_shows_the_traceback(files):
    with pytest.raises(_args.UsageError, match="--momentum"):
        cli.main(["--debug", "train", *TINY, "--momentum", "2", "--out", str(files / "outs" / "dbg")])
    with pytest.raises(_args.UsageError, match="--jobs"):
        cli.main(["figures", "--jobs", "0", "--debug"])


@pytest.mark.parametrize(
    "err",
    [OSError(errno.EROFS, "Read-only file system"), PermissionError(errno.EACCES, "Permission denied")],
    ids=["rofs", "eacces"],
)
def test_read_only_out_is_refused_before_any_work(err, files, tmp_path, monkeypatch, capsys):
    # The tests run as root, for whom chmod 0o500 does not stop a write: fake the refusal the OS would give.
    def refuse(*a, **k):
        raise err

    monkeypatch.setattr(_args.tempfile, "mkstemp", refuse)
    for argv in (
        ["verify", "--out", str(tmp_path / "v"), "--quick"],
        ["figures", "--out", str(tmp_path / "f")],
        ["bench", "--out", str(tmp_path / "b")],
        ["run", "lsq", "--out", str(tmp_path / "r.npz")],
        ["train", *TINY, "--out", str(tmp_path / "t")],
        ["export", str(files / "good" / "ckpt.pt"), "--out", str(tmp_path / "e" / "m.safetensors")],
    ):
        rc = cli.main(argv)
        lines = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and "--out" in lines[0] and err.strerror in lines[0], (argv, lines)


def test_full_disk_is_one_line_and_keeps_nothing_torn(tmp_path, monkeypatch, capsys):
    def full(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "t" / "ckpt.pt"))

    monkeypatch.setattr(checkpoint.torch, "save", full)
    rc = cli.main(["train", *TINY, "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "No space left on device" in err[0] and "ckpt.pt" in err[0], err
    assert not [p for p in os.listdir(tmp_path / "t") if p.endswith(".tmp")]  # the temp file is removed


def test_ctrl_c_in_process_exits_130_with_the_resume_hint(tmp_path, monkeypatch, capsys):
    def interrupted(cfg, on_loss=None):
        raise KeyboardInterrupt

    monkeypatch.setattr("brelax.torch.train_cli.train", interrupted)
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "t")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["brelax train: interrupted; continue with --resume"]


def test_sigint_during_training_exits_130_and_keeps_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "brelax",
        "train",
        "--synthetic",
        "--synthetic-n",
        "32",
        "--epochs",
        "200",
        "--batch-size",
        "16",
        "--no-eval-train",
        "--no-progress",
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "ckpt.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the checkpoint of epoch 0 is written before the first step
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-2000:]
    assert (
        "Traceback" not in stderr
        and stderr.strip().splitlines()[-1] == "brelax train: interrupted; continue with --resume"
    )
    ck = checkpoint.load(out / "ckpt.pt")
    assert ck["epoch"] < 200
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


# --- nothing lost ------------------------------------------------------------------------------------------


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _tiny_cfg(out, **kw):
    base = dict(
        synthetic=True,
        synthetic_n=32,
        epochs=2,
        batch_size=16,
        eval_batch_size=32,
        eval_train=False,
        progress=False,
        quiet=True,
        out=str(out),
        seed=1,
        milestones=[5],
    )
    base.update(kw)
    return TrainConfig(**base)


def test_a_buffer_gone_to_inf_stops_before_the_checkpoint_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    """A BatchNorm running_var of inf with a finite training loss (what --lr 30 did) stops the run."""
    nets = []
    real_build = train_mod.build_model
    monkeypatch.setattr(train_mod, "build_model", lambda *a, **k: nets.append(real_build(*a, **k)) or nets[-1])

    def poison(step, loss):
        if step == 2:  # the first step of epoch 2 (2 steps per epoch)
            nets[0].bn1.running_var.data.fill_(math.inf)  # .data: no autograd version bump mid-step
        return loss

    with pytest.raises(TrainingStopped, match=r"bn1\.running_var.* at epoch 2.*keeps epoch 1"):
        train(_tiny_cfg(tmp_path / "run"), on_loss=poison)
    ck = checkpoint.load(tmp_path / "run" / "ckpt.pt")
    assert ck["epoch"] == 1
    for k, v in ck["model"].items():
        assert not v.is_floating_point() or torch.isfinite(v).all(), k
    net = real_build("resnet20", 10)
    net.load_state_dict(ck["model"])  # the last good checkpoint loads
    assert first_nonfinite(net) is None
    rows = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1]


def test_a_diverging_lr_stops_with_exit_code_3_not_0(tmp_path, capsys):
    # lr 30 used to diverge here; with P(y) evaluated at re-estimated BatchNorm statistics it no longer does.
    rc = cli.main(
        [
            "train",
            "--synthetic",
            "--synthetic-n",
            "32",
            "--batch-size",
            "16",
            "--epochs",
            "3",
            "--lr",
            "1e5",
            "--no-eval-train",
            "--no-progress",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 3 and "non-finite" in err and "at epoch" in err, err
    ck = checkpoint.load(tmp_path / "run" / "ckpt.pt")
    assert ck["epoch"] < 3
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_second_run_into_the_same_folder_needs_resume_or_force(files, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 7}\n')
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 7}\n'  # untouched
    assert cli.main(["train", *TINY, "--out", str(out), "--force"]) == 0
    assert [r["epoch"] for r in _rows(out / "metrics.jsonl")] == [1]


def test_export_refuses_its_input_and_existing_files_but_force_replaces_an_output(files, tmp_path, capsys):
    good = files / "good" / "ckpt.pt"
    before = good.read_bytes()
    assert cli.main(["export", str(good), "--out", str(good), "--force"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert good.read_bytes() == before
    out = tmp_path / "m.safetensors"
    assert cli.main(["export", str(good), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert cli.main(["export", str(good), "--out", str(out)]) == 2  # exists
    assert cli.main(["export", str(good), "--out", str(out), "--force", "--pack"]) == 0
    assert out.read_bytes() != first and good.read_bytes() == before


def test_interruption_between_metrics_and_checkpoint_loses_nothing(tmp_path, monkeypatch):
    """The row of epoch 2 is written, the checkpoint of epoch 2 is not: --resume reruns epoch 2, bit for bit."""
    straight = train(_tiny_cfg(tmp_path / "straight"))
    real_save = checkpoint.save_atomic

    def killed_at_epoch_2(obj, path):
        if obj["epoch"] == 2:
            raise KeyboardInterrupt
        real_save(obj, path)

    monkeypatch.setattr(checkpoint, "save_atomic", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny_cfg(tmp_path / "cut"))
    cut = tmp_path / "cut"
    assert checkpoint.load(cut / "ckpt.pt")["epoch"] == 1
    assert [r["epoch"] for r in _rows(cut / "metrics.jsonl")] == [1, 2]  # the row came first
    (cut / ".ckpt.pt.stale123.tmp").write_bytes(b"x" * 100)  # what a kill -9 mid-write leaves
    (cut / "steps").mkdir(exist_ok=True)
    (cut / "steps" / ".epoch_0002.npz.abc.tmp").write_bytes(b"x")
    with open(cut / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "test_lo')  # a torn row, as an older version's append could leave
    monkeypatch.setattr(checkpoint, "save_atomic", real_save)
    resumed = train(_tiny_cfg(cut, resume=True))
    assert not (cut / ".ckpt.pt.stale123.tmp").exists() and not (cut / "steps" / ".epoch_0002.npz.abc.tmp").exists()
    rows, straight_rows = _rows(cut / "metrics.jsonl"), _rows(tmp_path / "straight" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("test_loss", "test_acc", "running_loss", "lam", "mu", "flips"):
        assert rows[1][key] == straight_rows[1][key], key
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


# --- new-user friction ---------------------------------------------------------------------------------------


def test_version_and_defaults_in_every_help(capsys):
    import brelax

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"brelax {brelax.__version__}"
    from importlib.metadata import version

    assert brelax.__version__ == version("brelax")  # pyproject.toml is the one place
    assert cli.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in (
        "--momentum MOMENTUM (default: 0.9)",
        "--epochs EPOCHS (default: 200)",
        "--lr LR (default: 0.1)",
        "(default: [80, 140])",
    ):
        assert shown in text, shown
    for name in cli.COMMANDS:
        assert cli.main([name, "--help"]) == 0
        assert "default" in capsys.readouterr().out, name  # "(default: X)" added, or written by hand


def test_no_progress_keeps_the_epoch_lines_and_quiet_drops_them(tmp_path, capsys):
    argv = ["train", *TINY[:-2], "--no-progress"]  # TINY without --quiet
    assert "--quiet" not in argv
    assert cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "epoch 1/1  test_acc" in capsys.readouterr().out
    assert cli.main([*argv, "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert "epoch 1/1" not in capsys.readouterr().out


def test_run_divergence_is_reported_without_a_warning_leaking(tmp_path, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would now raise
        rc = cli.main(["run", "lsq", "--steps", "50", "--lr", "1e6", "--out", str(tmp_path / "t.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3 and len(err) == 1 and "non-finite" in err[0] and "t.npz" in err[0], err
    assert (tmp_path / "t.npz").is_file()  # the trajectory up to the divergence is kept
