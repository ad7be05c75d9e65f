# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The objects of k8s_objects' `src`: YAML files, directories of them and URLs, read with libyaml (CRD files kept
parsed, yamlout.load_schema_file)."""
from __future__ import annotations

import os
import re
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput

URL = re.compile(r"^https?://")


def read(sources, timeout=60):
    """The objects of every file, directory and URL of `sources`, in order."""
    objects = []
    for source in sources:
        if URL.match(source):
            objects += yamlout.load_schema_bytes(fetch(source, timeout))
            continue
        path = os.path.expanduser(os.path.expandvars(source))   # as an option of type path would be
        try:
            files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith((".yaml", ".yml"))) \
                if os.path.isdir(path) else [path]
            for name in files:
                objects += yamlout.load_schema_file(name)
        except (OSError, yamlout.YAMLError) as exc:
            raise InvalidInput("cannot read src: %s" % exc) from exc
    return objects


def fetch(url, timeout):
    try:
        return open_url(url, timeout=timeout, http_agent="llmd.wide_ep").read()
    except (HTTPError, URLError, UrlsConnectionError, OSError, ValueError) as exc:
        raise InvalidInput("cannot fetch src %s: %s" % (url, exc)) from exc
