# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Kubernetes access for the collection's modules: `auth` (the official client's configuration from module
options, K8S_AUTH_* and kubeconfig), `client` (the verbs, over one transport), `readiness` and `lws`."""
