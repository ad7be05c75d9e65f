# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The OK/FAIL lines of the read-only checks (stack_status, smoke_request): each check once, in order."""
from __future__ import annotations


class Checklist:
    def __init__(self):
        self.items = []

    def add(self, ok, detail, hop=None):
        """Record one check; `hop` names where on the request path it sits (smoke_request's hops)."""
        self.items.append({"hop": hop, "ok": bool(ok), "detail": detail})

    def extend(self, other):
        """Add every check of another checklist, after this one's."""
        self.items += other.items

    @property
    def report(self):
        return ["%s  %s%s" % ("OK  " if i["ok"] else "FAIL", "%-8s " % i["hop"] if i["hop"] else "", i["detail"])
                for i in self.items]

    @property
    def failed(self):
        return [i for i in self.items if not i["ok"]]

    @property
    def problems(self):
        return [i["detail"] for i in self.failed]
