"""The built wheel works on its own: presets, templates and data files are inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    import shutil

    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp_path / "dist"), str(source)], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("brainage-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "brainage/configs/tsan.yaml" in names and "brainage/py.typed" in names
    assert "brainage/configs/gan/tgbgan_cpu.yaml" in names  # GAN presets ship too
    assert any(n.startswith("brainage/reporting/templates/") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
         cwd=tmp_path)
    # The dependencies (torch, ANTsPy, ...) come from this environment, after the wheel; a
    # path line in a .pth file adds only that folder, not this environment's editable install.
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = _run([str(py), "-c", "import brainage; print(brainage.__file__)"], work, env)
    assert where.startswith(str(venv)), where
    shown = _run(["brainage", "config", "show", "tsan"], work, env)
    assert "name: scaledense" in shown and "amsgrad: true" in shown
    listed = _run(["brainage", "config", "list"], work, env)
    assert "tsan_cpu_stage2" in listed and "tgbgan_cpu_no_task" in listed
    assert "sfcn" in _run(["brainage", "models"], work, env)
    _run(["brainage", "simulate", "bids", "--n", "2", "--sites", "1", "--voxel-size", "6"],
         work, env)
    checked = _run(["brainage", "cohort", "check", "bids"], work, env)
    assert "scans 2, subjects 2, sessions 2" in checked and "problems: 0" in checked
