"""Attribute names the map reads and writes (strings, so the map only depends on specs).

The names come from docs/spec/attributes.md, docs/spec/lineage.md,
docs/spec/scrubbing-attributes.md, the OpenTelemetry semantic conventions, and the map's
own attributes specified in docs/spec/map.md.
"""

from __future__ import annotations

from typing import Final

# OpenTelemetry semantic conventions (resource and span attributes).
SERVICE_NAME: Final = "service.name"
PEER_SERVICE: Final = "peer.service"
DB_SYSTEM: Final = "db.system"
DB_NAMESPACE: Final = "db.namespace"
DB_NAME_OLD: Final = "db.name"  # pre-1.26 spelling, still emitted by many instrumentations
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_DESTINATION: Final = "messaging.destination.name"
HTTP_METHOD: Final = "http.request.method"
HTTP_METHOD_OLD: Final = "http.method"
URL_FULL: Final = "url.full"
HTTP_URL_OLD: Final = "http.url"

# flowtrace flow context (docs/spec/attributes.md).
TENANT: Final = "flowtrace.tenant"
PURPOSE: Final = "flowtrace.purpose"
LEGAL_BASIS: Final = "flowtrace.legal_basis"
REGION: Final = "flowtrace.region"
SERVICE_REGION: Final = "flowtrace.service.region"

# Scrubber findings (docs/spec/scrubbing-attributes.md).
SCRUB_CATEGORIES: Final = "flowtrace.scrub.categories"

# Lineage edges (docs/spec/lineage.md).
LINEAGE_STEP: Final = "flowtrace.lineage.step"
LINEAGE_INPUTS: Final = "flowtrace.lineage.inputs"
LINEAGE_OUTPUTS: Final = "flowtrace.lineage.outputs"

# The map's own span attributes (docs/spec/map.md).
DATA_CATEGORIES: Final = "flowtrace.data.categories"
"""string[]: categories of the data this operation handed over or received.

Example::

    from flowtrace import map as ftmap

    span = ("t1", "s1", "CLIENT", {"db.system": "postgresql", "db.namespace": "shop",
            ftmap.DATA_CATEGORIES: ["pii"]}, {"service.name": "orders"}, 0)
    observed = ftmap.ObservedMap().add_all([span])
    assert observed.flow("orders", "postgresql/shop").categories == {"pii"}
"""
DATA_ENCRYPTED: Final = "flowtrace.data.encrypted"
"""string[]: the categories among them that travelled as flowtrace ciphertext.

Example::

    from flowtrace import map as ftmap

    attrs = {"db.system": "postgresql", "db.namespace": "shop",
             ftmap.DATA_CATEGORIES: ["pii", "pci"], ftmap.DATA_ENCRYPTED: ["pci"]}
    observed = ftmap.ObservedMap().add_all([("t1", "s1", "CLIENT", attrs,
                                            {"service.name": "orders"}, 0)])
    flow = observed.flow("orders", "postgresql/shop")
    assert (flow.encrypted, flow.plaintext) == ({"pci"}, {"pii"})
"""
DESTINATION_REGION: Final = "flowtrace.destination.region"
"""string: region of the destination (stamped by the residency guard).

Example::

    from flowtrace import map as ftmap

    attrs = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders",
             ftmap.DESTINATION_REGION: "eu"}
    observed = ftmap.ObservedMap().add_all([("t1", "s1", "PRODUCER", attrs,
                                            {"service.name": "shop"}, 0)])
    assert observed.nodes["rabbitmq/orders"].region == "eu"
"""

REFUSED: Final = "flowtrace.residency.refused"
"""bool: the residency guard refused this send; nothing left (docs/spec/map.md)."""

# Node kinds.
SERVICE: Final = "service"
STORE: Final = "store"
QUEUE: Final = "queue"
EXTERNAL: Final = "external"
DATASET: Final = "dataset"
KINDS: Final = (SERVICE, STORE, QUEUE, EXTERNAL, DATASET)

# Scrubber category that is not a data category.
UNCLASSIFIED: Final = "unclassified"
