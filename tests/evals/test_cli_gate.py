"""``llmops eval run`` as a subprocess on examples/eval: pass, planted regression vs baseline (JUnit), bad spec."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eval"
LLMOPS = str(Path(sys.executable).parent / "llmops")


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLMOPS, "eval", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_gate_pass_fail_error(tmp_path: Path) -> None:
    work = tmp_path / "eval"
    shutil.copytree(EXAMPLE, work)
    db = str(tmp_path / "gate.db")
    ok = _run(["run", "eval.yaml", "--db", db, "--run-id", "base", "--junit", "ok.xml"], work)
    assert ok.returncode == 0, ok.stderr
    assert "PASS" in ok.stdout
    suite = ET.parse(work / "ok.xml").getroot()
    assert suite.get("tests") == "1" and suite.get("failures") == "0"

    bad = _run(["run", "eval.yaml", "--db", db, "--baseline", "base", "--junit", "bad.xml"], work, EVAL_PLANT_BUG="1")
    assert bad.returncode == 1, bad.stderr
    failure = ET.parse(work / "bad.xml").getroot().find("testcase/failure")
    assert failure is not None and "significant regression" in failure.get("message", "")
    assert "q0: output differs" in (failure.text or "")

    # resume: the same run id redoes nothing and gives the same verdict
    again = _run(["run", "eval.yaml", "--db", db, "--run-id", "base"], work)
    assert again.returncode == 0 and "items: 0" in again.stdout

    (work / "broken.yaml").write_text(
        "dataset: dataset.jsonl\ntarget: {python: 'app:answer'}\nscorers: [{name: exact, threshold: 2}]\n"
    )
    err = _run(["run", "broken.yaml", "--db", db], work)
    assert err.returncode == 2 and "scorers[0].threshold must be a number in [0, 1], got 2" in err.stderr
    (work / "broken.yaml").write_text("dataset: dataset.jsonl\ntarget: {python: 'app:answer'}\nscorers: [nope]\n")
    err = _run(["run", "broken.yaml", "--db", db], work)
    assert err.returncode == 2 and "scorers[0]: unknown scorer 'nope'" in err.stderr


def test_dataset_cli_roundtrip(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    imp = _run(["dataset", "import", "arith", str(EXAMPLE / "dataset.jsonl"), "--db", db], tmp_path)
    assert imp.returncode == 0 and "arith v1: 20 items" in imp.stdout
    exp = _run(["dataset", "export", "arith", "--version", "1", "--db", db], tmp_path)
    assert exp.stdout.count("\n") == 20 and '"expected":"3"' in exp.stdout
    assert "arith\tv1" in _run(["dataset", "list", "--db", db], tmp_path).stdout
    (tmp_path / "bad.jsonl").write_text('{"input": "a"}\n{oops\n')
    bad = _run(["dataset", "import", "arith", str(tmp_path / "bad.jsonl"), "--db", db], tmp_path)
    assert bad.returncode == 2 and "line 2" in bad.stderr
