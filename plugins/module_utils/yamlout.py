# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The collection's one import of PyYAML, and YAML for people: multi-line strings (vLLM launch scripts, EPP config)
as literal blocks, so exports read like the guide's manifests and a --diff shows the one changed line of a script,
not a re-folded string. The modules run on the controller, where ansible-core brings PyYAML; without it they fail
with Ansible's missing-library message instead of an import error."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

from ansible.module_utils.basic import missing_required_lib

try:
    import yaml
except ImportError:
    yaml = None
    YAMLError = ValueError
else:
    YAMLError = yaml.YAMLError


def _yaml():
    if yaml is None:
        raise ImportError(missing_required_lib("PyYAML"))
    return yaml


def _dumper():
    lib = _yaml()

    class Dumper(lib.SafeDumper):
        pass

    def literal(dumper, value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, literal)
    return Dumper


def dump(obj, sort_keys=False):
    return _yaml().dump(obj, Dumper=_dumper(), sort_keys=sort_keys, default_flow_style=False)


def safe_dump(obj, stream=None, **kwargs):
    return _yaml().safe_dump(obj, stream, **kwargs)


def safe_load(text):
    """yaml.safe_load with libyaml's loader where PyYAML has it (a kubeconfig with its certificates: 0.3 ms, not 2)."""
    lib = _yaml()
    return lib.load(text, Loader=getattr(lib, "CSafeLoader", lib.SafeLoader))


def load_all(stream):
    """Every document of a YAML stream, with libyaml's loader where PyYAML has it (CRD files run to megabytes)."""
    lib = _yaml()
    return [doc for doc in lib.load_all(stream, Loader=getattr(lib, "CSafeLoader", lib.SafeLoader)) if doc]


def cache_dir(name):
    """The folder `name` of what the collection keeps between runs, in the user's cache ($XDG_CACHE_HOME or
    ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llmd.wide_ep", name)


def parsed_dir():
    """Where parsed schema files are kept between runs."""
    return cache_dir("parsed-yaml")


def load_schema_file(path):
    """Every document of a YAML file. A file of CustomResourceDefinitions only - public schemas, megabytes that
    every run reads again (libyaml takes ~0.1 s for the Gateway API, inference and Istio CRDs, JSON 4 ms) - is kept
    parsed as JSON in parsed_dir(), keyed by the digest of its bytes, so an edited file is parsed again. Any other
    file (a Secret, say) is never written anywhere."""
    with open(path, "rb") as fh:
        return load_schema_bytes(fh.read())


def load_schema_bytes(raw):
    """load_schema_file of the bytes of a file (or of a download)."""
    cached = os.path.join(parsed_dir(), hashlib.sha256(raw).hexdigest() + ".json")
    try:
        with open(cached) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        pass
    docs = load_all(raw)
    if docs and all(isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition" for d in docs):
        _keep(cached, docs)
    return docs


def _keep(cached, docs):
    try:
        text = json.dumps(docs)
        if json.loads(text) != docs:           # only what JSON keeps as it is (no dates, no non-string keys)
            return
    except (TypeError, ValueError):
        return
    keep_text(cached, text)


def keep_text(path, text):
    """Write `text` to `path` whole (a temporary file renamed), or not at all: a read-only home is read again
    next time."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
