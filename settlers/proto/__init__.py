"""Generated protobuf / gRPC code for settlers.v1 (regenerate with tools/gen-proto)."""
