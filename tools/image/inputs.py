"""The input hash of the project image, for tools/image/build's stamps.

The image is rebuilt only when this hash changes: it covers the Dockerfile, the
.dockerignore and every file the Dockerfile's COPY/ADD lines take from the build
context (minus the `**/NAME` patterns of .dockerignore, i.e. __pycache__ and *.pyc),
plus any extra strings the caller adds (the base image's own input hash). It errs on
the side of rebuilding: a file under a copied directory counts even when a finer
.dockerignore pattern would leave it out of the context.

    python3 tools/image/inputs.py --context . --dockerfile Dockerfile [--extra S]...
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path


def instructions(dockerfile_text: str) -> Iterator[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    pending = ""
    for raw in dockerfile_text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            yield keyword.upper(), rest.strip()
    if pending.strip():
        keyword, _, rest = pending.strip().partition(" ")
        yield keyword.upper(), rest.strip()


def context_sources(dockerfile_text: str) -> list[str]:
    """The build-context paths/globs of every COPY and ADD (not `COPY --from=stage`)."""
    sources: list[str] = []
    for keyword, rest in instructions(dockerfile_text):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])  # the last word is the destination
    return sources


def ignored_names(dockerignore_text: str) -> list[str]:
    """The `**/NAME` patterns of a .dockerignore: names excluded at any depth."""
    names = []
    for raw in dockerignore_text.splitlines():
        line = raw.strip()
        if line.startswith("**/") and "/" not in line[3:]:
            names.append(line[3:])
    return names


def context_files(context: Path, sources: Iterable[str], ignored: list[str]) -> list[Path]:
    """Every file the sources name, sorted, relative to the context."""

    def skip(path: Path) -> bool:
        return any(fnmatch.fnmatch(part, pat) for part in path.parts for pat in ignored)

    found: set[Path] = set()
    for source in sources:
        for match in sorted(context.glob(source.rstrip("/") or ".")):
            candidates = [match] if not match.is_dir() else list(match.rglob("*"))
            for path in candidates:
                rel = path.relative_to(context)
                if (path.is_file() or path.is_symlink()) and not skip(rel):
                    found.add(rel)
    return sorted(found)


def input_hash(context: Path, dockerfile: Path, extra: Iterable[str] = ()) -> str:
    """sha256 over the Dockerfile, .dockerignore, every context file (path, mode, bytes)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        # Length-prefixed so that moving bytes between fields changes the hash.
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    text = dockerfile.read_text()
    add("dockerfile", text.encode())
    dockerignore = context / ".dockerignore"
    ignore_text = dockerignore.read_text() if dockerignore.is_file() else ""
    add("dockerignore", ignore_text.encode())
    for rel in context_files(context, context_sources(text), ignored_names(ignore_text)):
        path = context / rel
        if path.is_symlink():
            add(f"link:{rel}", str(path.readlink()).encode())
        else:
            executable = path.stat().st_mode & 0o111 != 0
            add(f"file:{rel}:{int(executable)}", path.read_bytes())
    for item in extra:
        add("extra", item.encode())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=Path, default=Path("."))
    parser.add_argument("--dockerfile", type=Path, default=None)
    parser.add_argument("--extra", action="append", default=[],
                        help="a string that also goes into the hash (repeatable)")
    parser.add_argument("--list", action="store_true",
                        help="print the context files that are hashed, not the hash")
    args = parser.parse_args(argv)
    dockerfile = args.dockerfile or args.context / "Dockerfile"
    if args.list:
        text = dockerfile.read_text()
        ignore = args.context / ".dockerignore"
        ignored = ignored_names(ignore.read_text()) if ignore.is_file() else []
        for rel in context_files(args.context, context_sources(text), ignored):
            print(rel)
        return
    print(input_hash(args.context, dockerfile, args.extra))


if __name__ == "__main__":
    main()
