# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""YAML for people: multi-line strings (vLLM launch scripts, EPP config) as literal blocks, so exports read like
the guide's manifests and a --diff shows the one changed line of a script, not a re-folded string."""
from __future__ import annotations

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def dump(obj, sort_keys=False):
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False)
