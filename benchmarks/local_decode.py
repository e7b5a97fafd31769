"""Local model decode speed: llama-cpp-python called directly vs. the same GGUF through the gateway.

Same file, same threads (2), same prompt, greedy decoding, max 128 new tokens; decode rate =
(tokens − 1) / (time of last token − time of first token), so prefill is excluded on both sides. Runs
alternate direct / gateway three times; the median of each is reported with their ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import LLMOPS, free_port, process, save  # noqa: E402

from llmops.gateway.providers.local import default_gguf_path  # noqa: E402

KEY = "sk-llmops-benchmark-key-0000000000000000"
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
MAX_TOKENS = 128


def direct_rate(llm) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    stamps = []
    for chunk in llm.create_chat_completion(messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0, stream=True):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def gateway_rate(base: str) -> tuple[float, int]:
    stamps = []
    body = {"model": "local", "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True}
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=body, timeout=300, headers={"authorization": f"Bearer {KEY}"}
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                chunk = orjson.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def main() -> None:
    from llama_cpp import Llama

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"LLMOPS_HOME": tempfile.mkdtemp(), "LLMOPS_PORT": str(port), "LLMOPS_ADMIN_KEY": KEY}
    direct, via = [], []
    tokens = []
    for _ in range(3):
        llm = Llama(model_path=str(default_gguf_path()), n_threads=2, n_ctx=2048, verbose=False)
        direct_rate(llm)  # warm-up
        rate, n = direct_rate(llm)
        direct.append(rate)
        del llm
        with process([LLMOPS, "serve"], env=env, ready_url=base + "/healthz"):
            gateway_rate(base)  # warm-up
            rate, n2 = gateway_rate(base)
            via.append(rate)
        tokens.append((n, n2))
    d, g = statistics.median(direct), statistics.median(via)
    save(
        "local_decode",
        {
            "direct_tok_s": d,
            "gateway_tok_s": g,
            "ratio": g / d,
            "runs_direct": direct,
            "runs_gateway": via,
            "tokens": tokens,
        },
    )


if __name__ == "__main__":
    main()
