"""The one error shape of every Kubernetes call (module_utils/k8s/errors.py)."""
import json

from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s.errors import K8sError


def test_an_api_status_gives_its_message_reason_and_code():
    body = json.dumps({"kind": "Status", "code": 409, "reason": "Conflict", "message": "the object has been modified"})
    err = K8sError.from_response(409, body.encode())
    assert str(err) == "the object has been modified (HTTP 409 Conflict)"
    assert (err.status, err.reason, err.body) == (409, "Conflict", body)


def test_a_non_status_answer_is_shown_short_and_on_one_line():
    err = K8sError.from_response(502, "<html>\n  bad   gateway\n</html>" + "x" * 500)
    assert str(err).startswith("HTTP 502: <html> bad gateway </html>") and len(str(err)) < 320
    assert err.reason is None


def test_within_says_what_was_being_done_and_keeps_the_status():
    err = K8sError("not found (HTTP 404 NotFound)", 404, "NotFound").within("reading Lease x")
    assert str(err) == "reading Lease x: not found (HTTP 404 NotFound)" and err.status == 404
