"""With the cache down, the API still sends: its rate limits open, and the accept needs only the database."""

import json

import pytest

from mailing.models import Message

pytestmark = pytest.mark.django_db


def test_the_api_accepts_mail_while_the_cache_is_down(client, subaccount_key, dead_cache):
    _, key = subaccount_key
    body = {"key": key, "message": {"from_email": "shop@acme.test", "subject": "Hi", "text": "Hello",
                                    "to": [{"email": "a@example.test"}]}}  # fmt: skip
    response = client.post("/api/1.0/messages/send.json", json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()] == ["queued"]
    assert Message.objects.filter(to_email="a@example.test").exists()
