# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Every version comparison of the collection, through `packaging` (an ansible-core dependency): a pre-release
sorts below its release (Istio 1.28.1-beta.0 < 1.28.1, v1.3.0-rc.1 < v1.3.0), a leading `v` and build metadata
are accepted, and a vendor's build suffix (Kubernetes v1.30.5-gke.1014001, v1.29.3+k3s1) is that release."""
from __future__ import annotations

import re

_LOOSE = re.compile(r"v?(\d+(?:\.\d+)*)(?:[-+.]?(.*))?$")
_PRE = re.compile(r"(?i)(a|b|c|rc|alpha|beta|pre|preview|dev)[-_.]?\d*(?:[-_.+].*)?$")


def parse(text):
    """A Version of a version string, or None when it holds none (an empty string, 'latest', a digest)."""
    from packaging.version import InvalidVersion, Version  # ansible-core's own dependency, on the controller

    text = str(text or "").strip()
    try:
        return Version(text)
    except InvalidVersion:
        pass
    match = _LOOSE.match(text)
    if not match:
        return None
    release, suffix = match.group(1), match.group(2) or ""
    if _PRE.match(suffix):  # e.g. 1.2.3-beta.0.1: the pre-release part packaging reads, the rest dropped
        pre = re.match(r"(?i)[a-z]+[-_.]?\d*", suffix).group(0)
        try:
            return Version("%s-%s" % (release, pre))
        except InvalidVersion:
            pass
    return Version(release)  # a vendor's build of that release


def at_least(have, minimum):
    """have >= minimum, both version strings; False when `have` holds no version."""
    got = parse(have)
    return got is not None and got >= parse(minimum)


def same(first, second):
    """Both strings name the same version (v1.3.0 and 1.3.0 do), or neither holds one."""
    return parse(first) == parse(second)


def minor(text):
    """(major, minor) of a version string, or None."""
    got = parse(text)
    return (got.major, got.minor) if got is not None else None


def newer(first, second):
    """first > second, both version strings; False when either holds no version."""
    a, b = parse(first), parse(second)
    return a is not None and b is not None and a > b
