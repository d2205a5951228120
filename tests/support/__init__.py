"""What the test tiers share: the end-to-end harness (real Envoy, control plane and ext_proc as processes, the
mock provider), real PostgreSQL, gRPC child processes, a fake Envoy admin, and the golden-file renderer."""
