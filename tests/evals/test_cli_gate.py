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


def test_cli_prompt_and_model_targets_through_a_server(tmp_path: Path, fake_upstream, server_factory) -> None:  # type: ignore[no-untyped-def]
    """Prompt and model targets in eval.yaml go through a running server with --base-url (openai client): the
    gateway answers (fake upstream), results keep the gateway's trace ids; without a server they exit 2 with a
    message saying what is needed; a prompt version that rewrites the input fails against the baseline."""
    from tests.conftest import fake_config, openai_dep

    cfg = fake_config(fake_upstream, {"name": "fake", "deployments": [openai_dep(fake_upstream, "gpt-fake")]})
    srv = server_factory(cfg)
    api = {"Authorization": f"Bearer {srv.key}"}
    import httpx

    prompt = {"name": "ans", "type": "text", "template": "{{ input }}", "variables": {"input": "string"}}
    assert httpx.post(srv.base_url + "/api/prompts", json={**prompt, "model": "fake"}, headers=api).status_code == 201
    v2 = {**prompt, "template": "Say: {{ input }}", "model": "fake"}
    assert httpx.post(srv.base_url + "/api/prompts/ans/versions", json=v2, headers=api).status_code == 201
    (tmp_path / "d.jsonl").write_text("".join(f'{{"id": "q{i}", "input": "q{i}", "expected": "echo: q{i}"}}\n'
                                              for i in range(12)))  # fmt: skip
    (tmp_path / "model.yaml").write_text("dataset: d.jsonl\ntarget: {model: fake}\nscorers: [exact]\n")
    for v in (1, 2):
        (tmp_path / f"p{v}.yaml").write_text(
            f"dataset: d.jsonl\ntarget: {{prompt: {{name: ans, version: {v}}}}}\nscorers: [{{name: exact}}]\n"
        )
    db = str(tmp_path / "g.db")
    server = ["--base-url", srv.v1, "--api-key", srv.key, "--db", db]
    env = {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}
    no_server = _run(["run", "model.yaml", "--db", db], tmp_path, **env)
    assert no_server.returncode == 2 and "--base-url" in no_server.stderr
    ok = _run(["run", "model.yaml", *server], tmp_path, **env)
    assert ok.returncode == 0 and "PASS" in ok.stdout, ok.stdout + ok.stderr
    base = _run(["run", "p1.yaml", "--run-id", "p1", *server], tmp_path, **env)
    assert base.returncode == 0, base.stdout + base.stderr
    bad = _run(["run", "p2.yaml", "--baseline", "p1", "--junit", "j.xml", *server], tmp_path, **env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testcase/failure")
    assert failure is not None and "significant regression" in failure.get("message", "")
    from llmops.core.db import create_db_engine
    from llmops.evals.runner import Runner

    engine = create_db_engine(f"sqlite:///{db}")
    results = Runner(engine).results("default", "p1")
    engine.dispose()
    assert len(results) == 12 and all(r["trace_id"] and r["output"].startswith("echo: q") for r in results)


def test_cli_builds_a_dataset_from_gateway_traces_and_runs_it(tmp_path: Path, fake_upstream, server_factory) -> None:  # type: ignore[no-untyped-def]
    """`llmops eval dataset from-traces` (bulk by filter, then one trace) on a running server, exported as JSONL
    and run by `llmops eval run` against the same model: every item passes; bad options exit 2."""
    import openai

    from tests.conftest import fake_config, openai_dep

    cfg = fake_config(fake_upstream, {"name": "fake", "deployments": [openai_dep(fake_upstream, "gpt-fake")]})
    srv = server_factory(cfg)
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    trace_ids = []
    for i in range(6):
        raw = client.chat.completions.with_raw_response.create(
            model="fake",
            messages=[{"role": "user", "content": f"question {i}"}],
            extra_headers={"x-llmops-tags": "prod"},
        )
        trace_ids.append(raw.headers["x-llmops-trace-id"])
    client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "untagged"}])
    srv.flush()
    server = ["--base-url", srv.base_url, "--api-key", srv.key]
    env = {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}
    bulk = _run(
        ["dataset", "from-traces", "prod-qs", "--filter", "tag=prod", "--out", "d.jsonl", *server], tmp_path, **env
    )
    assert bulk.returncode == 0, bulk.stdout + bulk.stderr
    assert "version 1: 6 added, 6 items" in bulk.stdout
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all('"source"' in line and "question" in line for line in lines)
    one = _run(["dataset", "from-traces", "prod-qs", "--trace-id", trace_ids[0], *server], tmp_path, **env)
    assert one.returncode == 0 and "version 2: 1 added, 7 items" in one.stdout, one.stdout + one.stderr
    neither = _run(["dataset", "from-traces", "prod-qs", *server], tmp_path, **env)
    assert neither.returncode == 2 and "--trace-id or at least one --filter" in neither.stderr
    (tmp_path / "e.yaml").write_text("dataset: d.jsonl\ntarget: {model: fake}\nscorers: [exact]\n")
    run = _run(
        ["run", "e.yaml", "--db", str(tmp_path / "g.db"), "--base-url", srv.v1, "--api-key", srv.key], tmp_path, **env
    )
    assert run.returncode == 0 and "PASS" in run.stdout, run.stdout + run.stderr
