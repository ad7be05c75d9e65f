# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Options shared by the collection's Kubernetes modules (paired with module_utils/k8s.py arg specs)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig. Defaults to C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG), then C(~/.kube/config),
        then the in-cluster service account.
    type: path
  context:
    description: Context of the kubeconfig to use; the current context when omitted.
    type: str
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
"""
