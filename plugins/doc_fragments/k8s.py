# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Options shared by the collection's Kubernetes modules (the arg specs of module_utils/k8s/auth.py, apply.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig, or the kubeconfig itself as a mapping. Else C(K8S_AUTH_KUBECONFIG), then
        C(KUBECONFIG) (several files merged as kubectl merges them, missing ones skipped), then
        C(~/.kube/config), then the pod's service account. The play-wide setting is C(wide_ep_kubeconfig).
      - Read by the official C(kubernetes) client, so every credential kind of a kubeconfig works - client
        certificates, C(token) and C(tokenFile), exec plugins (run again when their token expires or is
        refused), the C(oidc), C(gcp) and C(azure) auth-providers, basic auth - with the cluster's
        C(certificate-authority), C(tls-server-name) and C(proxy-url).
    type: raw
  context:
    description: The kubeconfig's context; else C(K8S_AUTH_CONTEXT), then its current context.
    type: str
  host:
    description: The API server URL; else C(K8S_AUTH_HOST). With O(api_key), O(username) and O(password), or
      O(client_cert) and O(client_key), no kubeconfig is read.
    type: str
  api_key:
    description: A bearer token; else C(K8S_AUTH_API_KEY).
    type: str
  username:
    description: User for basic authentication; else C(K8S_AUTH_USERNAME).
    type: str
  password:
    description: Password for basic authentication; else C(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description: Verify the API server's certificate; else C(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description: CA bundle for the API server's certificate; else C(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description: Client certificate; else C(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description: Key of O(client_cert); else C(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - HTTP proxy (CONNECT) to the API server; else C(K8S_AUTH_PROXY), then the kubeconfig cluster's
        C(proxy-url), then C(HTTPS_PROXY) as kubectl reads it (not for an API server on loopback).
    type: str
  no_proxy:
    description: Hosts to reach without the proxy, comma-separated; else C(K8S_AUTH_NO_PROXY), then C(NO_PROXY).
    type: str
  proxy_headers:
    description: Headers for the proxy; else C(K8S_AUTH_PROXY_HEADERS_*).
    type: dict
    suboptions:
      proxy_basic_auth:
        description: C(user:password) for the proxy.
        type: str
      basic_auth:
        description: C(user:password) for basic authentication.
        type: str
      user_agent:
        description: User-Agent sent to the proxy.
        type: str
  persist_config:
    description: Write refreshed auth-provider tokens back to the kubeconfig; else C(K8S_AUTH_PERSIST_CONFIG).
    type: bool
  impersonate_user:
    description: Act as this user (C(Impersonate-User)); else C(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description: Act in these groups (C(Impersonate-Group)); else C(K8S_AUTH_IMPERSONATE_GROUPS), comma-separated.
    type: list
    elements: str
notes:
  - The options, aliases and C(K8S_AUTH_*) variables are kubernetes.core's, and C(module_defaults) for
    C(group/kubernetes.core.k8s) or C(group/llmd.wide_ep.k8s) reaches the connection options of both
    collections' modules.
  - On the controller (every Kubernetes task here runs there) the module runs inside C(ansible-playbook), so
    the C(kubernetes) package is imported once per run, not once per task.
requirements:
  - kubernetes >= 30.1 (the official Python client)
"""

    APPLY = r"""
options:
  state:
    description: C(present) applies the objects server-side; C(absent) deletes them (foreground).
    type: str
    choices: [present, absent]
    default: present
  field_manager:
    description: Field manager of the server-side apply. Fields owned by it are the collection's.
    type: str
    default: llmd.wide_ep
  force_conflicts:
    description:
      - Take over fields that another field manager owns. Without it such a conflict fails the task and names the
        owner, which is the safe default on a shared production cluster.
    type: bool
    default: false
  wait:
    description: Wait until every object is ready (LeaderWorkerSet all groups Available, Deployment available) or,
      with O(state=absent), gone.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait before failing.
    type: int
    default: 600
  wait_sleep:
    description: Seconds between polls.
    type: float
    default: 2.0
notes:
  - Check mode uses a server-side dry run, so admission webhooks and defaulting run and the diff is what the API
    server would store.
  - A CustomResourceDefinition is applied with the annotation C(llmd.ai/applied-digest), the digest of what was
    sent. While the live CRD carries the same digest and no field manager other than this one's apply (and status
    writers) owns any of its fields, it is unchanged without the dry run (the API server takes ~30 ms for that of
    a large CRD); anyone else's edit brings the dry run back.
"""

    PLAN = r"""
options:
  refs:
    description:
      - The plan's references (C(wide_ep_plan.refs) from the topology role) - the namespace, release, pool, EPP,
        LeaderWorkerSets, Gateway and HTTPRoute of the deployment. The module reads every name from here.
    type: dict
    required: true
  expected:
    description: The plan's summary (C(wide_ep_plan.summary)) - the model, and per role its size and ports.
    type: dict
    required: true
"""

    HELM = r"""
options:
  helm_binary:
    description:
      - helm (4, or 3.17 or later) on the controller. The action plugin fills it from C(wide_ep_helm_binary)
        when the task leaves it out.
    type: str
    default: helm
"""
