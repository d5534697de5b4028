"""The Dockerfile builds on arm64 too: hdrhistogram has no aarch64 wheel for Python 3.11,
so the build stage (and only it) gets a C compiler there; the runtime stage stays slim.
Read as text: building an arm64 image is out of reach here."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on."""
    text = DOCKERFILE.read_text()
    starts = [m.start() for m in re.finditer(r"^FROM ", text, re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def test_only_the_build_stage_installs_a_compiler_and_only_off_amd64() -> None:
    build, runtime = stages()
    assert build.startswith("FROM ") and " AS build" in build.splitlines()[0]
    run = next(block for block in re.split(r"\n(?=RUN |ENV |COPY |WORKDIR )", build)
               if block.startswith("RUN ") and "gcc" in block)
    assert 'dpkg --print-architecture)" != amd64' in run
    assert "libc6-dev" in run and "rm -rf /var/lib/apt/lists/*" in run
    # The runtime stage takes the built virtualenv, not the compiler.
    assert "gcc" not in runtime and "apt-get install" not in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
