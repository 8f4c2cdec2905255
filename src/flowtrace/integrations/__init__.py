"""Integrations with third-party libraries, one module per library, each behind an extra.

Importing this package imports no third-party library; each module raises
:class:`~flowtrace.errors.MissingExtraError` naming the extra when its library is absent.

* :mod:`~flowtrace.integrations.psycopg` -- tenant settings in every transaction (``postgres``)
* :mod:`~flowtrace.integrations.sqlalchemy` -- the same for SQLAlchemy 2 (``sqlalchemy``)
* :mod:`~flowtrace.integrations.dbcheck` -- RLS and role checks for start-up and CI
* :mod:`~flowtrace.integrations.routing` -- database per tenant, bounded pools
* :mod:`~flowtrace.integrations.migrations` -- one migration to every tenant schema
* :mod:`~flowtrace.integrations.dbisolation` -- database mode for isolation tests
* :mod:`~flowtrace.integrations.redis` -- tenant-scoped cache keys (``redis``)
* :mod:`~flowtrace.integrations.pytest_plugin` -- the ``flowtrace_db_check`` fixture
* :mod:`~flowtrace.integrations.asgi` / :mod:`~flowtrace.integrations.wsgi` -- web
  middleware: context from verified claims, refusals answered and audited (no extra);
  shared parts in :mod:`~flowtrace.integrations.web`
* :mod:`~flowtrace.integrations.httpx` / :mod:`~flowtrace.integrations.requests` -- the flow
  context on every outgoing request, identity only to the trust domain (``httpx``,
  ``requests``)
* :mod:`~flowtrace.integrations.aio_pika` / :mod:`~flowtrace.integrations.pika` -- publish
  with the flow context, dead-letter refused messages intact (``aio-pika``, ``rabbitmq``)
* :mod:`~flowtrace.integrations.redis_streams` -- the same for Redis Streams consumer
  groups (``redis``)
* :mod:`~flowtrace.integrations.nats` -- the same for NATS JetStream (``nats``)
* :mod:`~flowtrace.integrations.mqtt` -- the same for MQTT 5 user properties (``mqtt``)
* :mod:`~flowtrace.integrations.kafka` -- header helpers for confluent-kafka and aiokafka
  message shapes (no extra: nothing of Kafka is imported)

The policy they share (which settings carry the tenant, the bypass, identifier rules)
lives in :mod:`flowtrace.integrations.tenancy`. Guides: docs/database.md,
docs/integrations.md.
"""

__all__: list[str] = []
