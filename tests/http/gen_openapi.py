#!/usr/bin/env python3
"""Generates server/src/http/openapi.json, the OpenAPI 3 document that the
server serves at /api/openapi.json.

The document is written here as Python data because JSON by hand is too
verbose to review; the generated file is committed, and
tests/python/test_http_openapi.py checks that it is up to date and runs
schemathesis against a real server with it. Run from the repository root:

    python3 tests/http/gen_openapi.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "server" / "src" / "http" / "openapi.json"

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
OBJ = {"type": "object"}
ANY: dict = {}
# Booleans and integers in bodies also accept RabbitMQ's string forms.
LBOOL = {"oneOf": [BOOL, {"type": "string", "enum": ["true", "false"]}]}
LINT = {"oneOf": [INT, {"type": "string", "pattern": "^[0-9]+$"}]}
TAGS = {"oneOf": [STR, {"type": "array", "items": STR}]}
NULLABLE_STR = {"type": ["string", "null"]}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict, optional: dict | None = None, closed: bool = False) -> dict:
    props = dict(required)
    props.update(optional or {})
    o = {"type": "object", "properties": props, "required": sorted(required)}
    if closed:
        o["additionalProperties"] = False
    return o


def arr(item: dict) -> dict:
    return {"type": "array", "items": item}


RATE = obj({"rate": NUM}, {"samples": arr(obj({"sample": INT, "timestamp": INT})), "avg": NUM, "avg_rate": NUM})
MSG_FIELDS = ["publish", "publish_in", "publish_out", "confirm", "return_unroutable", "deliver",
              "deliver_no_ack", "get", "get_no_ack", "get_empty", "deliver_get", "ack", "redeliver"]
MESSAGE_STATS = obj({}, {**{f: INT for f in MSG_FIELDS}, **{f + "_details": ref("Rate") for f in MSG_FIELDS}})
# RabbitMQ 3.10's node counters (node_coarse_stats, node_persister_stats,
# connection churn), each with its _details, and the gauges with a rate.
NODE_GAUGES = ["fd_used", "sockets_used", "mem_used", "disk_free", "proc_used"]
NODE_COUNTERS = ["gc_num", "gc_bytes_reclaimed", "context_switches", "io_read_count", "io_read_bytes",
                 "io_write_count", "io_write_bytes", "io_sync_count", "io_seek_count", "io_reopen_count",
                 "mnesia_ram_tx_count", "mnesia_disk_tx_count", "msg_store_read_count", "msg_store_write_count",
                 "queue_index_write_count", "queue_index_read_count", "connection_created", "connection_closed",
                 "channel_created", "channel_closed", "queue_declared", "queue_created", "queue_deleted"]
NODE_AVERAGES = ["io_read_avg_time", "io_write_avg_time", "io_sync_avg_time", "io_seek_avg_time"]
TOTALS = {
    "messages": INT, "messages_details": ref("Rate"),
    "messages_ready": INT, "messages_ready_details": ref("Rate"),
    "messages_unacknowledged": INT, "messages_unacknowledged_details": ref("Rate"),
}

SCHEMAS = {
    "Error": obj({"error": STR, "reason": STR}),
    "Rate": RATE,
    "MessageStats": MESSAGE_STATS,
    "Queue": obj({"name": STR, "vhost": STR, "durable": BOOL, "auto_delete": BOOL, "exclusive": BOOL,
                  "arguments": OBJ, "node": STR, "state": STR, "type": STR, "consumers": INT, **TOTALS,
                  "message_bytes": INT, "message_bytes_ready": INT, "message_bytes_unacknowledged": INT,
                  "messages_paged_out": INT, "policy": NULLABLE_STR, "operator_policy": NULLABLE_STR,
                  "effective_policy_definition": OBJ},
                 {"exclusive_consumer_tag": STR, "message_stats": ref("MessageStats"),
                  "consumer_details": arr(ref("Consumer"))}),
    "Exchange": obj({"name": STR, "vhost": STR, "type": STR, "durable": BOOL, "auto_delete": BOOL,
                     "internal": BOOL, "arguments": OBJ, "policy": NULLABLE_STR},
                    {"message_stats": ref("MessageStats")}),
    "Binding": obj({"source": STR, "vhost": STR, "destination": STR, "destination_type": STR,
                    "routing_key": STR, "arguments": OBJ, "properties_key": STR}),
    "Vhost": obj({"name": STR, "description": STR, "tags": arr(STR), "tracing": BOOL, **TOTALS,
                  "cluster_state": OBJ}, {"message_stats": ref("MessageStats")}),
    "User": obj({"name": STR, "password_hash": STR, "hashing_algorithm": STR, "tags": arr(STR), "limits": OBJ}),
    "Permission": obj({"user": STR, "vhost": STR, "configure": STR, "write": STR, "read": STR}),
    "TopicPermission": obj({"user": STR, "vhost": STR, "exchange": STR, "write": STR, "read": STR}),
    "Parameter": obj({"component": STR, "vhost": STR, "name": STR, "value": ANY}),
    "GlobalParameter": obj({"name": STR, "value": ANY}),
    "Policy": obj({"vhost": STR, "name": STR, "pattern": STR, "apply-to": STR, "definition": OBJ, "priority": INT}),
    "Limits": obj({"value": OBJ}, {"vhost": STR, "user": STR}),
    "Connection": obj({"name": STR, "node": STR, "vhost": STR, "user": STR, "state": STR, "type": STR,
                       "protocol": STR, "auth_mechanism": STR, "host": STR, "port": INT, "peer_host": STR,
                       "peer_port": INT, "ssl": BOOL, "channels": INT, "channel_max": INT, "frame_max": INT,
                       "timeout": INT, "connected_at": INT, "client_properties": OBJ, "recv_oct": INT,
                       "recv_oct_details": ref("Rate"), "send_oct": INT, "send_oct_details": ref("Rate")},
                      {"ssl_protocol": NULLABLE_STR, "ssl_cipher": NULLABLE_STR, "ssl_key_exchange": NULLABLE_STR,
                       "ssl_hash": NULLABLE_STR, "peer_cert_subject": NULLABLE_STR,
                       "peer_cert_issuer": NULLABLE_STR, "peer_cert_validity": NULLABLE_STR}),
    "Channel": obj({"name": STR, "node": STR, "number": INT, "vhost": STR, "user": STR, "state": STR,
                    "connection_details": obj({"name": STR, "peer_host": STR, "peer_port": INT}),
                    "prefetch_count": INT, "global_prefetch_count": INT, "consumer_count": INT,
                    "messages_unacknowledged": INT, "confirm": BOOL, "transactional": BOOL,
                    "message_stats": ref("MessageStats")}),
    "Consumer": obj({"consumer_tag": STR, "queue": obj({"name": STR, "vhost": STR}),
                     "channel_details": obj({"name": STR, "number": INT, "connection_name": STR,
                                             "peer_host": STR, "peer_port": INT, "user": STR, "node": STR}),
                     "ack_required": BOOL, "exclusive": BOOL, "prefetch_count": INT, "active": BOOL,
                     "activity_status": STR, "arguments": OBJ}),
    "Overview": obj({"management_version": STR, "rates_mode": STR, "product_name": STR, "product_version": STR,
                     "rabbitmq_version": STR, "cluster_name": STR, "node": STR,
                     "exchange_types": arr(obj({"name": STR, "description": STR, "enabled": BOOL})),
                     "listeners": arr(obj({"node": STR, "protocol": STR, "ip_address": STR, "port": INT})),
                     "object_totals": obj({k: INT for k in ["connections", "channels", "exchanges", "queues", "consumers"]}),
                     "queue_totals": obj(TOTALS), "message_stats": ref("MessageStats"),
                     "statistics_db_event_queue": INT, "disable_stats": BOOL, "enable_queue_totals": BOOL}),
    "Node": obj({"name": STR, "type": STR, "running": BOOL, "uptime": INT, "processors": INT, "os_pid": STR,
                 "mem_alarm": BOOL, "sockets_used": INT, "disk_free_alarm": BOOL, "exchange_types": arr(OBJ),
                 "partitions": arr(STR), "cluster_links": arr(OBJ)},
                {"mem_used": INT, "mem_limit": INT, "fd_used": INT, "fd_total": INT, "sockets_total": INT,
                 "disk_free": INT, "disk_free_limit": INT,
                 "proc_used": INT, "proc_total": INT, "run_queue": INT, "mem_calculation_strategy": STR,
                 "rates_mode": STR, "auth_mechanisms": arr(obj({"name": STR, "description": STR, "enabled": BOOL})),
                 "applications": arr(obj({"name": STR, "description": STR, "version": STR})),
                 "contexts": arr(obj({"description": STR, "path": STR, "port": STR}, {"ip": STR})),
                 "log_files": arr(STR), "db_dir": STR, "config_files": arr(STR), "net_ticktime": INT,
                 "enabled_plugins": arr(STR), "ra_open_file_metrics": OBJ, "metrics_gc_queue_length": OBJ,
                 **{f + "_details": ref("Rate") for f in NODE_GAUGES},
                 **{f: INT for f in NODE_COUNTERS}, **{f + "_details": ref("Rate") for f in NODE_COUNTERS},
                 **{f: NUM for f in NODE_AVERAGES}, **{f + "_details": ref("Rate") for f in NODE_AVERAGES},
                 "queue_totals": obj({"queues": INT, "messages": INT, "messages_ready": INT,
                                      "messages_unacknowledged": INT})}),
    "Health": obj({"status": STR}, {"reason": STR}),
    "AuthAttempts": obj({"protocol": STR, "auth_attempts": INT, "auth_attempts_failed": INT,
                         "auth_attempts_succeeded": INT}),
    "AuthAttemptsBySource": obj({"remote_address": STR, "username": STR, "protocol": STR, "auth_attempts": INT,
                                 "auth_attempts_failed": INT, "auth_attempts_succeeded": INT}),
    "Message": obj({"payload_bytes": INT, "redelivered": BOOL, "exchange": STR, "routing_key": STR,
                    "message_count": INT, "properties": OBJ, "payload": STR, "payload_encoding": STR}),
}

for name in ["Queue", "Exchange", "Binding", "Vhost", "User", "Permission", "TopicPermission", "Parameter",
             "GlobalParameter", "Policy", "Limits", "Connection", "Channel", "Consumer"]:
    SCHEMAS[name + "List"] = {"anyOf": [arr(ref(name)), obj({
        "total_count": INT, "item_count": INT, "filtered_count": INT, "page": INT, "page_size": INT,
        "page_count": INT, "items": arr(ref(name))})]}

BODIES = {
    "DeclareQueue": obj({}, {"durable": LBOOL, "auto_delete": LBOOL, "exclusive": LBOOL, "arguments": OBJ,
                             "node": STR, "name": STR, "vhost": STR, "queue_type": STR}, closed=True),
    "DeclareExchange": obj({"type": STR}, {"durable": LBOOL, "auto_delete": LBOOL, "internal": LBOOL,
                                           "arguments": OBJ, "name": STR, "vhost": STR}, closed=True),
    "CreateBinding": obj({}, {"routing_key": STR, "arguments": OBJ, "source": STR, "destination": STR,
                              "destination_type": STR, "vhost": STR}, closed=True),
    "PutVhost": obj({}, {"description": STR, "tags": TAGS, "tracing": LBOOL, "default_queue_type": STR,
                         "name": STR, "vhost": STR}, closed=True),
    "PutUser": obj({}, {"password": STR, "password_hash": STR, "hashing_algorithm": STR, "tags": TAGS,
                        "name": STR, "limits": OBJ, "vhost": STR}, closed=True),
    "PutPermission": obj({"configure": STR, "write": STR, "read": STR}, {"user": STR, "vhost": STR}, closed=True),
    "PutTopicPermission": obj({"exchange": STR, "write": STR, "read": STR}, {"user": STR, "vhost": STR},
                              closed=True),
    "PutParameter": obj({"value": ANY}, {"component": STR, "vhost": STR, "name": STR}, closed=True),
    "PutPolicy": obj({"pattern": STR, "definition": OBJ}, {"priority": LINT, "apply-to": STR, "name": STR,
                                                           "vhost": STR}, closed=True),
    "PutLimit": obj({"value": LINT}, {"vhost": STR, "user": STR, "name": STR}, closed=True),
    "Publish": obj({"routing_key": STR, "payload": STR, "payload_encoding": STR, "properties": OBJ},
                   {"vhost": STR, "exchange": STR, "name": STR}, closed=True),
    "GetMessages": obj({"count": LINT, "ackmode": STR, "encoding": STR},
                       {"truncate": LINT, "vhost": STR, "queue": STR, "name": STR, "payload_file": STR}, closed=True),
    "Login": obj({"username": STR, "password": STR}, closed=True),
    "ClusterName": obj({"name": STR}, closed=True),
    "BulkDelete": obj({"users": arr(STR)}, closed=True),
    "Definitions": OBJ,
}
SCHEMAS.update(BODIES)

LIST_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": s}
    for n, s in [("page", {"type": "integer", "minimum": 1}), ("page_size", {"type": "integer", "minimum": 1}),
                 ("name", STR), ("use_regex", BOOL), ("sort", STR), ("sort_reverse", BOOL)]
]


def path_params(path: str) -> list[dict]:
    out = []
    for part in path.split("/"):
        if part.startswith("{"):
            out.append({"name": part[1:-1], "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1}})
    return out


def error(desc: str) -> dict:
    return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}


def ok(schema: dict | None, code: str = "200", desc: str = "OK") -> dict:
    if schema is None:
        return {code: {"description": desc}}
    return {code: {"description": desc, "content": {"application/json": {"schema": schema}}}}


PATHS: dict = {}


def op(method: str, path: str, summary: str, responses: dict, body: str | None = None,
       listing: bool = False, public: bool = False, extra_params: list | None = None) -> None:
    o: dict = {"summary": summary, "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", "")}
    params = path_params(path) + (LIST_PARAMS if listing else []) + (extra_params or [])
    if params:
        o["parameters"] = params
    if body:
        o["requestBody"] = {"required": False, "content": {"application/json": {"schema": ref(body)}}}
    rs = dict(responses)
    rs["400"] = error("Bad request: malformed body or parameters")
    if not public:
        rs["401"] = error("No, wrong or insufficient credentials")
    rs["404"] = error("No such object or vhost")
    o["responses"] = rs
    if public:
        o["security"] = []
    PATHS.setdefault(path, {})[method] = o


def crud(path: str, kind: str, body: str, summary: str, get: bool = True, put: bool = True, delete: bool = True,
         put_codes: tuple = ("201", "204")) -> None:
    if get:
        op("get", path, f"Show one {summary}", ok(ref(kind)))
    if put:
        r: dict = {}
        for c in put_codes:
            r.update(ok(None, c, "Created" if c == "201" else "Updated"))
        op("put", path, f"Create or update a {summary}", r, body=body)
    if delete:
        op("delete", path, f"Delete a {summary}", ok(None, "204", "Deleted"))


def listing(path: str, kind: str, summary: str) -> None:
    op("get", path, summary, ok(ref(kind + "List")), listing=True)


# Node
op("get", "/api/overview", "Node overview", ok(ref("Overview")))
op("get", "/api/cluster-name", "Cluster name", ok(obj({"name": STR})))
op("put", "/api/cluster-name", "Set the cluster name", ok(None, "204"), body="ClusterName")
op("get", "/api/nodes", "Nodes", ok(arr(ref("Node"))))
op("get", "/api/nodes/{node}", "One node", ok(ref("Node")))
op("get", "/api/auth/attempts/{node}", "Password logins per protocol", ok(arr(ref("AuthAttempts"))))
op("delete", "/api/auth/attempts/{node}", "Reset the login counts", ok(None, "204"))
op("get", "/api/auth/attempts/{node}/source", "Password logins per address and user name",
   ok(arr(ref("AuthAttemptsBySource"))))
op("delete", "/api/auth/attempts/{node}/source", "Reset the login counts", ok(None, "204"))
op("get", "/api/whoami", "The authenticated user", ok(obj({"name": STR, "tags": arr(STR)})))
op("get", "/api/extensions", "Management extensions (none)", ok(arr(OBJ)))
op("post", "/api/login", "Log in for a Bearer token",
   ok(obj({"token": STR, "name": STR, "tags": arr(STR), "expires_in": INT})), body="Login", public=True)
PATHS["/api/login"]["post"]["responses"]["401"] = error("Wrong credentials")
# Queues
listing("/api/queues", "Queue", "All queues")
listing("/api/queues/{vhost}", "Queue", "Queues of a vhost")
crud("/api/queues/{vhost}/{name}", "Queue", "DeclareQueue", "queue")
PATHS["/api/queues/{vhost}/{name}"]["delete"]["parameters"] += [
    {"name": "if-empty", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]}},
    {"name": "if-unused", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]}},
]
listing("/api/queues/{vhost}/{name}/bindings", "Binding", "Bindings of a queue")
op("delete", "/api/queues/{vhost}/{name}/contents", "Purge a queue", ok(None, "204"))
op("post", "/api/queues/{vhost}/{name}/get", "Get messages", ok(arr(ref("Message"))), body="GetMessages")
# Exchanges
listing("/api/exchanges", "Exchange", "All exchanges")
listing("/api/exchanges/{vhost}", "Exchange", "Exchanges of a vhost")
crud("/api/exchanges/{vhost}/{name}", "Exchange", "DeclareExchange", "exchange")
PATHS["/api/exchanges/{vhost}/{name}"]["delete"]["parameters"] += [
    {"name": "if-unused", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]}},
]
listing("/api/exchanges/{vhost}/{name}/bindings/source", "Binding", "Bindings from an exchange")
listing("/api/exchanges/{vhost}/{name}/bindings/destination", "Binding", "Bindings to an exchange")
op("post", "/api/exchanges/{vhost}/{name}/publish", "Publish a message", ok(obj({"routed": BOOL})), body="Publish")
# Bindings
listing("/api/bindings", "Binding", "All bindings")
listing("/api/bindings/{vhost}", "Binding", "Bindings of a vhost")
for d in ["q", "e"]:
    listing(f"/api/bindings/{{vhost}}/e/{{source}}/{d}/{{dest}}", "Binding", "Bindings between two objects")
    op("post", f"/api/bindings/{{vhost}}/e/{{source}}/{d}/{{dest}}", "Create a binding",
       ok(None, "201", "Created; Location is the properties key"), body="CreateBinding")
    crud(f"/api/bindings/{{vhost}}/e/{{source}}/{d}/{{dest}}/{{props}}", "Binding", "", "binding", put=False)
# Vhosts, users, permissions
listing("/api/vhosts", "Vhost", "Vhosts")
crud("/api/vhosts/{vhost}", "Vhost", "PutVhost", "vhost")
listing("/api/vhosts/{vhost}/permissions", "Permission", "Permissions in a vhost")
listing("/api/vhosts/{vhost}/topic-permissions", "TopicPermission", "Topic permissions in a vhost")
listing("/api/vhosts/{vhost}/connections", "Connection", "Connections to a vhost")
listing("/api/vhosts/{vhost}/channels", "Channel", "Channels in a vhost")
listing("/api/users", "User", "Users")
listing("/api/users/without-permissions", "User", "Users without any permission")
op("post", "/api/users/bulk-delete", "Delete several users", ok(None, "204"), body="BulkDelete")
crud("/api/users/{user}", "User", "PutUser", "user")
listing("/api/users/{user}/permissions", "Permission", "A user's permissions")
listing("/api/users/{user}/topic-permissions", "TopicPermission", "A user's topic permissions")
listing("/api/permissions", "Permission", "All permissions")
crud("/api/permissions/{vhost}/{user}", "Permission", "PutPermission", "permission")
listing("/api/topic-permissions", "TopicPermission", "All topic permissions")
crud("/api/topic-permissions/{vhost}/{user}", "TopicPermission", "PutTopicPermission", "topic permission")
PATHS["/api/topic-permissions/{vhost}/{user}"]["get"]["responses"]["200"] = ok(arr(ref("TopicPermission")))["200"]
# Parameters, policies, limits
listing("/api/parameters", "Parameter", "Runtime parameters")
listing("/api/parameters/{component}", "Parameter", "Parameters of a component")
listing("/api/parameters/{component}/{vhost}", "Parameter", "Parameters of a component in a vhost")
crud("/api/parameters/{component}/{vhost}/{name}", "Parameter", "PutParameter", "parameter")
listing("/api/global-parameters", "GlobalParameter", "Global parameters")
crud("/api/global-parameters/{name}", "GlobalParameter", "PutParameter", "global parameter")
for base in ["policies", "operator-policies"]:
    listing(f"/api/{base}", "Policy", f"All {base}")
    listing(f"/api/{base}/{{vhost}}", "Policy", f"{base} of a vhost")
    crud(f"/api/{base}/{{vhost}}/{{name}}", "Policy", "PutPolicy", base[:-3] + "y")
listing("/api/vhost-limits", "Limits", "Vhost limits")
op("get", "/api/vhost-limits/{vhost}", "A vhost's limits", ok(arr(ref("Limits"))))
crud("/api/vhost-limits/{vhost}/{name}", "Limits", "PutLimit", "vhost limit", get=False, put_codes=("204",))
listing("/api/user-limits", "Limits", "User limits")
op("get", "/api/user-limits/{user}", "A user's limits", ok(arr(ref("Limits"))))
crud("/api/user-limits/{user}/{name}", "Limits", "PutLimit", "user limit", get=False, put_codes=("204",))
# Connections, channels, consumers
listing("/api/connections", "Connection", "Connections")
op("get", "/api/connections/{name}", "One connection", ok(ref("Connection")))
op("delete", "/api/connections/{name}", "Close a connection (reason in X-Reason)", ok(None, "204"),
   extra_params=[{"name": "X-Reason", "in": "header", "required": False, "schema": STR}])
listing("/api/connections/{name}/channels", "Channel", "Channels of a connection")
listing("/api/channels", "Channel", "Channels")
op("get", "/api/channels/{name}", "One channel", ok(ref("Channel")))
listing("/api/consumers", "Consumer", "Consumers")
listing("/api/consumers/{vhost}", "Consumer", "Consumers in a vhost")
# Definitions
op("get", "/api/definitions", "Export definitions", ok(OBJ))
op("post", "/api/definitions", "Import definitions", ok(None, "204"), body="Definitions")
op("get", "/api/definitions/{vhost}", "Export a vhost's definitions", ok(OBJ))
op("post", "/api/definitions/{vhost}", "Import a vhost's definitions", ok(None, "204"), body="Definitions")
# Health
unavailable = {"503": {"description": "Check failed", "content": {"application/json": {"schema": ref("Health")}}}}
op("get", "/api/aliveness-test/{vhost}", "Publish and get a message", {**ok(ref("Health")), **unavailable})
for check in ["alarms", "local-alarms", "virtual-hosts", "node-is-quorum-critical", "node-is-mirror-sync-critical",
              "metadata-majority",
              "ready-to-serve-clients", "port-listener/{port}", "protocol-listener/{protocol}"]:
    op("get", f"/api/health/checks/{check}", f"Health check: {check}", {**ok(ref("Health")), **unavailable})
for path in ["/api/healthchecks/node", "/api/healthchecks/node/{node}"]:
    op("get", path, "Node health check (deprecated in RabbitMQ 3.10, still served)",
       {**ok(ref("Health")), **unavailable})
# Outside the JSON API
op("get", "/metrics", "Prometheus metrics", {"200": {"description": "Prometheus text",
                                                       "content": {"text/plain": {"schema": STR}}}}, public=True)
op("get", "/api/openapi.json", "This document", ok(OBJ), public=True)

DOC = {
    "openapi": "3.0.3",
    "info": {
        "title": "Warren management HTTP API",
        "version": "0.1.0",
        "description": "RabbitMQ-compatible management API. Vhost '/' is written %2F in paths. Errors are "
                       "{\"error\": ..., \"reason\": ...}. Lists take page, page_size (at most 500), name, "
                       "use_regex, sort, sort_reverse and columns; with page they answer RabbitMQ's envelope.",
    },
    "servers": [{"url": "/"}],
    "security": [{"basicAuth": []}, {"bearerAuth": []}],
    "components": {
        "securitySchemes": {
            "basicAuth": {"type": "http", "scheme": "basic"},
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        },
        "schemas": SCHEMAS,
    },
    "paths": PATHS,
}


def render() -> str:
    return json.dumps(DOC, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(PATHS)} paths)")
