module llmd.local/gwapi151

go 1.26.0

// The Gateway API CRDs of llm-d v0.9.0 (guides/env.sh GATEWAY_API_VERSION): a module of its own, since
// data/ pins v1.4.0 for the older releases.
require sigs.k8s.io/gateway-api v1.5.1
