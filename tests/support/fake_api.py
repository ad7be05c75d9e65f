"""An in-memory Kubernetes API server for the unit tests: the transport under module_utils/k8s.Client, so the
client, apply loop, lease and rollout logic run without a cluster. It keeps objects by path and speaks the few
verbs the collection uses - GET (objects, lists with a label selector, discovery), server-side apply (PATCH,
dry run included), POST, PUT with a resourceVersion compare-and-swap, DELETE with preconditions - and records
every request. Pure logic only: the local-cluster tests remain the proof against a real kube-apiserver."""
import copy
import itertools
import json
import time

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError

# group-version -> kind -> (plural, namespaced)
RESOURCES = {
    "v1": {"Namespace": ("namespaces", False), "ConfigMap": ("configmaps", True), "Pod": ("pods", True),
           "Service": ("services", True), "Secret": ("secrets", True), "Node": ("nodes", False),
           "ServiceAccount": ("serviceaccounts", True)},
    "apps/v1": {"Deployment": ("deployments", True), "StatefulSet": ("statefulsets", True)},
    "discovery.k8s.io/v1": {"EndpointSlice": ("endpointslices", True)},
    "batch/v1": {"Job": ("jobs", True)},
    "coordination.k8s.io/v1": {"Lease": ("leases", True)},
    "leaderworkerset.x-k8s.io/v1": {"LeaderWorkerSet": ("leaderworkersets", True)},
    "disaggregatedset.x-k8s.io/v1": {"DisaggregatedSet": ("disaggregatedsets", True)},
    "apiextensions.k8s.io/v1": {"CustomResourceDefinition": ("customresourcedefinitions", False)},
    "inference.networking.k8s.io/v1": {"InferencePool": ("inferencepools", True)},
    "gateway.networking.k8s.io/v1": {"Gateway": ("gateways", True), "HTTPRoute": ("httproutes", True)},
}


def _partial(answer):
    """What the API server sends for Accept ...;as=PartialObjectMetadata(List): the metadata alone."""
    if answer.get("kind") == "List":
        return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "items": [_partial(item) for item in answer["items"]] or None}   # as the API server does
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": answer["metadata"]}


def stamp(now=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now or time.time()))


def path_of(obj):
    api, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
    plural, namespaced = RESOURCES[api][kind]
    base = "/api/v1" if api == "v1" else "/apis/" + api
    if namespaced:
        base += "/namespaces/%s" % meta["namespace"]
    return "%s/%s/%s" % (base, plural, meta["name"])


def status(code, reason, message):
    return K8sError.from_response(code, json.dumps({"kind": "Status", "code": code, "reason": reason,
                                                    "message": message}))


class FakeApi:
    """The transport: `request()` as module_utils.kubeconfig.Connection has it."""

    def __init__(self, served=RESOURCES):
        self.served = served
        self.objects = {}                # path -> object
        self.log = []                    # (method, path, query) of every request
        self.versions = itertools.count(1)
        self.on_apply = []               # callbacks(obj): a stand-in controller reacting to real applies
        self.fail = {}                   # (method, path) -> K8sError to raise once
        self.logs = {}                   # (namespace, pod) -> log text
        self.proxied = {}                # API server proxy path -> answer text (else 503: no endpoint answers)

    @property
    def requests(self):
        return len(self.log)

    def writes(self):
        return [(m, p) for m, p, q in self.log if m != "GET" and "dryRun" not in q]

    # --- seeding -------------------------------------------------------------------------------------
    def put(self, obj):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("creationTimestamp", stamp())
        meta["resourceVersion"] = str(next(self.versions))
        meta.setdefault("generation", 1)
        self.objects[path_of(obj)] = obj
        return obj

    # --- the transport -------------------------------------------------------------------------------
    def request(self, method, path, body=None, query=None, content_type="application/json", raw=False,
                timeout=None, accept="application/json"):
        query = dict(query or {})
        self.log.append((method, path, query))
        if (method, path) in self.fail:
            raise self.fail.pop((method, path))
        if method == "GET" and accept.startswith("application/json;as=PartialObjectMetadata"):
            return _partial(self._get(path, query))
        if "/proxy/" in path:
            if path in self.proxied:
                return self.proxied[path]
            raise status(503, "ServiceUnavailable", "error trying to reach service: connection refused")
        if method == "GET":
            return self._get(path, query)
        if method == "PATCH" and path.endswith("/scale"):   # a merge patch of spec.replicas
            target = path[:-len("/scale")]
            if target not in self.objects:
                raise status(404, "NotFound", "%s not found" % target)
            return self._apply(target, {"spec": {"replicas": body["spec"]["replicas"]}}, query)
        if method == "PATCH":
            return self._apply(path, body, query)
        if method == "POST" and path.endswith("/eviction"):
            return self._delete(path[:-len("/eviction")], None, {})
        if method == "POST":
            return self._create(path, body)
        if method == "PUT":
            return self._replace(path, body)
        if method == "DELETE":
            return self._delete(path, body, query)
        raise AssertionError("verb %s not handled by the fake" % method)

    def _discovery(self, path):
        api = "v1" if path == "/api/v1" else path[len("/apis/"):]
        if api not in self.served:
            raise status(404, "NotFound", "the server could not find the requested resource")
        return {"resources": [{"kind": k, "name": plural, "namespaced": ns}
                              for k, (plural, ns) in self.served[api].items()]}

    def _get(self, path, query):
        if path == "/version":
            return {"major": "1", "minor": "36", "gitVersion": "v1.36.3"}
        if path == "/api/v1" or path.count("/") == 3 and path.startswith("/apis/"):
            return self._discovery(path)
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        if path.endswith("/log"):
            parts = path.split("/")
            return self.logs[(parts[4], parts[6])]
        listed = [o for p, o in sorted(self.objects.items())
                  if path in (p.rsplit("/", 1)[0], _without_namespace(p))]
        if listed or self._is_collection(path):
            wanted = dict(kv.split("=", 1) for kv in query.get("labelSelector", "").split(",") if kv)
            fields = dict(kv.split("=", 1) for kv in query.get("fieldSelector", "").split(",") if kv)
            items = [copy.deepcopy(o) for o in listed
                     if all(o["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
                     and all(_field(o, k) == v for k, v in fields.items())]
            return {"kind": "List", "items": items}
        raise status(404, "NotFound", "%s not found" % path.rsplit("/", 1)[-1])

    def _is_collection(self, path):
        last = path.rsplit("/", 1)[-1]
        return any(last == plural for kinds in self.served.values() for plural, dummy in kinds.values())

    def _apply(self, path, body, query):
        manager = query.get("fieldManager", "")
        before = self.objects.get(path)
        after = copy.deepcopy(before) if before else {"metadata": {}}
        for key, value in body.items():
            if key == "metadata":
                for mkey in ("labels", "annotations"):
                    if mkey in value:   # a merge patch's null removes the key
                        merged = dict(after["metadata"].get(mkey, {}), **value[mkey])
                        after["metadata"][mkey] = {k: v for k, v in merged.items() if v is not None}
                after["metadata"].update({k: v for k, v in value.items() if k not in ("labels", "annotations")})
            elif key == "spec" and before and isinstance(value, dict):
                after["spec"] = _merge(copy.deepcopy(before.get("spec", {})), value)
            else:
                after[key] = copy.deepcopy(value)
        if before is None or after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = (before or {}).get("metadata", {}).get("generation", 0) + 1
        fields = [m for m in after["metadata"].get("managedFields", []) if m["manager"] != manager]
        after["metadata"]["managedFields"] = fields + [{"manager": manager, "operation": "Apply", "time": stamp()}]
        if before is None:
            after["metadata"]["creationTimestamp"] = stamp()
        if "dryRun" in query:
            return after
        if before is not None and _plain(after) == _plain(before):
            return copy.deepcopy(before)
        after["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[path] = after
        for react in self.on_apply:
            react(after)
        return copy.deepcopy(after)

    def _create(self, collection, body):
        obj = copy.deepcopy(body)
        path = "%s/%s" % (collection, obj["metadata"]["name"])
        if path in self.objects:
            raise status(409, "AlreadyExists", "%s already exists" % obj["metadata"]["name"])
        return copy.deepcopy(self.put(obj))

    def _replace(self, path, body):
        live = self.objects.get(path)
        if live is None:
            raise status(404, "NotFound", "not found")
        if body["metadata"].get("resourceVersion") != live["metadata"]["resourceVersion"]:
            raise status(409, "Conflict", "the object has been modified; please apply your changes to the latest "
                                          "version and try again")
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def _delete(self, path, body, query):
        live = self.objects.get(path)
        if live is None:
            raise status(404, "NotFound", "not found")
        wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise status(409, "Conflict", "Precondition failed: ResourceVersion in precondition: %s, in object: %s"
                         % (wanted, live["metadata"]["resourceVersion"]))
        if "dryRun" not in query:
            del self.objects[path]
        return {"kind": "Status", "status": "Success"}


def _field(obj, dotted):
    """A field selector's value (spec.nodeName, metadata.name)."""
    for key in dotted.split("."):
        obj = (obj or {}).get(key)
    return obj


def _merge(base, patch):
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _plain(obj):
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    out["metadata"].pop("resourceVersion", None)
    return out


def _without_namespace(object_path):
    """The object's collection path without its namespace: what a list across all namespaces asks for."""
    parts = object_path.rsplit("/", 1)[0].split("/")
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        i = parts.index("namespaces")
        return "/".join(parts[:i] + parts[i + 2:])
    return None
