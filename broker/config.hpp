// Broker configuration: one YAML file plus command-line overrides.
//
// Every option is a plain field with its default; deploy/strata.yaml is the
// commented reference. load_config() either returns a complete, validated
// config or throws config_error whose message names the file, the line and
// the key ("strata.yaml:12: limits.max_packet_size: expected an integer").
#pragma once

#include "auth/limits.hpp"
#include "auth/policy.hpp"
#include "bridges/sparkplug/mapping.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::broker {

class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Which names of a client certificate identify the client (auth maps them to users).
enum class tls_identity : std::uint8_t { cn, san_uri, san_dns };

// A listener's `tls:` section (required for mqtt+tls and https). Paths are
// resolved against the config file's directory.
struct tls_config {
    bool operator==(const tls_config&) const = default;
    std::string cert;                  // PEM certificate chain (required)
    std::string key;                   // PEM private key (required)
    std::string client_ca;             // PEM CA bundle; set: clients present certificates signed by it (mTLS)
    bool require_client_cert = true;   // with client_ca: false lets clients without a certificate in
    std::string min_version = "1.2";   // "1.2" or "1.3"; older versions are always refused
    tls_identity identity = tls_identity::cn;  // `identity: cn | san-uri | san-dns`
};

struct listener_config {
    std::string name = "default";        // for logs and metrics
    // "mqtt" (TCP), "mqtt+tls", "http" (metrics, health, MQTT over WebSocket
    // at /mqtt) or "https" (the same over TLS).
    std::string protocol = "mqtt";
    std::string bind = "127.0.0.1:1883"; // "host:port", "[v6]:port"; port 0 picks a free port
    // Derived from `bind` by load_config().
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    std::optional<tls_config> tls;       // required for mqtt+tls and https, refused otherwise
    // https with tls.client_ca only: client certificate identities (the
    // names tls.identity selects) allowed to use the admin API /api/v1.
    // Default empty: the admin API refuses every request.
    std::vector<std::string> admin_identities;
    // The admin API also takes HTTP Basic (users of auth.password_file whose
    // roles grant `admin`). On a plain `http` listener Basic is accepted only
    // from connections over loopback, unless this is true (passwords would
    // cross the network in clear text). Default false.
    bool admin_over_plain_http = false;

    [[nodiscard]] bool is_http() const noexcept { return protocol == "http" || protocol == "https"; }
};

struct limits_config {
    std::uint32_t max_connections = 100'000;       // further connections are refused (0x97 in 5.0)
    std::uint32_t max_packet_size = 1'048'576;     // bytes, inbound; advertised in 5.0 CONNACK
    std::uint16_t receive_maximum = 1024;          // inbound QoS 1/2 in flight per client; advertised
    std::uint16_t topic_alias_maximum = 64;        // inbound aliases per 5.0 client; advertised
    std::uint16_t max_keepalive = 3600;            // seconds; larger (or 0) keep-alives are capped (5.0: Server Keep Alive)
    std::uint32_t max_queued_messages = 1000;      // per session: messages waiting to be sent
    std::uint64_t max_queued_bytes = 16'777'216;   // per session: payload+topic bytes waiting
    std::uint16_t max_inflight = 64;               // outbound QoS 1/2 unacknowledged per client (also capped by the client's Receive Maximum)
    std::uint32_t max_session_expiry = 0xFFFFFFFF; // seconds; larger requested intervals are capped
    std::uint32_t max_subscriptions_per_client = 0;  // 0: unlimited
    // The retained store, broker-wide ('$' topics not counted): a retained
    // message that would exceed either is refused (5.0: 0x97).
    std::uint64_t max_retained_messages = 1'000'000;
    std::uint64_t max_retained_bytes = 1ull << 30;   // topic + payload bytes (1 GiB)
    // TLS handshakes in progress at once (mqtt+tls and https listeners);
    // beyond it a connection whose first bytes arrived waits for one to end.
    std::uint32_t max_handshakes = 256;
    // `limits.slow_consumer`: an online subscriber whose queue is full holds
    // back the publishers that feed it (their input is not read until it
    // drains). One that stays full for `after_ms` is dealt with by `action`:
    // disconnected (0x97; a persistent session keeps its queue), or its
    // messages dropped while it stays full (counted), releasing the
    // publishers either way.
    struct slow_consumer_config {
        enum class action_kind : std::uint8_t { disconnect, drop };
        std::uint32_t after_ms = 5000;
        action_kind action = action_kind::disconnect;
    } slow_consumer;
};

// An access rule that applies to every client. The auth issue grows this
// into roles bound to namespace levels.
struct access_rule {
    bool operator==(const access_rule&) const = default;
    enum class action : std::uint8_t { subscribe, publish };
    bool deny = true;      // `deny:` or `allow:`
    action what = action::subscribe;
    std::string filter;    // a topic filter; wildcards allowed
};

// `auth:` identities and their limits (docs/security.md).
struct auth_config {
    // Password file (auth/password_file.hpp), resolved against the config
    // file's directory. Empty (default): no password logins.
    std::string password_file;
    // A subscription wider than the grants: refused (default, 0x87 in
    // SUBACK) or, with `wide_subscriptions: filter`, accepted and filtered
    // per message.
    bool filter_wide_subscriptions = false;
    // `auth.takeover`: a CONNECT with the client identifier of a session
    // (live or persistent) that belongs to another identity. same_identity
    // (default): refused (5.0 CONNACK 0x85, 3.1.1 return code 2) and the
    // other identity's session is left as it is. allowed: the old
    // connection is closed (0x8E) and the session taken over, started clean
    // when roles are configured (its messages were filtered for the other
    // identity). A client id is not a credential; `allowed` is for plants
    // with a single user. Anonymous clients are one identity.
    enum class takeover_policy : std::uint8_t { same_identity, allowed };
    takeover_policy takeover = takeover_policy::same_identity;
    auth::identity_limits limits;          // `auth.limits`; default: none
    auth::backoff_config login_backoff;    // `auth.login_backoff`
    // `auth.password_checks`: the slow password hashes of MQTT logins and
    // HTTP Basic, run off the network threads (broker/core/security.hpp).
    struct password_checks_config {
        bool operator==(const password_checks_config&) const = default;
        unsigned threads = 0;          // worker threads; 0: min(2, CPU cores)
        std::uint32_t per_address = 8; // checks queued or running per source address; beyond: refused at once
    } password_checks;
};

// `audit:`: one JSON line per login, refusal and command.
struct audit_config {
    bool operator==(const audit_config&) const = default;
    std::string file;   // resolved against the config file's directory; empty (default): no audit log
    std::string topic;  // also published there (QoS 0, not retained); empty (default): not published
    std::uint64_t max_bytes = 100ull << 20;  // the file is rotated before it grows beyond this; 0: never
    std::uint32_t keep = 5;                  // rotated files kept (FILE.1 newest ... FILE.5); 0: none
    // Refusal lines (refused/failed outcomes) per identity, or per address
    // for anonymous clients and logins, a second; the rest are counted in
    // one summary line a second. 0: unlimited. Allowed actions are never limited.
    std::uint32_t refusals_per_second = 10;
    std::uint32_t max_field_bytes = 256;     // longer identities, client ids, topics and reasons are cut and marked
};

struct redirect_config {
    bool operator==(const redirect_config&) const = default;
    std::string server_reference;  // sent as Server Reference (5.0)
    bool permanent = false;        // 0x9D Server moved instead of 0x9C Use another server
};

// `persistence:`: the RocksDB store of retained messages and persistent
// sessions (persistence/store.hpp says what each durability mode promises).
struct persistence_config {
    bool operator==(const persistence_config&) const = default;
    enum class mode : std::uint8_t { always, batch, none };
    bool enabled = true;                 // false: nothing is stored, a restart forgets everything
    std::string path = "./data";         // relative to the working directory, as given
    mode durability = mode::batch;       // when a QoS 1/2 publish may be acknowledged
    std::uint32_t batch_interval_ms = 5; // batch and none: longest wait before a group commit
};

// `bridges:`: outbound links to other brokers (docs/federation.md).
struct bridge_route {
    bool operator==(const bridge_route&) const = default;
    std::string local;   // topic filter on this broker
    std::string remote;  // the same wildcard levels on the remote broker
    // Model classes (`class:`): only topics of these classes within the
    // filters, as this broker's model reads them (optional levels present
    // or not). Empty: every topic of the filters.
    std::vector<std::string> classes;
    std::uint8_t qos = 1;
    std::string at;      // "file:line: bridges[i].forward[j]", for errors about classes
};

struct bridge_config {
    bool operator==(const bridge_config&) const = default;
    std::string name;                  // for logs, $SYS and metrics; unique
    std::string remote;                // "mqtt://host:port" or "mqtts://host:port" (default ports 1883 / 8883)
    // Derived from `remote` by load_config().
    std::string host;
    std::uint16_t port = 1883;
    bool tls = false;
    std::uint8_t protocol_version = 5;     // 5, or 4 (3.1.1)
    std::string client_id;                 // default: the name
    // `tls: {ca, cert, key, server_name}`, resolved against the config
    // file's directory. ca empty: the system's trust store.
    std::string ca, cert, key, server_name;
    std::string username, password;        // optional
    // The local identity whose roles (users:/roles:) decide what the remote
    // may publish here; default: the bridge's name.
    std::string identity;
    std::vector<bridge_route> forward;     // local -> remote
    std::vector<bridge_route> receive;     // remote -> local
    // The store-and-forward buffer (persistent outbox).
    std::uint64_t buffer_max_bytes = 256ull << 20;
    bool buffer_block = false;             // policy: drop-oldest (default) or block (refuse new publishes)
    bool latest_only = false;              // state_topics: latest-only (retained messages keep their newest value)
    // How much of the backlog is kept in memory; the rest waits in the
    // store only and is read back as the link drains it (buffer.memory).
    std::uint32_t buffer_memory_messages = 10'000;
    std::uint64_t buffer_memory_bytes = 16ull << 20;
    bool buffer_qos0_durable = false;      // buffer.qos0: durable (stored, kept offline) or memory (default)
    std::uint32_t drain_rate = 0;          // buffer.drain_rate: most messages/s forwarded; 0: no limit
    std::uint32_t reconnect_min_ms = 500, reconnect_max_ms = 30'000;
    std::uint16_t keep_alive = 60;         // seconds
    // Forwarded QoS 1 messages awaiting the remote's PUBACK (5.0: at most
    // the remote's Receive Maximum). More hides more WAN latency.
    std::uint16_t inflight = 256;
};

// `alerts:` (broker/ops/alerts.hpp, docs/operations.md "Alerts"): rates per subtree
// against their baseline, stale data, reconnect loops.
struct stale_rule {
    bool operator==(const stale_rule&) const = default;
    std::string filter;              // topic filter
    std::uint32_t max_silence_s = 0; // a topic seen under it, silent longer than this, is stale
};

struct alerts_config {
    bool operator==(const alerts_config&) const = default;
    bool enabled = true;
    std::uint32_t levels = 2;        // topic levels that make a subtree (2: enterprise/site)
    std::uint32_t window_s = 300;    // EWMA time constant of the baseline; also its warm-up
    double spike_factor = 5.0;       // rate above factor x baseline: `spike`
    double drop_factor = 5.0;        // rate below baseline / factor: `drop`
    double min_rate = 10.0;          // msg/s; spikes below it, and drops of baselines below it, are ignored
    // Stale data: a topic under one of these filters that published once
    // and then went silent.
    std::vector<stale_rule> stale;
    // Stale data from the namespace model: a topic of a data class with an
    // expected period, silent longer than stale_factor x that period (a
    // `stale` filter the topic matches takes precedence). 0: off.
    double stale_factor = 3.0;
    std::uint32_t reconnect_count = 10;     // connects of one client id ...
    std::uint32_t reconnect_window_s = 60;  // ... within this many seconds: `reconnect_loop`
};

// `opcua:`: OPC UA servers (PLCs) whose variables are published into the
// namespace, and command topics written back to them (docs/opcua.md).

// `template:` of a source or of one mapping: the JSON keys of a published
// value and what each holds, in document order; nothing else is published.
// `{value: value, ts: source_ts, quality: status}` fits a model whose
// telemetry is {value, ts, quality: good|uncertain|bad}. In a templated
// payload every timestamp is present: a missing one falls back as below.
struct opcua_template {
    bool operator==(const opcua_template&) const = default;
    enum class field : std::uint8_t {
        value,        // the value as JSON (broker/hosts/opcua_json.hpp)
        source_ts,    // RFC 3339: the source timestamp, else the server's, else when it was received
        server_ts,    // RFC 3339: the server timestamp, else when it was received
        status,       // the status code's severity, named by `names` (`quality: {status: {bad: ...}}`)
        status_name,  // the status code's name: "Good", "BadSensorFailure"
        status_code,  // the status code as a number
        unit,         // the mapping's `unit:` (the key is left out when the mapping has none)
    };
    struct key {
        bool operator==(const key&) const = default;
        std::string name;          // the JSON key
        field what = field::value;
        // status: the names of Good, Uncertain and Bad; default the
        // quality enum of deploy/namespace/schemas/telemetry.json.
        std::array<std::string, 3> names{"good", "uncertain", "bad"};
    };
    std::vector<key> keys;
    std::string at;  // "file:line: opcua[0].template", for errors found later (against the model)

    [[nodiscard]] bool has(field f) const noexcept {
        return std::any_of(keys.begin(), keys.end(), [f](const key& k) { return k.what == f; });
    }
};

struct opcua_mapping {
    bool operator==(const opcua_mapping&) const = default;
    std::string node;    // `node: "ns=2;s=PLC1.Line1.Counter"` with `topic:`, or
    std::string browse;  // `browse: "Objects/PLC1/Line1"` with `topic_prefix:`: every variable below
    std::string topic;   // the topic, or the prefix of the browse path's topics
    // The monitored items' parameters: sampling interval (default: the
    // publishing interval), values the server queues between publishes
    // (1: only the newest), absolute deadband of numeric values (0: every change).
    std::optional<std::uint32_t> sampling_ms;
    std::uint32_t queue_size = 1;
    double deadband = 0;
    // The payload: the mapping's `template:`, else its source's; none (the
    // default): {"value", "source_ts", "server_ts", "status"}.
    std::optional<opcua_template> payload;
    std::string unit;  // `unit: degC`, published where the template says `unit`
    std::string at;    // "file:line: opcua[0].mappings[1]", for errors found against the model
};

// `writes:` entries. Without `value:` the payload is the value itself (or
// {"value": ...}) and the reply {"status": "<OPC UA status>"[, "error"]}.
// With `value: parameters.value` the payload is a command in the model's
// shape ({"command", "request_id", "ts", "parameters": {"value": 55.5}}),
// the value is read at that path, and the reply is in the model's reply
// shape: {"request_id", "status": "ok"|"refused"|"failed",
// "opcua_status", "detail", "ts"} (deploy/namespace/schemas/reply.json).
struct opcua_write {
    bool operator==(const opcua_write&) const = default;
    std::string topic;  // a topic name (no wildcards); messages there become Writes
    std::string node;   // the node written, "ns=2;s=PLC1.Line1.Setpoint"
    std::vector<std::string> value_path;  // `value: parameters.value`; empty (default): the payload
    std::vector<std::string> request_id_path{"request_id"};  // `request_id:`, with `value:` only
    // Where the reply goes when the command has no 5.0 Response Topic;
    // default <topic>/reply.
    std::string reply_topic;
    std::string at;  // "file:line: opcua[0].writes[0]", for errors found against the model

    [[nodiscard]] bool command_shape() const noexcept { return !value_path.empty(); }
};

struct opcua_config {
    bool operator==(const opcua_config&) const = default;
    std::string name;      // for logs, $SYS and metrics; unique
    std::string endpoint;  // "opc.tcp://host:port[/path]"
    // `security: {policy, mode}`: None (default), Basic256Sha256 or
    // Aes128_Sha256_RsaOaep; None (default), Sign or SignAndEncrypt.
    std::string policy = "None";
    std::string mode = "None";
    // `user: {username, password}`, or `user: anonymous` (default).
    std::optional<std::string> username, password;
    std::uint32_t publish_interval_ms = 1000;
    std::vector<opcua_mapping> mappings;  // each with its template resolved (the source's unless its own)
    std::vector<opcua_write> writes;
    std::optional<opcua_template> payload;  // `template:`, for every mapping without its own; default none
    // The client's certificate and the trusted server certificates
    // (own/, trusted/, rejected/); default <persistence.path>/opcua-pki.
    std::string pki;
    bool trust_any = false;   // accept any server certificate (commissioning only)
    std::uint8_t qos = 1;     // of the published values
    bool retain = true;       // published values are retained
    // The identity whose roles decide where values and write replies may be
    // published (users:/roles:); default: the source's name.
    std::string identity;
};

// `sparkplug:` (docs/sparkplug.md): the broker is Sparkplug Aware (3.0):
// it follows Sparkplug B edge nodes and devices that publish on spBv1.0/#
// (births, deaths with bdSeq, seq gaps), keeps each birth retained under
// $sparkplug/certificates/, and maps their metrics into the namespace
// (`mappings:`), with commands on mapped topics sent down as NCMD/DCMD.
struct sparkplug_config {
    bool operator==(const sparkplug_config&) const = default;
    std::string name = "sparkplug";  // $SYS/broker/sparkplug/NAME, metrics, logs
    // Births kept retained under $sparkplug/certificates/spBv1.0/... (the
    // specification's Sparkplug Aware broker). Default true.
    bool certificates = true;
    // The bounds of what is followed (bridges/sparkplug/tracker.hpp): more
    // is refused and counted.
    std::uint32_t max_nodes = 10'000;
    std::uint32_t max_devices_per_node = 1'000;
    std::uint32_t max_metrics_per_birth = 10'000;
    std::uint32_t max_aliases_per_node = 100'000;
    std::uint32_t max_payload_bytes = 1'048'576;  // a larger Sparkplug payload is counted as malformed
    // Sparkplug messages waiting for the host (its session's queue): more
    // are dropped and counted (the node's seq shows the gap).
    std::uint32_t queue_messages = 100'000;
    // An edge node offline longer than this raises the `sparkplug_offline`
    // alert (0: never). Default 300 s.
    std::uint32_t offline_alert_s = 300;
    // Data of an edge node whose birth the broker has not seen (it started
    // after the node birthed) asks the node for a new birth (NCMD "Node
    // Control/Rebirth"), at most once per rebirth_interval_s per node.
    bool rebirth = true;
    std::uint32_t rebirth_interval_s = 30;
    // The identity whose roles decide where mapped values, replies and
    // NCMD/DCMD may be published (users:/roles:). Default: the name.
    std::string identity;
    std::uint8_t qos = 0;  // of the mapped values
    // Mapped values are retained where their class requires it, never where
    // it forbids it, and where it leaves it open (`retain: any`, or no
    // model) as this says. Default true: the tree holds each metric's
    // latest value.
    bool retain = true;
    // When a node or device dies, its mapped metrics are published again
    // with their last value and quality `uncertain` (the template's
    // `status`; OPC UA's UncertainLastUsableValue), so the tree shows that
    // they are no longer current. Default true.
    bool stale_on_death = true;
    // The model's class of commands and of their replies under a mapped
    // topic (TOPIC/cmd/SUBTOPIC answered on TOPIC/reply/SUBTOPIC; reply
    // empty: no replies).
    std::string command_class = "cmd";
    std::string reply_class = "reply";
    // Where a command's value and request id are in its payload (the
    // model's command shape: {"command", "request_id", "parameters": {"value"}}).
    std::vector<std::string> value_path{"parameters", "value"};
    std::vector<std::string> request_id_path{"request_id"};
    // The JSON shape of a value, per class (`templates: {telemetry:
    // {value: value, ts: source_ts, quality: status, unit: unit}}`), as
    // an OPC UA template: source_ts is the metric's timestamp (else the
    // payload's), server_ts when the broker received it, status good or
    // bad (is_null, no value). A class without one: {value, ts, quality}
    // (and unit when the rule has one).
    std::map<std::string, opcua_template> templates;
    std::vector<bridges::sparkplug::device_rule> mappings;
};

// `web:`: the namespace explorer, the page an http(s) listener serves at
// `/` (broker/ops/explorer.hpp), and its logins.
struct web_config {
    bool operator==(const web_config&) const = default;
    bool enabled = true;   // false: `/` and the explorer's endpoints answer 404
    // A directory to serve the page from instead of the copy built into
    // the binary (a customised page); resolved against the config file's
    // directory. Empty (default): the built-in page.
    std::string root;
    std::uint32_t max_logins = 1024;      // explorer logins (tokens) at once; a login beyond is refused (503)
    std::uint32_t login_idle_s = 1800;    // a login unused this long ends
};

struct config {
    std::string source_file;  // the file this was loaded from (empty: defaults)

    std::vector<listener_config> listeners{listener_config{}};
    limits_config limits;

    std::string log_level = "info";  // trace, debug, info, warn, error, off
    persistence_config persistence;
    // `auth.allow_anonymous`. When the key is absent, anonymous clients are
    // accepted on loopback listeners only (anonymous_loopback_only); an
    // explicit true or false applies to every listener.
    bool allow_anonymous = true;
    bool anonymous_loopback_only = true;
    auth_config auth;
    auth::policy_config policy;  // `roles:`, `users:` and `auth.command_subtrees` (filters of command topics)
    audit_config audit;
    std::vector<access_rule> access;
    std::optional<redirect_config> redirect;  // when set, every CONNECT is redirected

    std::uint32_t sys_interval = 10;  // seconds between $SYS/broker/... updates; 0 disables them
    unsigned threads = 0;             // network threads; 0: one per core but one (at least 1)
    std::uint32_t shutdown_grace_ms = 2000;  // bounded wait for clients to drain at shutdown

    // `namespace: {model: FILE}`: the ISA-95 model the broker enforces
    // (deploy/namespace/README.md). Resolved against the config file's
    // directory by parse_config(); empty: no model, every topic passes.
    std::string namespace_model;

    std::vector<bridge_config> bridges;
    std::vector<opcua_config> opcua;
    // `sparkplug:`, at most one entry (a vector for the host of every kind,
    // broker/hosts/host.hpp); empty: not Sparkplug Aware.
    std::vector<sparkplug_config> sparkplug;
    // `sources_file: FILE`: where the admin API keeps the bridges and OPC UA
    // sources it adds or changes (PUT/DELETE /api/v1/bridges/NAME and
    // /api/v1/opcua/NAME), a JSON document {"bridges": [...], "opcua":
    // [...]} with entries as under `bridges:` and `opcua:`. Resolved against
    // the config file's directory; read after it (a missing file: none),
    // its entries appended to this file's (names unique across both), its
    // paths relative to the config file's directory. Empty (default): the
    // admin API cannot change them.
    std::string sources_file;
    alerts_config alerts;
    web_config web;
    // This broker's name among federated brokers (loop prevention: bridges
    // mark the messages they forward with it). Default (empty): the host
    // name and the absolute persistence path, stable across restarts.
    std::string broker_id;
};

// Loads and validates a config file. Unknown keys are errors (a typo must
// not silently become a default).
[[nodiscard]] config load_config(const std::string& path);

// Parses config text; `name` is used in error messages.
[[nodiscard]] config parse_config(const std::string& text, const std::string& name);

// Splits "host:port" / "[v6]:port"; throws config_error mentioning `key`.
void parse_bind(const std::string& bind, const std::string& key, std::string& host, std::uint16_t& port);

}  // namespace strata::broker
