"""The README's Python examples run as written."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_run():
    blocks = python_blocks()
    assert len(blocks) >= 3
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), ns)
    # The API example's claims, checked on the objects it built.
    assert ns["z"].shape == ns["w"].shape and ns["z"].dtype == ns["w"].dtype
    assert np.array_equal(ns["qt"].dequantize(), ns["Q"].project(ns["w"], axis=0))
    assert ns["traj"].meta["recovered"] is True
    assert ns["opt"].method == "binaryrelax"
