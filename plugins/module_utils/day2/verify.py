# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The verify role in one call: the stack's checks (stack.status), then the smoke request (smoke.request) when
asked - one report of both, each line also on the progress lines, and one failure naming every problem."""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.day2 import smoke, stack
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import WideEPError
from ansible_collections.llmd.wide_ep.plugins.module_utils.progress import Progress

NOTHING_DEPLOYED = ("check mode: nothing was deployed, so there is nothing to verify (run playbooks/verify.yml to "
                    "check a live stack)")
SMOKE_SKIPPED = "smoke request skipped"


def verify(client, helm, p, check_mode):
    """stack.status, then with p["smoke"] (send, endpoint, prompt, max_tokens, timeout) smoke.request, or a line
    saying it was skipped; without p["smoke"] (an upgrade gate) the stack's checks alone. A check run of the play
    that deploys the stack (p["deployed_by_this_play"]) has nothing to verify."""
    progress = Progress()
    if check_mode and p["deployed_by_this_play"]:
        progress.live(NOTHING_DEPLOYED)
        return {"changed": False, "msg": NOTHING_DEPLOYED, "report": [NOTHING_DEPLOYED], "problems": []}
    failed = []   # what failed, after the report: the stack check's problems, the smoke request's verdict
    try:
        result = stack.status(client, helm, p, check_mode)
    except WideEPError as exc:   # the smoke request still says what it sees
        result = dict(exc.extra, changed=bool(exc.extra.get("repaired")))
        result.setdefault("report", [str(exc)])
        result["problems"] = exc.extra.get("problems") or [str(exc)]
        failed += ["failed:"] + result["problems"]
    report = list(result["report"])
    sent = bool(p["smoke"] and p["smoke"]["send"])
    if p["smoke"] and not sent:
        report.append(SMOKE_SKIPPED)
    if sent:
        try:
            result["smoke"] = smoke.request(client, dict(p["smoke"], refs=p["refs"], expected=p["expected"]))
        except WideEPError as exc:
            result["smoke"] = dict(exc.extra, failed=True, msg=str(exc))
            result["problems"] = result.get("problems", []) + [str(exc)]
            failed.append("smoke request failed: %s" % exc)
        report += result["smoke"].get("report") or [result["smoke"]["msg"]]
    for line in report + failed:
        progress.live(line)
    result["report"] = report
    if failed:
        raise WideEPError("\n".join(report + failed), **result)
    return dict(result, msg="verified: every check passed%s" % (
        ", and a completion came back through the gateway" if sent else ""))
