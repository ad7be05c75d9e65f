# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The collection's one import of PyYAML, and YAML for people: multi-line strings (vLLM launch scripts, EPP config)
as literal blocks, so exports read like the guide's manifests and a --diff shows the one changed line of a script,
not a re-folded string. The modules run on the controller, where ansible-core brings PyYAML; without it they fail
with Ansible's missing-library message instead of an import error."""
from __future__ import annotations

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
    return _yaml().safe_load(text)


def load_all(stream):
    """Every document of a YAML stream, with libyaml's loader where PyYAML has it (CRD files run to megabytes)."""
    lib = _yaml()
    return [doc for doc in lib.load_all(stream, Loader=getattr(lib, "CSafeLoader", lib.SafeLoader)) if doc]
