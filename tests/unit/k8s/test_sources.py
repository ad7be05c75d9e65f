"""k8s_objects' sources (module_utils/k8s/sources.py): files, directories and URLs, read in the order given."""
import http.server
import threading

import pytest
import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput
from ansible_collections.llmd.wide_ep.plugins.module_utils.k8s import sources

CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"}}


@pytest.fixture
def served():
    """An HTTP server on loopback: /crds.yaml serves two CRDs, anything else 404."""
    body = yaml.safe_dump_all([CRD, dict(CRD, metadata={"name": "c.b"})]).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            found = self.path == "/crds.yaml"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(body if found else b"no such file")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def test_urls_files_and_directories_are_read_in_order(served, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b.yaml").write_text(yaml.safe_dump(dict(CRD, metadata={"name": "dir-b"})))
    (tmp_path / "dir" / "a.yml").write_text(yaml.safe_dump(dict(CRD, metadata={"name": "dir-a"})))
    (tmp_path / "dir" / "notes.txt").write_text("not yaml: [")
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(dict(CRD, metadata={"name": "file"})))
    monkeypatch.setenv("CRD_DIR", str(tmp_path / "dir"))
    objects = sources.read([str(tmp_path / "one.yaml"), served + "/crds.yaml", "$CRD_DIR"])
    assert [o["metadata"]["name"] for o in objects] == ["file", "a.b", "c.b", "dir-a", "dir-b"]


def test_a_url_that_fails_is_one_error_naming_it(served):
    with pytest.raises(InvalidInput, match=r"cannot fetch src %s/missing.yaml: HTTP Error 404" % served):
        sources.read([served + "/missing.yaml"])


def test_a_missing_file_is_one_error(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read src: .*No such file"):
        sources.read([str(tmp_path / "none.yaml")])
