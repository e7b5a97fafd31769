"""Build hook: compiles the native OTLP decoder (src/llmops/tracing/_otlpc.c) into the wheel, or in place for an
editable install. Without a C compiler (or with LLMOPS_PURE_PYTHON=1) the build goes on without it and ingest
decodes every body with upb (same results, more CPU per span; docs/ingest.md)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/llmops/tracing/_otlpc.c")


class NativeDecoderHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("LLMOPS_PURE_PYTHON"):
            return
        source = Path(self.root) / SOURCE
        target = source.with_name("_otlpc" + str(sysconfig.get_config_var("EXT_SUFFIX")))
        compiler = shlex.split(str(sysconfig.get_config_var("CC") or "cc"))
        command = [
            *compiler,
            *("-shared", "-fPIC", "-O2", "-fno-strict-aliasing", "-Wall"),
            "-I" + sysconfig.get_paths()["include"],
            str(source),
            "-o",
            str(target),
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.app.display_warning(f"llmops: native OTLP decoder not built, ingest uses upb: {detail.strip()}")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["artifacts"].append(str(target.relative_to(self.root)))
