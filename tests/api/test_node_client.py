"""The official Node client (@mailchimp/mailchimp_transactional, from npm with the committed lock),
driven through a small script against a live server: templates, sendTemplate with merge vars, scheduling."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mailing.models import Message

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("node_client.js")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which("node") or not (ROOT / "node_modules/@mailchimp/mailchimp_transactional").exists(),
        reason="needs Node and `npm ci` (make install-dev does both)",
    ),
]


def test_the_official_node_client_runs_templates_merge_and_scheduling(live_server, master_key):
    _, key = master_key
    env = os.environ | {"MANDRILL_KEY": key, "MANDRILL_BASE": f"{live_server.url}/api/1.3"}
    result = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ping"] == "PONG!"
    assert (out["added"]["slug"], out["added"]["publish_code"]) == ("node-welcome", None)
    assert out["published"]["publish_code"] == "<p>Hi *|FNAME|*</p>"
    assert out["rendered"] == {"html": "<p>Hi Ana</p>"}
    [sent] = out["sent"]
    assert sent["status"] == "queued" and Message.objects.get(public_id=sent["_id"]).subject == "Welcome Ana"
    assert out["scheduled"][0]["status"] == "scheduled"
    assert [row["_id"] for row in out["listed"]] == [out["scheduled"][0]["_id"]]
    assert out["cancelled"]["_id"] == out["scheduled"][0]["_id"]
    assert out["missing"] == {"status": 500, "data": {"status": "error", "code": 5, "name": "Unknown_Template",
                                                      "message": 'No such template "nope"'}}  # fmt: skip
