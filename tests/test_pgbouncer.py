"""Behind PgBouncer in transaction mode (docs/scaling.md): with DATABASE_PGBOUNCER=true the product sends
through a real PgBouncer, its accept path (quota rows locked, messages stored) and a chunked iterator
included, with server-side cursors and prepared statements off."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import IN_CI, free_port, requires_postgres

ROOT = Path(__file__).resolve().parent.parent
PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)

pytestmark = [
    requires_postgres(),
    pytest.mark.skipif(not PGBOUNCER and not IN_CI, reason="needs pgbouncer (apt-get install pgbouncer)"),
    pytest.mark.django_db(transaction=True),
]

# Run in a separate process whose settings point at PgBouncer, against the test database.
CLIENT = """
import json
import django
import psycopg
django.setup()
from django.db import connection
from django.test import Client
from accounts.models import Membership
from mailing.keys import create_api_key
from mailing.models import Message
from tests.factories import MasterFactory, MembershipFactory

assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
assert connection.settings_dict["OPTIONS"]["prepare_threshold"] is None
master = MasterFactory(public_id="bouncer")
owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
_, key = create_api_key(actor=owner, account=master, label="pgbouncer")
client = Client()
statuses = set()
for i in range(12):  # more runs of the same queries than psycopg's default prepare threshold (5)
    body = {"key": key, "message": {"from_email": "news@shop.example", "subject": f"Receipt {i}", "text": "Thanks",
            "to": [{"email": f"r{j}@example.test"} for j in range(3)]}}
    answer = client.post("/api/1.0/messages/send.json", json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    statuses |= {result["status"] for result in answer.json()}
# Another client takes a server connection between two fetches of the iterator, as under load: a
# server-side cursor left on that connection would be gone for the next fetch.
params = connection.get_connection_params()
other = psycopg.connect(host=params["host"], port=params["port"], dbname=params["dbname"], user=params["user"])
streamed = 0
for message in Message.objects.filter(account=master).iterator(chunk_size=5):
    if streamed == 0:
        other.execute("SELECT 1")  # psycopg opens a transaction and holds it
    streamed += 1
other.close()
port = connection.cursor().connection.info.port
print(json.dumps({"statuses": sorted(statuses), "streamed": streamed, "port": port}))
"""


@pytest.fixture
def pgbouncer():
    with tempfile.TemporaryDirectory() as folder:
        yield from _pgbouncer(Path(folder))


def _pgbouncer(tmp_path: Path):
    port = free_port()
    # PgBouncer drops root for the postgres user, who must read and write here (pytest's own temporary
    # folders are private to their user).
    tmp_path.chmod(0o777)
    (tmp_path / "users.txt").write_text('"postgres" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port=5432\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {tmp_path}/users.txt\n"
        f"pool_mode = transaction\ndefault_pool_size = 4\nlogfile = {tmp_path}/pgbouncer.log\n"
        f"pidfile = {tmp_path}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits,options\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (tmp_path / name).chmod(0o644)
    command = [PGBOUNCER, str(tmp_path / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        if (tmp_path / "pgbouncer.log").exists() and "listening on" in (
            tmp_path / "pgbouncer.log"
        ).read_text():
            break
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read().decode()
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_the_accept_path_and_a_chunked_iterator_work_through_pgbouncer_in_transaction_mode(pgbouncer):
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER'] or 'postgres'}@127.0.0.1:{pgbouncer}/{database['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "DJANGO_ENV"}}
    env |= {"DATABASE_URL": url, "DATABASE_PGBOUNCER": "true", "DJANGO_SETTINGS_MODULE": "reseller.settings",
            "CELERY_TASK_ALWAYS_EAGER": "false", "REQUIRE_VERIFIED_SENDING_DOMAIN": "false"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"statuses": ["queued"], "streamed": 36, "port": pgbouncer}
