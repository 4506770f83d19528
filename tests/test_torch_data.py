"""CIFAR files (restricted unpickler, archive and folder readers), augmentation and the seeded loader."""

import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brelax.torch.data import (
    CIFAR_MEAN,
    CIFAR_STD,
    CifarLoader,
    apply_augmentation,
    augment,
    draw_augmentation,
    load_cifar,
    normalize,
    restricted_loads,
    synthetic_cifar,
    tiny_cifar_arrays,
    write_tiny_cifar,
)

TOP = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
ARCHIVE = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}


# ---------------------------------------------------------------- file format


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
@pytest.mark.parametrize("archive", [True, False])
def test_tiny_roundtrip_exact_pixels_and_labels(tmp_path, dataset, archive):
    written = write_tiny_cifar(tmp_path, dataset, n_train=13, n_test=6, seed=3, archive=archive)
    assert written == tmp_path / (ARCHIVE[dataset] if archive else TOP[dataset])
    arrays = tiny_cifar_arrays(dataset, 13, 6, seed=3)
    for train, split in ((True, "train"), (False, "test")):
        data, fine, _ = arrays[split]
        # A pixel row is three 32x32 planes R, G, B, each row-major.
        expect = torch.from_numpy(data.reshape(-1, 3, 32, 32))
        for root in (tmp_path, written):
            images, labels = load_cifar(root, dataset, train=train)
            assert images.dtype == torch.uint8 and labels.dtype == torch.int64
            assert torch.equal(images, expect)
            assert torch.equal(labels, torch.from_numpy(fine))
        assert images[0, 1, 0, 0] == data[0, 1024] and images[0, 2, 31, 31] == data[0, 3071]


def test_tiny_archive_has_the_real_layout(tmp_path):
    path = write_tiny_cifar(tmp_path, "cifar10", n_train=12, n_test=3)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        blob = tar.extractfile("cifar-10-batches-py/data_batch_2").read()
    assert names == ["cifar-10-batches-py"] + [
        f"cifar-10-batches-py/{f}" for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    ]
    assert blob[:2] == b"\x80\x02"  # protocol 2
    d = restricted_loads(blob)
    assert list(d) == [b"batch_label", b"labels", b"data", b"filenames"]
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (3, 3072) and len(d[b"filenames"]) == 3
    assert d[b"batch_label"] == b"training batch 2 of 5"
    again = write_tiny_cifar(tmp_path / "again", "cifar10", n_train=12, n_test=3)
    assert again.read_bytes() == path.read_bytes()  # byte-reproducible


def test_cifar100_files_have_fine_and_coarse_labels(tmp_path):
    folder = write_tiny_cifar(tmp_path, "cifar100", n_train=9, n_test=4, archive=False)
    assert sorted(os.listdir(folder)) == ["meta", "test", "train"]
    d = restricted_loads((folder / "train").read_bytes())
    assert set(d) == {b"batch_label", b"fine_labels", b"coarse_labels", b"data", b"filenames"}
    assert d[b"coarse_labels"] == [v % 20 for v in d[b"fine_labels"]]


def _binstring(b):
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def _py2_uint8_array(a):
    """What Python 2 cPickle (protocol 2) wrote for a 2-D uint8 numpy 1.x array."""
    shape = b"".join(b"J" + struct.pack("<i", s) for s in a.shape) + b"\x86"
    dtype = b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01"
        + shape
        + dtype
        + b"\x89"
        + _binstring(a.tobytes())
        + b"tb"
    )


def test_python2_era_pickle_reads(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    labels = [3, 0, 9, 3]
    blob = (
        b"\x80\x02}("
        + _binstring(b"batch_label")
        + _binstring(b"testing batch 1 of 1")
        + _binstring(b"labels")
        + b"]("
        + b"".join(b"K" + bytes([v]) for v in labels)
        + b"e"
        + _binstring(b"data")
        + _py2_uint8_array(data)
        + _binstring(b"filenames")
        + b"]("
        + b"".join(_binstring(b"f%d.png" % i) for i in range(4))
        + b"e"
        + b"u."
    )
    assert pickle.loads(blob, encoding="bytes")[b"labels"] == labels  # the hand-made bytes are valid
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(blob)
    images, y = load_cifar(folder, "cifar10", train=False)
    assert torch.equal(images, torch.from_numpy(data).view(4, 3, 32, 32))
    assert y.tolist() == labels


def test_numpy_scalars_and_empty_bytes_are_allowed():
    obj = {b"n": np.int64(7), b"e": b"", b"a": np.zeros((0, 3), np.float32)}
    out = restricted_loads(pickle.dumps(obj, protocol=2))
    assert out[b"n"] == 7 and out[b"e"] == b"" and out[b"a"].shape == (0, 3)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {self.marker}",)


class _EvilOpen(_Evil):
    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("evil", [_Evil, _EvilOpen])
def test_malicious_pickle_is_refused_without_running(tmp_path, evil):
    marker = tmp_path / "marker"
    blob = pickle.dumps({b"data": evil(marker)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refused global (posix\.system|builtins\.open|io\.open)"):
        restricted_loads(blob)
    assert not marker.exists()
    # The same inside an archive that load_cifar reads.
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        load_cifar(tmp_path, "cifar10", train=False)
    assert not marker.exists()


def test_guarded_stand_ins_refuse_other_uses():
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        restricted_loads(b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00abX\x06\x00\x00\x00base64\x86R.")
    with pytest.raises(pickle.UnpicklingError, match="bytes"):
        restricted_loads(b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.")  # bytes(2**30)


def _tar_with(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))


@pytest.mark.parametrize("bad", ["../evil", "/tmp/evil", "cifar-10-batches-py/../../evil"])
def test_unsafe_member_names_are_refused(tmp_path, bad):
    good = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2)
    path = tmp_path / "a.tar.gz"
    _tar_with(path, [(bad, b"x", "file"), ("cifar-10-batches-py/test_batch", good, "file")])
    with pytest.raises(ValueError, match="unsafe member"):
        load_cifar(path, "cifar10", train=False)
    assert not (tmp_path.parent / "evil").exists()


def test_symlink_member_is_refused(tmp_path):
    path = tmp_path / "a.tar.gz"
    _tar_with(path, [("cifar-10-batches-py/test_batch", b"", "link")])
    with pytest.raises(ValueError, match="not a regular file"):
        load_cifar(path, "cifar10", train=False)


def test_missing_and_malformed_data_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python\.tar\.gz"):
        load_cifar(tmp_path, "cifar10")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        load_cifar(tmp_path / "does_not_exist", "cifar10")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_cifar(tmp_path, "mnist")
    write_tiny_cifar(tmp_path, "cifar100", 3, 2)
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar(tmp_path, "cifar10")  # CIFAR-100 present, CIFAR-10 asked for
    folder = write_tiny_cifar(tmp_path / "c10", "cifar10", 5, 2, archive=False)
    (folder / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_cifar(folder, "cifar10")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2], b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match="uint8 array N x 3072"):
        load_cifar(folder, "cifar10", train=False)
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, protocol=2)
    )
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        load_cifar(folder, "cifar10", train=False)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="not a readable tar"):
        load_cifar(tmp_path / "junk.tar.gz", "cifar10")


# ---------------------------------------------------------------- augmentation


def test_crop_and_flip_are_exact_shifted_copies():
    x = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    offsets, flips = draw_augmentation(40, torch.Generator().manual_seed(1))
    out = apply_augmentation(x, offsets, flips)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    for n in range(40):
        dy, dx = offsets[n].tolist()
        crop = padded[n, :, dy : dy + 32, dx : dx + 32]
        assert torch.equal(out[n], crop.flip(-1) if flips[n] else crop)
    assert flips.any() and not flips.all() and len({tuple(o) for o in offsets.tolist()}) > 10
    # Offset (4, 4) without flip is the identity; (0, 8) shifts right/down by 4 with zeros entering.
    ident = apply_augmentation(x[:1].float(), torch.tensor([[4, 4]]), torch.tensor([False]))
    assert ident.dtype == torch.float32 and torch.equal(ident, x[:1].float())
    shifted = apply_augmentation(x[:1], torch.tensor([[0, 8]]), torch.tensor([False]))
    assert torch.equal(shifted[0, :, 4:, :28], x[0, :, :28, 4:])
    assert torch.count_nonzero(shifted[0, :, :4]) == 0 and torch.count_nonzero(shifted[0, :, :, 28:]) == 0


def test_augmentation_offsets_cover_0_to_8_and_flip_half():
    offsets, flips = draw_augmentation(4000, torch.Generator().manual_seed(0))
    assert offsets.min() == 0 and offsets.max() == 8 and len(torch.unique(offsets)) == 9
    assert 0.45 < flips.float().mean() < 0.55


def test_augment_is_deterministic_given_the_generator():
    x = torch.rand(16, 3, 32, 32)
    a = augment(x, torch.Generator().manual_seed(7))
    b = augment(x, torch.Generator().manual_seed(7))
    c = augment(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="4-D"):
        augment(x[0], torch.Generator())


def test_normalize_uses_the_authors_constants():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    x[1] = 0
    out = normalize(x)
    assert out.dtype == torch.float32
    for c in range(3):
        assert torch.allclose(out[0, c], torch.tensor((1 - CIFAR_MEAN[c]) / CIFAR_STD[c]))
        assert torch.allclose(out[1, c], torch.tensor(-CIFAR_MEAN[c] / CIFAR_STD[c]))
    assert CIFAR_MEAN == (0.4914, 0.4822, 0.4465) and CIFAR_STD == (0.2023, 0.1994, 0.2010)
    as_float = normalize(x.double() / 255)  # a float input in [0, 1] keeps its dtype
    assert as_float.dtype == torch.float64 and torch.allclose(as_float.float(), out, atol=1e-6)
    with pytest.raises(ValueError, match="mean and std need 3"):
        normalize(x, mean=(0.5,), std=(0.5,))


# ---------------------------------------------------------------- loader


def ids_dataset(n):
    """Images whose label is the sample index, to track which samples a batch holds."""
    images, _ = synthetic_cifar(n, 10, seed=1)
    return images, torch.arange(n)


def test_loader_covers_each_sample_once_per_epoch_and_replays_on_resume():
    images, ids = ids_dataset(103)
    loader = CifarLoader(images, ids, batch_size=16, train=True, seed=4)
    assert len(loader) == 7 and loader.global_batch_sizes() == [16] * 6 + [7]
    epochs = []
    for e in range(3):
        loader.set_epoch(e)
        batches = list(loader)
        seen = torch.cat([y for _, y in batches])
        assert torch.equal(torch.sort(seen).values, torch.arange(103))
        assert all(x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) for x, _ in batches)
        epochs.append(batches)
    assert not torch.equal(torch.cat([y for _, y in epochs[0]]), torch.cat([y for _, y in epochs[1]]))
    resumed = CifarLoader(images, ids, batch_size=16, train=True, seed=4)
    resumed.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(epochs[2], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    dropped = CifarLoader(images, ids, batch_size=16, train=True, seed=4, drop_last=True)
    assert len(dropped) == 6 and sum(len(y) for _, y in dropped) == 96


def test_eval_loader_is_in_order_and_unaugmented():
    images, ids = ids_dataset(20)
    batches = list(CifarLoader(images, ids, batch_size=8, train=False, seed=0))
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(20))
    assert torch.equal(torch.cat([x for x, _ in batches]), normalize(images))
    # Shuffled but not augmented: each batch is exactly the normalised images it names.
    for x, y in CifarLoader(images, ids, 8, train=True, augment=False):
        assert torch.equal(x, normalize(images[y]))


@pytest.mark.parametrize("n", [96, 100, 90])
def test_rank_splits_are_disjoint_and_rebuild_the_single_process_batches(n):
    images, ids = ids_dataset(n)
    world, per_rank = 3, 8
    single = list(CifarLoader(images, ids, per_rank * world, train=True, seed=9))
    ranks = [
        list(CifarLoader(images, ids, per_rank, train=True, seed=9, rank=r, world_size=world)) for r in range(world)
    ]
    assert all(len(r) == len(single) for r in ranks)
    for t, (xs, ys) in enumerate(single):
        parts_y = [ranks[r][t][1] for r in range(world)]
        flat = torch.cat(parts_y)
        assert len(set(flat.tolist())) == len(flat)  # disjoint
        assert torch.equal(flat, ys)  # contiguous parts, in rank order, cover the global batch
        assert torch.equal(torch.cat([ranks[r][t][0] for r in range(world)]), xs)  # same crops and flips
        if len(ys) == per_rank * world:
            assert all(len(p) == per_rank for p in parts_y)
        else:
            sizes = [len(p) for p in parts_y]
            assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(ys)


def test_loader_options_and_argument_checks():
    images, ids = ids_dataset(10)
    x, _ = next(iter(CifarLoader(images, ids, 4, True, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="batch_size"):
        CifarLoader(images, ids, 0, True)
    with pytest.raises(ValueError, match="rank"):
        CifarLoader(images, ids, 4, True, rank=2, world_size=2)
    with pytest.raises(ValueError, match="labels"):
        CifarLoader(images, ids[:5], 4, True)
    with pytest.raises(ValueError, match="epoch"):
        CifarLoader(images, ids, 4, True).set_epoch(-1)


def test_synthetic_cifar_is_reproducible_balanced_and_learnable():
    images, labels = synthetic_cifar(600, 10, seed=2)
    again, labels2 = synthetic_cifar(600, 10, seed=2)
    assert images.dtype == torch.uint8 and images.shape == (600, 3, 32, 32) and labels.dtype == torch.int64
    assert torch.equal(images, again) and torch.equal(labels, labels2)
    assert torch.bincount(labels).tolist() == [60] * 10
    assert not torch.equal(images, synthetic_cifar(600, 10, seed=3)[0])
    # Nearest class mean on raw pixels, fitted on half, scored on the other half.
    x = images.float().flatten(1)
    means = torch.stack([x[:300][labels[:300] == k].mean(0) for k in range(10)])
    pred = torch.cdist(x[300:], means).argmin(1)
    assert (pred == labels[300:]).float().mean() > 0.9
