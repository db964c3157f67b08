"""The environment check reports versions, mode and device, and really loads the embedded checkpoints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmlab
from mmlab import doctor, models

pytestmark = pytest.mark.usefixtures("isolated_mode")


def test_report_loads_both_embedded_checkpoints_and_says_why_the_mode(capsys):
    mmlab.setup("offline")
    checks = doctor.report()
    out = capsys.readouterr().out
    assert [(c.name, c.ok) for c in checks] == [("clip", True), ("blip2", True)]
    assert all("loaded in" in c.detail and "MB on disk" in c.detail for c in checks)
    assert "asked for by mmlab.setup('offline')" in out
    assert f"transformers           {doctor._version('transformers')}" in out
    assert "all checks passed" in out


def test_a_broken_checkpoint_is_reported_not_raised(monkeypatch, tmp_path, capsys):
    mmlab.setup("offline")
    (tmp_path / "model.safetensors").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(models, "embedded_path", lambda name: Path(tmp_path))
    checks = doctor.report()
    assert [c.ok for c in checks] == [False, False]
    assert all(c.detail.startswith("FAILED: ") for c in checks)
    assert "2 check(s) failed: clip, blip2" in capsys.readouterr().out
    monkeypatch.setattr(doctor, "report", lambda: checks)
    assert doctor.main() == 1


@pytest.mark.slow
def test_python_m_mmlab_doctor_runs_and_exits_zero():
    result = subprocess.run([sys.executable, "-m", "mmlab.doctor"], check=False, capture_output=True, text=True,
                            env={**os.environ, "MMLAB_MODE": "offline"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("mmlab: offline mode")
    assert "  clip                   ok: " in result.stdout
