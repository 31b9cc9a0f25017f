"""The metrics API's real Kubernetes calls (``kube.Kube``, the seam every
other test fakes) against kmock: a queue URL read from a Secret (base64
decoded; a missing Secret or key is None, not an error) and a bearer token
checked by a TokenReview the emulator answers."""
from __future__ import annotations

import asyncio
import base64

import pytest

from podsup_operator.metrics_api.kube import Kube, api_client

from .helpers import KMOCK_NS, ReviewingEmulator, post, url

pytestmark = pytest.mark.kmock(cls=ReviewingEmulator)


async def test_secret_value_is_decoded_and_missing_ones_are_none(emulator):
    secret_url = "amqp://user:s3cret@rabbit:5672/%2F?queue=jobs"
    await post(emulator, url("v1/secrets"), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "broker", "namespace": KMOCK_NS},
        "data": {"url": base64.b64encode(secret_url.encode()).decode()}})
    with api_client() as client:
        kube = Kube(client)
        # blocking calls: off the loop kmock serves on
        assert await asyncio.to_thread(kube.secret_value, KMOCK_NS, "broker", "url") == secret_url
        assert await asyncio.to_thread(kube.secret_value, KMOCK_NS, "broker", "other-key") is None
        assert await asyncio.to_thread(kube.secret_value, KMOCK_NS, "no-such-secret", "url") is None


async def test_review_token_maps_the_tokenreview_answer_to_a_user(emulator):
    def answer(req):
        good = req.data["spec"]["token"] == "hpa-token"
        user = {"username": "system:serviceaccount:kube-system:horizontal-pod-autoscaler", "uid": "u-1",
                "groups": ["system:serviceaccounts", "system:authenticated"], "extra": {"scopes": ["a", "b"]}}
        return {**req.data, "status": {"authenticated": good, **({"user": user} if good else {})}}

    emulator["post /apis/authentication.k8s.io/v1/tokenreviews"] << answer
    with api_client() as client:
        kube = Kube(client)
        user = await kube.review_token("hpa-token")
        assert user is not None and user.via == "token"
        assert user.name == "system:serviceaccount:kube-system:horizontal-pod-autoscaler" and user.uid == "u-1"
        assert "system:authenticated" in user.groups and user.extra == {"scopes": ("a", "b")}
        assert await kube.review_token("forged") is None
        sent = [r.data for r in emulator["post", emulator.resource("authentication.k8s.io/v1/tokenreviews")]]
        assert [s["spec"]["token"] for s in sent] == ["hpa-token", "forged"]
