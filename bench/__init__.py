"""`make bench`: Switchyard measured side by side with plain Envoy, a direct call and LiteLLM."""
