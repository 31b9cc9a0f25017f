"""ClusterApi, our seam to the API server, against a real HTTP server on
loopback that answers as the API server does when it refuses a child: the
error reaches the reconcile with the API server's status and message."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import kubernetes
import pytest

from podsup import names
from podsup_operator.apply import APPLY_CONTENT_TYPE, ClusterApi
from podsup_operator.reconcile import describe_error

INVALID = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
           "message": 'Deployment.apps "jobs" is invalid: spec.template.spec.containers[0].image: Required value'}
FORBIDDEN = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
             "message": 'poddisruptionbudgets.policy "jobs" is forbidden: User "system:serviceaccount:x:op" cannot '
                        'patch resource "poddisruptionbudgets" in API group "policy" in the namespace "prod"'}


class Server:
    """Answers every PATCH with ``answer`` (status, body) and records requests."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict] = (200, {})
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                        "body": json.loads(body or b"{}")})
                status, payload = server.answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def api(server: Server) -> Iterator[ClusterApi]:
    configuration = kubernetes.client.Configuration()
    configuration.host = server.url
    with kubernetes.client.ApiClient(configuration) as client:
        yield ClusterApi(client)


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "jobs", "namespace": "prod"},
              "spec": {"template": {"spec": {"containers": [{"name": "worker"}]}}}}


@pytest.mark.parametrize("status,body", [(422, INVALID), (403, FORBIDDEN)], ids=["invalid", "forbidden"])
def test_a_refused_apply_raises_with_the_api_servers_status_and_message(server, api, status, body):
    server.answer = (status, body)
    with pytest.raises(kubernetes.client.ApiException) as info:
        api.apply(DEPLOYMENT)
    assert info.value.status == status
    assert describe_error(info.value) == f"{status} {body['message']}"
    request = server.requests[-1]
    assert request["path"].startswith("/apis/apps/v1/namespaces/prod/deployments/jobs?")
    assert f"fieldManager={names.FIELD_MANAGER}" in request["path"] and "force=true" in request["path"]
    assert request["content_type"] == APPLY_CONTENT_TYPE


def test_an_accepted_apply_returns_the_object(server, api):
    server.answer = (200, {**DEPLOYMENT, "status": {}})
    assert api.apply(DEPLOYMENT)["kind"] == "Deployment"
