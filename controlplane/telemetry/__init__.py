"""What the targets are doing, as seen from Envoy's per-attempt log: counts, latency, failures, fallbacks."""
