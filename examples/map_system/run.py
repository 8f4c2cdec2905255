"""Run the three-service system on real RabbitMQ and PostgreSQL, build its data-flow map
from the spans it exported over OTLP/HTTP, and check it against the declared map.

    python examples/map_system/run.py [WORK_DIR]

Needs RabbitMQ (guest/guest) and PostgreSQL (trust auth, db ``test``) on 127.0.0.1.
What it shows (and asserts):

1. orders flow api -> RabbitMQ -> worker -> PostgreSQL and -> the payment processor; the
   observed map matches ``declared.toml``: ``flowtrace map check`` passes;
2. an eu tenant's order to the ``us`` queue is refused by the residency guard before
   anything is published (the queue stays empty), and the refusal is in the audit log;
3. a newsletter signup publishes the email to a new, undeclared queue: ``map check`` now
   fails, naming that flow and the trace id of the request that did it.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pika  # noqa: E402
import psycopg  # noqa: E402
from receiver import Receiver  # noqa: E402

from flowtrace import audit  # noqa: E402
from flowtrace import map as ftmap  # noqa: E402
from flowtrace.cli import main as flowtrace_cli  # noqa: E402


def _start(script: str, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{script} did not start (exit {proc.wait()}): {line!r}")
    return proc, line.split(" ", 1)[1].strip() if " " in line else ""


def _post(port: str, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/orders",
        data=json.dumps(order).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def run(work: Path) -> dict[str, Any]:
    """Run the scenario in ``work``; returns what happened (the test asserts on it)."""
    run_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True, exist_ok=True)
    template = string.Template((HERE / "declared.toml").read_text())
    declared_path = work / "declared.toml"
    declared_path.write_text(template.safe_substitute(RUN=run_id))
    queues = [f"orders-eu-{run_id}", f"orders-us-{run_id}", f"marketing-{run_id}"]
    table = f"orders_{run_id.replace('-', '_')}"

    receiver = Receiver(work)
    receiver.start()
    env = {
        **os.environ,
        "MAP_EXAMPLE_RUN": run_id,
        "MAP_EXAMPLE_DIR": str(work),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    broker = pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1", port=5672, credentials=pika.PlainCredentials("guest", "guest")
        )
    )
    channel = broker.channel()
    for queue in queues:
        channel.queue_declare(queue)
    db = psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True)
    db.execute(f"CREATE TABLE {table} (order_id text PRIMARY KEY, email text, card text)")
    procs: list[subprocess.Popen[str]] = []
    result: dict[str, Any] = {"run": run_id, "work": str(work)}
    try:
        psp, psp_port = _start("psp.py", env)
        procs.append(psp)
        worker, _ = _start("worker.py", env, f"http://127.0.0.1:{psp_port}/charges")
        procs.append(worker)
        api, api_port = _start("api.py", env)
        procs.append(api)

        # 1. normal orders from two eu tenants
        for number, tenant in enumerate(("acme", "globex", "acme"), 1):
            status, _ = _post(
                api_port,
                {
                    "order_id": f"o-{number}",
                    "tenant": tenant,
                    "user": f"u-{number}",
                    "region": "eu",
                    "email": f"buyer{number}@example.com",
                    "card": "4111111111111111",
                    "amount": 42,
                },
            )
            assert status == 202, status
        receiver.wait_for("POST", 3)  # the worker charged all three
        receiver.wait_for("orders process", 3)
        receiver.wait_for(f"orders-eu-{run_id} publish", 3)
        shutil.copy(receiver.proto_file, work / "phase1.pb")
        declared = ftmap.load_declared(declared_path)
        first = ftmap.build([work / "phase1.pb"])
        result["phase1"] = ftmap.check(first, declared)
        result["phase1_cli"] = flowtrace_cli(
            ["map", "check", "--declared", str(declared_path), "--from", str(work / "phase1.pb")]
        )

        # 2. an eu tenant asks for fulfilment from the us queue: refused, audited
        status, body = _post(
            api_port,
            {
                "order_id": "o-us",
                "tenant": "acme",
                "user": "u-9",
                "region": "eu",
                "email": "eu-buyer@example.com",
                "card": "4111111111111111",
                "amount": 7,
                "ship_from": "us",
            },
        )
        result["refused"] = (status, body)
        result["us_queue_messages"] = channel.queue_declare(
            f"orders-us-{run_id}", passive=True
        ).method.message_count
        result["audit"] = [
            e.to_dict()
            for e in audit.query(work / "audit-orders-api.jsonl", action=ftmap.RESIDENCY_ACTION)
        ]

        # 3. one newsletter signup: the email goes to a queue nobody declared
        status, body = _post(
            api_port,
            {
                "order_id": "o-4",
                "tenant": "globex",
                "user": "u-4",
                "region": "eu",
                "email": "news@example.com",
                "card": "4111111111111111",
                "amount": 3,
                "newsletter": True,
            },
        )
        assert status == 202, status
        result["newsletter_trace"] = body["trace_id"]
        receiver.wait_for("POST", 4)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        receiver.shutdown()
        receiver.server_close()
        for queue in queues:
            channel.queue_delete(queue)
        broker.close()
        result["stored_cards"] = [r[0] for r in db.execute(f"SELECT card FROM {table}")]
        db.execute(f"DROP TABLE IF EXISTS {table}")
        db.close()

    declared = ftmap.load_declared(declared_path)
    observed = ftmap.build([receiver.proto_file])
    declared.apply_regions(observed)
    result["observed"] = observed
    result["observed_json"] = ftmap.build([receiver.json_file]).to_dict()
    result["final"] = report = ftmap.check(observed, declared)
    result["final_cli"] = flowtrace_cli(
        ["map", "check", "--declared", str(declared_path), "--from", str(receiver.proto_file)]
    )
    (work / "report.html").write_text(
        ftmap.render(observed, "html", findings=report.findings, declared=declared)
    )
    return result


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="map-"))
    result = run(work)
    assert result["phase1"].ok
    assert result["phase1_cli"] == 0
    assert result["refused"][0] == 451
    assert result["us_queue_messages"] == 0
    assert result["audit"][0]["outcome"] == "denied"
    assert result["final_cli"] == 1
    print(f"phase 1: observed map matches the declared map ({work / 'declared.toml'})")
    print(f"refused: {result['refused'][1]['error']}")
    for finding in result["final"].failing:
        print(f"finding: {finding}")
    print(f"report: {work / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
