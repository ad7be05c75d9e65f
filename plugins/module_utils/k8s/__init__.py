# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Kubernetes access for the collection's modules: `auth` (the official client's configuration from module
options, K8S_AUTH_* and kubeconfig), `client` (the verbs, over one transport), `errors`, `readiness`, `lws` (the
groups of a LeaderWorkerSet), `apply` (server-side apply with a dry-run compare), `helm`, `ownership`, `capacity`
(free GPUs) and `serving` (gateway addresses and the pods of a role)."""
