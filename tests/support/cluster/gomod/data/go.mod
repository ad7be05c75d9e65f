module llmd.local/data

go 1.26.0

require (
	istio.io/api v1.28.1
	sigs.k8s.io/gateway-api v1.4.0
	sigs.k8s.io/gateway-api-inference-extension v1.3.0
)
