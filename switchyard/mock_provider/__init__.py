"""A fake OpenAI- or Anthropic-shaped LLM provider for end-to-end tests, demos and benchmarks.

It stands in for real providers so the gateway can be exercised without network access:
tests inject failures (status codes, latency, hangs, connection resets) through rules and
read back exactly what each upstream attempt looked like from the request recording.
"""
