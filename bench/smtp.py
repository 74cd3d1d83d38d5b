"""SMTP submission: messages/s accepted with 8 concurrent smtplib clients on loopback (small messages,
one recipient each), against `manage.py smtpd` running as its own process, then with `--processes 2`: two
server processes sharing the port, the kernel spreading connections among them (one process is one core's
worth of Python, as one gunicorn worker is for HTTP)."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
MESSAGES_PER_CLIENT = 150
# (server processes, subaccounts the clients send as): one subaccount's sends all lock its two Usage rows
# until they commit (the exactness of its limits), so the last case spreads the clients over eight.
CASES = ((1, 1), (2, 1), (2, CLIENTS))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def bench_account():
    from accounts.models import Account
    from mailing.keys import create_api_key

    master, owner = common.make_master("SMTP Agency", "smtp-agency")
    for n in range(CLIENTS):
        Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id=f"smtp-shop-{n}",
                               name=f"SMTP Shop {n}", contact_email="smtp@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="smtp-shop",
                                     name="SMTP Shop", contact_email="smtp@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    _, secret = create_api_key(actor=owner, account=master, label="bench")
    return master, secret


def run_clients(
    ports: list[int], credentials: tuple[str, str] | None, subaccounts: int = 1
) -> tuple[int, float, list[str]]:
    """CLIENTS smtplib clients at once, each sending MESSAGES_PER_CLIENT one after another on its own
    connection, to the `ports` in turn, as one subaccount or each as its own of `subaccounts`:
    (messages accepted, seconds, errors)."""
    counts, errors = [0] * CLIENTS, []

    def client(index: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", ports[index % len(ports)], timeout=30) as smtp:
                if credentials:
                    smtp.login(*credentials)
                for n in range(MESSAGES_PER_CLIENT):
                    message = EmailMessage()
                    message["From"] = "news@shop.example"
                    message["To"] = f"customer{index}-{n}@example.test"
                    message["Subject"] = "Your receipt"
                    message["X-MC-Subaccount"] = (
                        "smtp-shop" if subaccounts == 1 else f"smtp-shop-{index % subaccounts}"
                    )
                    message.set_content("Thanks for your order.")
                    smtp.send_message(message)
                    counts[index] += 1
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - started, errors


def sink_floor() -> float:
    """The same clients against aiosmtpd's Sink in its own process: SMTP on loopback with nothing
    stored, the most an aiosmtpd server takes from them on this machine."""
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port)
        sent, seconds, errors = run_clients([port], None)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    assert not errors, errors[:3]
    return sent / seconds


def _wait_for_listeners(port: int, count: int, seconds: float = 30) -> None:
    """Until `count` sockets listen on the port (the siblings of `--processes` start one by one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if len(listening.splitlines()) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {count} processes listen on {port}")


def serve_and_send(
    processes: int, credentials: tuple[str, str], subaccounts: int = 1
) -> tuple[int, float, list[str]]:
    """`manage.py smtpd --processes N`: N server processes sharing one port, and the clients."""
    port = free_port()
    # As it runs in production: database connections kept by the worker threads (the API benchmark's
    # gunicorn gets the same), not opened for every message.
    env = {**os.environ, "REQUIRE_VERIFIED_SENDING_DOMAIN": "false", "SMTP_MAX_CONNECTIONS_PER_IP": "100",
           "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "manage.py", "smtpd", "--port", str(port), "--processes", str(processes)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        _wait_for_listeners(port, processes)
        return run_clients([port], credentials, subaccounts)
    finally:
        server.terminate()
        server.wait(timeout=20)
        common.purge_redis()


def main() -> None:
    common.progress("smtp: resetting the database")
    common.reset_database()
    master, secret = bench_account()
    runs = {}
    for processes, subaccounts in CASES:
        common.progress(
            f"smtp: {CLIENTS} clients as {subaccounts} subaccount(s), {processes} server process(es)"
        )
        runs[processes, subaccounts] = serve_and_send(processes, (master.public_id, secret), subaccounts)
    common.progress("smtp: the sink's own rate")
    floor = sink_floor()
    print("## SMTP submission (`bench/smtp.py`)\n")
    print(
        __doc__.strip().replace("\n", " ")
        + " Each accepted message is stored and enqueued (Redis) before the 250. The floor: the same"
        " clients against aiosmtpd's Sink in its own process (SMTP alone, nothing stored), in the same run.\n"
    )
    rows = []
    for (processes, subaccounts), (sent, seconds, errors) in runs.items():
        rate = sent / seconds
        common.aim(f"SMTP ingress, {CLIENTS} clients as {subaccounts} subaccount(s), {processes} server process(es)",
                   f"{rate:,.0f} messages/s",
                   "≥ 300 messages/s", rate >= 300 and not errors, floor=f"{floor:,.0f} messages/s (sink)")  # fmt: skip
        rows.append([CLIENTS, subaccounts, processes, sent, f"{seconds:.1f}", f"{rate:,.0f}", f"{floor:,.0f}",
                     f"{rate / floor:.2f}", "≥ 300 messages/s", len(errors)])  # fmt: skip
        if errors:
            print(f"Errors with {processes} process(es): " + "; ".join(errors[:3]) + "\n")
    print(common.table(["clients", "subaccounts", "server processes", "messages", "seconds", "messages/s",
                        "sink floor (messages/s)", "ratio", "aim", "errors"], rows))  # fmt: skip
