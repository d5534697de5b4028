"""The committed gRPC code is exactly what tools/gen-proto generates from the .proto."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ["settlers_pb2.py", "settlers_pb2.pyi", "settlers_pb2_grpc.py"]


def test_committed_proto_code_equals_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "tools" / "gen-proto"), str(tmp_path)], check=True,
                   capture_output=True)
    for name in GENERATED:
        fresh = (tmp_path / "settlers" / "proto" / name).read_text()
        committed = (ROOT / "settlers" / "proto" / name).read_text()
        assert fresh == committed, f"settlers/proto/{name} is stale: run tools/gen-proto"


def test_generated_messages_match_the_proto() -> None:
    from settlers.proto import settlers_pb2

    request = settlers_pb2.ProduceRequest(item="bread", count=2, size=16, caller="x-0")
    again = settlers_pb2.ProduceRequest.FromString(request.SerializeToString())
    assert (again.item, again.count, again.size, again.caller) == ("bread", 2, 16, "x-0")
    fields = [f.name for f in settlers_pb2.Hop.DESCRIPTOR.fields]
    assert fields == ["item", "pod", "caller", "bytes", "elapsed_ms"]
