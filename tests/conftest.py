"""Shared test set-up: every test's temporary files live in a folder that is removed after it.

The chapters make their scratch folders with `tempfile.mkdtemp()` (a learner's /tmp is the right place for
them), and the pipeline's notebooks, kernels and torchrun workers do the same in child processes. Under the
suite those folders piled up in /tmp (videos, games, checkpoints: 44 GB here after a few runs; a CI run then failed on a full disk), so this
fixture points `tempfile` and `TMPDIR` (children inherit it) at a per-test folder and removes it afterwards.
The folder's path is short (`/tmp/dudek-test-XXXXXXXX`): worker processes open sockets in the temporary folder
(under a pipeline stage's own scratch folder in it), and a socket's path must fit in 107 bytes.
"""
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def scratch_folder(tmp_path_factory, monkeypatch):
    tmp_path_factory.getbasetemp()  # pytest's own folder first: it is made in the temporary folder at first use, and must not be made in ours
    scratch = Path(tempfile.mkdtemp(prefix="dudek-test-"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)
