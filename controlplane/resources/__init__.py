"""The Envoy resources the translation emits, one module per kind; controlplane/translate.py composes them."""
