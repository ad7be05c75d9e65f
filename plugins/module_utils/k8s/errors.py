# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The one error shape of every Kubernetes call."""
from __future__ import annotations

import json

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError


class K8sError(WideEPError):
    """A failed Kubernetes call. `status`: the HTTP status (None when no answer came), `reason`: the API
    Status reason (NotFound, Conflict, ...), `body`: the answer's text, for callers that show it."""

    def __init__(self, message, status=None, reason=None, body=None):
        super().__init__(message)
        self.status, self.reason, self.body = status, reason, body or ""

    @classmethod
    def from_response(cls, status, body):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return cls("%s (HTTP %s %s)" % (doc.get("message") or text[:300], status, doc.get("reason", "")),
                       status, doc.get("reason"), text)
        return cls("HTTP %s: %s" % (status, " ".join(text.split())[:300]), status, None, text)

    def within(self, what):
        """The same error, its message prefixed with what was being done."""
        return K8sError("%s: %s" % (what, self), self.status, self.reason, self.body)
