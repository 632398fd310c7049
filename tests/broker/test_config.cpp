// The YAML config loader: defaults, a full file, every kind of error with its
// file:line: key text, sizes with units, binds, and deploy/strata.yaml.
#include "broker/config.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#ifndef STRATA_SOURCE_DIR
#error "STRATA_SOURCE_DIR must point at the repository root (for deploy/strata.yaml)"
#endif

using namespace strata::broker;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

namespace {

config parse(const std::string& text) { return parse_config(text, "t.yaml"); }

// The message parse() throws for `text`, or "(no error)".
std::string error_of(const std::string& text) {
    try {
        (void)parse(text);
    } catch (const config_error& e) {
        return e.what();
    }
    return "(no error)";
}

void check_defaults(const config& c) {
    const config d;
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].name == "default");
    CHECK(c.listeners[0].protocol == "mqtt");
    CHECK(c.listeners[0].bind == "127.0.0.1:1883");
    CHECK(c.listeners[0].host == "127.0.0.1");
    CHECK(c.listeners[0].port == 1883);
    CHECK(c.limits.max_connections == 100'000);
    CHECK(c.limits.max_packet_size == 1'048'576);
    CHECK(c.limits.receive_maximum == 1024);
    CHECK(c.limits.topic_alias_maximum == 64);
    CHECK(c.limits.max_keepalive == 3600);
    CHECK(c.limits.max_queued_messages == 1000);
    CHECK(c.limits.max_queued_bytes == 16'777'216);
    CHECK(c.limits.max_inflight == 64);
    CHECK(c.limits.max_session_expiry == 0xFFFFFFFFu);
    CHECK(c.limits.max_subscriptions_per_client == 0);
    CHECK(c.limits.max_retained_messages == 1'000'000);
    CHECK(c.limits.max_retained_bytes == 1ull << 30);
    CHECK(c.auth.limits.retained == 100'000);
    CHECK(c.auth.limits.retained_bytes == 256ull << 20);
    CHECK(c.limits.max_handshakes == 256);
    CHECK(c.log_level == "info");
    CHECK(c.persistence.enabled);
    CHECK(c.persistence.path == "./data");
    CHECK(c.persistence.durability == persistence_config::mode::batch);
    CHECK(c.persistence.batch_interval_ms == 5);
    CHECK(c.allow_anonymous);
    CHECK(c.anonymous_loopback_only);
    CHECK(c.auth.password_file.empty());
    CHECK_FALSE(c.auth.filter_wide_subscriptions);
    CHECK(c.auth.takeover == auth_config::takeover_policy::same_identity);
    CHECK(c.policy.roles.empty());
    CHECK(c.policy.users.empty());
    CHECK(c.audit.file.empty());
    CHECK(c.audit.topic.empty());
    CHECK(c.audit.max_bytes == 100ull * 1024 * 1024);
    CHECK(c.audit.keep == 5);
    CHECK(c.audit.refusals_per_second == 10);
    CHECK(c.audit.max_field_bytes == 256);
    CHECK(c.auth.login_backoff.free_attempts == 3);
    CHECK(c.auth.password_checks.threads == 0);
    CHECK(c.auth.password_checks.per_address == 8);
    CHECK(c.access.empty());
    CHECK_FALSE(c.redirect.has_value());
    CHECK(c.sys_interval == 10);
    CHECK(c.threads == 0);
    CHECK(c.shutdown_grace_ms == 2000);
    CHECK(c.namespace_model.empty());
    CHECK(c.web.enabled);
    CHECK(c.web.root.empty());
    CHECK(c.web.max_logins == 1024);
    CHECK(c.web.login_idle_s == 1800);
    CHECK(c.alerts.enabled);
    CHECK(c.alerts.stale.empty());
    CHECK(c.alerts.stale_factor == 3.0);

    // ... and the same as the struct's own defaults.
    CHECK(c.limits.max_packet_size == d.limits.max_packet_size);
    CHECK(c.limits.max_queued_bytes == d.limits.max_queued_bytes);
    CHECK(c.sys_interval == d.sys_interval);
}

struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        path = std::filesystem::temp_directory_path() /
               ("strata_test_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const auto p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
    static int& counter() {
        static int n = 0;
        return n;
    }
};

}  // namespace

TEST_CASE("config: empty input and missing sections give the defaults", "[config]") {
    check_defaults(config{});
    for (const char* text : {"", "\n", "# only a comment\n", "---\n", "---\n...\n", "limits:\n", "listeners:\n",
                             "log: {}\nlimits: {}\naccess: []\nredirect:\n"}) {
        INFO("text: " << text);
        const config c = parse(text);
        check_defaults(c);
        CHECK(c.source_file == "t.yaml");
    }
}

TEST_CASE("config: a full file sets every field", "[config]") {
    const config c = parse(R"(listeners:
  - name: default
    protocol: mqtt
    bind: "127.0.0.1:1883"
  - name: plant.floor-2_b
    bind: "[::]:0"
limits:
  max_connections: 5000
  max_packet_size: 2MiB
  receive_maximum: 100
  topic_alias_maximum: 0
  max_keepalive: 600
  max_queued_messages: 50
  max_queued_bytes: 1GB
  max_inflight: 10
  max_session_expiry: 86400
  max_subscriptions_per_client: 20
  max_retained_messages: 5000
  max_retained_bytes: 64MiB
log: {level: debug}
persistence: {path: /var/lib/strata, durability: always, batch_interval_ms: 20}
auth: {allow_anonymous: false}
access:
  - {deny: subscribe, on: "test/nosubscribe"}
  - {allow: publish, on: "sandbox/#"}
  - deny: publish
    on: "+/cmd/+"
redirect: {server_reference: "other-broker:1883", permanent: true}
sys: {interval: 0}
threads: 4
shutdown: {grace_ms: 500}
)");
    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[0].name == "default");
    CHECK(c.listeners[0].host == "127.0.0.1");
    CHECK(c.listeners[0].port == 1883);
    CHECK(c.listeners[1].name == "plant.floor-2_b");
    CHECK(c.listeners[1].protocol == "mqtt");
    CHECK(c.listeners[1].bind == "[::]:0");
    CHECK(c.listeners[1].host == "::");
    CHECK(c.listeners[1].port == 0);

    CHECK(c.limits.max_connections == 5000);
    CHECK(c.limits.max_packet_size == 2u * 1024 * 1024);
    CHECK(c.limits.receive_maximum == 100);
    CHECK(c.limits.topic_alias_maximum == 0);
    CHECK(c.limits.max_keepalive == 600);
    CHECK(c.limits.max_queued_messages == 50);
    CHECK(c.limits.max_queued_bytes == 1'000'000'000u);
    CHECK(c.limits.max_inflight == 10);
    CHECK(c.limits.max_session_expiry == 86400);
    CHECK(c.limits.max_subscriptions_per_client == 20);
    CHECK(c.limits.max_retained_messages == 5000);
    CHECK(c.limits.max_retained_bytes == 64u * 1024 * 1024);

    CHECK(c.log_level == "debug");
    CHECK(c.persistence.path == "/var/lib/strata");
    CHECK(c.persistence.durability == persistence_config::mode::always);
    CHECK(c.persistence.batch_interval_ms == 20);
    CHECK_FALSE(c.allow_anonymous);
    CHECK_FALSE(c.anonymous_loopback_only);

    REQUIRE(c.access.size() == 3);
    CHECK(c.access[0].deny);
    CHECK(c.access[0].what == access_rule::action::subscribe);
    CHECK(c.access[0].filter == "test/nosubscribe");
    CHECK_FALSE(c.access[1].deny);
    CHECK(c.access[1].what == access_rule::action::publish);
    CHECK(c.access[1].filter == "sandbox/#");
    CHECK(c.access[2].deny);
    CHECK(c.access[2].what == access_rule::action::publish);
    CHECK(c.access[2].filter == "+/cmd/+");

    REQUIRE(c.redirect.has_value());
    CHECK(c.redirect->server_reference == "other-broker:1883");
    CHECK(c.redirect->permanent);

    CHECK(c.sys_interval == 0);
    CHECK(c.threads == 4);
    CHECK(c.shutdown_grace_ms == 500);
}

TEST_CASE("config: range limits are inclusive", "[config]") {
    const config lo = parse("limits:\n  max_connections: 1\n  max_packet_size: 16\n  receive_maximum: 1\n"
                            "  topic_alias_maximum: 0\n  max_keepalive: 1\n  max_queued_messages: 1\n"
                            "  max_queued_bytes: 1024\n  max_inflight: 1\n  max_session_expiry: 0\n"
                            "threads: 0\nsys: {interval: 0}\nshutdown: {grace_ms: 0}\n");
    CHECK(lo.limits.max_packet_size == 16);
    CHECK(lo.limits.max_queued_bytes == 1024);
    CHECK(lo.limits.max_session_expiry == 0);
    const config hi = parse("limits:\n  max_connections: 4294967295\n  max_packet_size: 268435460\n"
                            "  receive_maximum: 65535\n  topic_alias_maximum: 65535\n  max_keepalive: 65535\n"
                            "  max_queued_messages: 4294967295\n  max_queued_bytes: 18446744073709551615\n"
                            "  max_inflight: 65535\n  max_session_expiry: 4294967295\n"
                            "  max_subscriptions_per_client: 4294967295\nthreads: 256\n");
    CHECK(hi.limits.max_connections == 4294967295u);
    CHECK(hi.limits.max_packet_size == 268435460u);
    CHECK(hi.limits.receive_maximum == 65535);
    CHECK(hi.limits.max_queued_bytes == 18446744073709551615ull);
    CHECK(hi.threads == 256);
}

TEST_CASE("config: sizes with units", "[config]") {
    const auto packet = [](const std::string& v) { return parse("limits:\n  max_packet_size: " + v).limits.max_packet_size; };
    const auto queued = [](const std::string& v) { return parse("limits:\n  max_queued_bytes: " + v).limits.max_queued_bytes; };
    CHECK(packet("1048576") == 1048576);
    CHECK(packet("100B") == 100);
    CHECK(packet("64KiB") == 65536);
    CHECK(packet("\"64 KiB\"") == 65536);
    CHECK(packet("'1MiB'") == 1048576);
    CHECK(packet("256MiB") == 268435456);
    CHECK(packet("2KB") == 2000);
    CHECK(packet("2kB") == 2000);
    CHECK(packet("3MB") == 3'000'000);
    CHECK(queued("1GiB") == 1073741824ull);
    CHECK(queued("4GiB") == 4294967296ull);  // beyond 32 bits
    CHECK(queued("5GB") == 5'000'000'000ull);

    CHECK_THAT(error_of("limits:\n  max_packet_size: 1GiB"),
               Equals("t.yaml:2: limits.max_packet_size: must be between 16 and 268435460 "
                      "(got 1GiB = 1073741824 bytes)"));
    CHECK_THAT(error_of("limits:\n  max_packet_size: 15"),
               Equals("t.yaml:2: limits.max_packet_size: must be between 16 and 268435460 (got 15)"));
    CHECK_THAT(error_of("limits:\n  max_queued_bytes: 1000B"),
               Equals("t.yaml:2: limits.max_queued_bytes: must be at least 1024 (got 1000B)"));
    CHECK_THAT(error_of("limits:\n  max_packet_size: -1"),
               Equals("t.yaml:2: limits.max_packet_size: must be between 16 and 268435460 (got -1)"));
    CHECK_THAT(error_of("limits:\n  max_queued_bytes: 99999999999GiB"),
               StartsWith("t.yaml:2: limits.max_queued_bytes: must be at least 1024 (got 99999999999GiB"));
    for (const char* bad : {"1.5MiB", "1mib", "MiB", "1 TiB", "'1024'", "[1]", "{a: 1}", "1Mi"}) {
        INFO(bad);
        CHECK_THAT(error_of(std::string("limits:\n  max_packet_size: ") + bad),
                   StartsWith("t.yaml:2: limits.max_packet_size: expected a size: an integer, optionally followed by "
                              "B, KiB, MiB, GiB, KB, MB or GB, got "));
    }
}

TEST_CASE("config: out-of-range values name file, line and key", "[config]") {
    // The example from the design: line 7 of the file.
    CHECK_THAT(error_of("# Strata\nlisteners:\n  - name: default\n    bind: \"127.0.0.1:1883\"\n"
                        "limits:\n  max_connections: 10\n  receive_maximum: 0\n"),
               Equals("t.yaml:7: limits.receive_maximum: must be between 1 and 65535 (got 0)"));

    struct row {
        const char* text;
        const char* error;
    };
    const row rows[] = {
        {"limits:\n  receive_maximum: 65536", "t.yaml:2: limits.receive_maximum: must be between 1 and 65535 (got 65536)"},
        {"limits:\n  topic_alias_maximum: 65536",
         "t.yaml:2: limits.topic_alias_maximum: must be between 0 and 65535 (got 65536)"},
        {"limits:\n  max_keepalive: 0", "t.yaml:2: limits.max_keepalive: must be between 1 and 65535 (got 0)"},
        {"limits:\n  max_inflight: 0", "t.yaml:2: limits.max_inflight: must be between 1 and 65535 (got 0)"},
        {"limits:\n  max_inflight: 70000", "t.yaml:2: limits.max_inflight: must be between 1 and 65535 (got 70000)"},
        {"limits:\n  max_queued_messages: 0", "t.yaml:2: limits.max_queued_messages: must be at least 1 (got 0)"},
        {"limits:\n  max_connections: 0", "t.yaml:2: limits.max_connections: must be at least 1 (got 0)"},
        {"limits:\n  max_session_expiry: 4294967296",
         "t.yaml:2: limits.max_session_expiry: must be between 0 and 4294967295 (got 4294967296)"},
        {"limits:\n  max_subscriptions_per_client: -3",
         "t.yaml:2: limits.max_subscriptions_per_client: must be between 0 and 4294967295 (got -3)"},
        {"limits:\n  max_retained_messages: 0", "t.yaml:2: limits.max_retained_messages: must be at least 1 (got 0)"},
        {"limits:\n  max_retained_bytes: 1000",
         "t.yaml:2: limits.max_retained_bytes: must be at least 1024 (got 1000)"},
        {"auth:\n  limits: {retained: -1}",
         "t.yaml:2: auth.limits.retained: must be between 0 and 18446744073709551615 (got -1)"},
        {"threads: 257", "t.yaml:1: threads: must be between 0 and 256 (got 257)"},
        {"threads: 99999999999999999999999", "t.yaml:1: threads: must be between 0 and 256 (got 99999999999999999999999)"},
        {"\n\nsys: {interval: -1}", "t.yaml:3: sys.interval: must be between 0 and 4294967295 (got -1)"},
        {"shutdown:\n  grace_ms: 4294967296", "t.yaml:2: shutdown.grace_ms: must be between 0 and 4294967295 (got 4294967296)"},
        {"log: {level: verbose}", "t.yaml:1: log.level: must be trace, debug, info, warn, error or off (got 'verbose')"},
        {"persistence:\n  path: \"\"", "t.yaml:2: persistence.path: must not be empty"},
    };
    for (const row& r : rows) {
        INFO(r.text);
        CHECK_THAT(error_of(r.text), Equals(r.error));
    }
}

TEST_CASE("config: wrong types", "[config]") {
    struct row {
        const char* text;
        const char* error;
    };
    const row rows[] = {
        {"threads: \"4\"", "t.yaml:1: threads: expected an integer, got '4'"},
        {"threads: four", "t.yaml:1: threads: expected an integer, got 'four'"},
        {"threads: 0x10", "t.yaml:1: threads: expected an integer, got '0x10'"},
        {"threads: 1.0", "t.yaml:1: threads: expected an integer, got '1.0'"},
        {"threads: [1]", "t.yaml:1: threads: expected an integer, got a list"},
        // An empty value points at its key's line, not at the next token's.
        {"limits:\n  max_inflight:\n  receive_maximum: 5\n",
         "t.yaml:2: limits.max_inflight: expected an integer, got an empty value"},
        {"limits: 5", "t.yaml:1: limits: expected a map, got '5'"},
        {"limits:\n  - 5", "t.yaml:2: limits: expected a map, got a list"},
        {"listeners: {name: a}", "t.yaml:1: listeners: expected a list, got a map"},
        {"access: {deny: publish}", "t.yaml:1: access: expected a list, got a map"},
        {"auth: {allow_anonymous: yes}", "t.yaml:1: auth.allow_anonymous: expected true or false, got 'yes'"},
        {"auth: {allow_anonymous: \"true\"}", "t.yaml:1: auth.allow_anonymous: expected true or false, got 'true'"},
        {"auth:\n  allow_anonymous: 1", "t.yaml:2: auth.allow_anonymous: expected true or false, got '1'"},
        {"log: {level: [info]}", "t.yaml:1: log.level: expected a string, got a list"},
        {"persistence: {path: {a: b}}", "t.yaml:1: persistence.path: expected a string, got a map"},
        {"redirect: {server_reference: x, permanent: no}",
         "t.yaml:1: redirect.permanent: expected true or false, got 'no'"},
    };
    for (const row& r : rows) {
        INFO(r.text);
        CHECK_THAT(error_of(r.text), Equals(r.error));
    }
    // Booleans in YAML 1.2 spellings.
    CHECK_FALSE(parse("auth: {allow_anonymous: False}").allow_anonymous);
    CHECK(parse("auth: {allow_anonymous: TRUE}").allow_anonymous);
}

TEST_CASE("config: unknown and duplicate keys", "[config]") {
    CHECK_THAT(error_of("limits:\n  max_connections: 10\n  recieve_maximum: 5\n"),
               Equals("t.yaml:3: limits: unknown key 'recieve_maximum' (did you mean 'receive_maximum'?)"));
    CHECK_THAT(error_of("threads: 1\nfoo: 1\n"),
               Equals("t.yaml:2: unknown key 'foo' (expected listeners, limits, log, persistence, auth, access, "
                      "roles, users, audit, redirect, sys, threads, shutdown, bridges, opcua, sparkplug, alerts, web, broker_id, "
                      "sources_file, namespace)"));
    CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"h:1\"\n    certificate: true\n"),
               StartsWith("t.yaml:4: listeners[0]: unknown key 'certificate'"));
    CHECK_THAT(error_of("access:\n  - {deny: publish, on: a}\n  - {deny: publish, topic: a}\n"),
               StartsWith("t.yaml:3: access[1]: unknown key 'topic'"));
    CHECK_THAT(error_of("log:\n  levl: info\n"), Equals("t.yaml:2: log: unknown key 'levl' (did you mean 'level'?)"));
    CHECK_THAT(error_of("limits:\n  max_inflight: 5\nthreads: 2\nlimits:\n  max_inflight: 6\n"),
               Equals("t.yaml:4: duplicate key 'limits'"));
    CHECK_THAT(error_of("limits:\n  max_inflight: 5\n  max_inflight: 6\n"),
               Equals("t.yaml:3: limits: duplicate key 'max_inflight'"));
    CHECK_THAT(error_of("[a]: 1\n"), Equals("t.yaml:1: keys must be strings, got a list"));
}

TEST_CASE("config: document structure and YAML syntax errors", "[config]") {
    CHECK_THAT(error_of("- a\n- b\n"), Equals("t.yaml:1: the document root must be a map, got a list"));
    CHECK_THAT(error_of("just text\n"), Equals("t.yaml:1: the document root must be a map, got 'just text'"));
    CHECK_THAT(error_of("threads: 1\n---\nthreads: 2\n"),
               Equals("t.yaml:3: expected a single YAML document, found a second one"));
    // Syntax errors: file:line: the parser's message.
    CHECK_THAT(error_of("limits:\n  max_inflight: [1\nthreads: 2\n"), StartsWith("t.yaml:3: "));
    CHECK_THAT(error_of("threads: 1\nlimits:\n  max_inflight: 1\n bad: 2\n"), Equals("t.yaml:4: end of map not found"));
    CHECK_THAT(error_of("a: \"unterminated\n"), StartsWith("t.yaml:"));
}

TEST_CASE("config: listeners", "[config]") {
    SECTION("protocol defaults to mqtt; unknown protocols are refused") {
        const config c = parse("listeners:\n  - name: x\n    bind: \"0.0.0.0:1883\"\n");
        CHECK(c.listeners.at(0).protocol == "mqtt");
        CHECK(c.listeners.at(0).host == "0.0.0.0");
        CHECK_THAT(error_of("listeners:\n  - name: x\n    protocol: mqtts\n    bind: \"0.0.0.0:8883\"\n"),
                   Equals("t.yaml:3: listeners[0].protocol: unsupported protocol 'mqtts' (supported: mqtt, mqtt+tls, "
                          "http or https)"));
    }
    SECTION("tls: required for mqtt+tls and https, refused elsewhere, paths relative to the file") {
        const config c = parse_config(
            "listeners:\n  - name: s\n    protocol: mqtt+tls\n    bind: \"0.0.0.0:8883\"\n"
            "    tls: {cert: tls/s.crt, key: /abs/s.key, client_ca: ca.crt, require_client_cert: false,\n"
            "          min_version: \"1.3\", identity: san-uri}\n",
            "/etc/strata/strata.yaml");
        const auto& t = c.listeners.at(0).tls;
        REQUIRE(t);
        CHECK(t->cert == "/etc/strata/tls/s.crt");
        CHECK(t->key == "/abs/s.key");
        CHECK(t->client_ca == "/etc/strata/ca.crt");
        CHECK_FALSE(t->require_client_cert);
        CHECK(t->min_version == "1.3");
        CHECK(t->identity == tls_identity::san_uri);
        const config d = parse("listeners:\n  - {name: w, protocol: https, bind: \"h:1\", tls: {cert: a, key: b}}\n");
        CHECK(d.listeners.at(0).tls->require_client_cert);
        CHECK(d.listeners.at(0).tls->min_version == "1.2");
        CHECK(d.listeners.at(0).tls->identity == tls_identity::cn);
        CHECK(d.listeners.at(0).is_http());
        CHECK_THAT(error_of("listeners:\n  - name: s\n    protocol: mqtt+tls\n    bind: \"h:1\"\n"),
                   Equals("t.yaml:2: listeners[0]: protocol 'mqtt+tls' needs a tls section with cert and key"));
        CHECK_THAT(error_of("listeners:\n  - {name: s, protocol: http, bind: \"h:1\", tls: {cert: a, key: b}}\n"),
                   Equals("t.yaml:2: listeners[0]: a tls section needs protocol mqtt+tls or https (got 'http')"));
        CHECK_THAT(error_of("listeners:\n  - {name: s, protocol: https, bind: \"h:1\", tls: {cert: a}}\n"),
                   StartsWith("t.yaml:2: listeners[0].tls: missing required key 'key'"));
        CHECK_THAT(error_of("listeners:\n  - {name: s, protocol: https, bind: \"h:1\",\n"
                            "     tls: {cert: a, key: b, min_version: \"1.1\"}}\n"),
                   Equals("t.yaml:3: listeners[0].tls.min_version: must be 1.2 or 1.3 (got '1.1')"));
        CHECK_THAT(error_of("listeners:\n  - {name: s, protocol: https, bind: \"h:1\",\n"
                            "     tls: {cert: a, key: b, identity: subject}}\n"),
                   StartsWith("t.yaml:3: listeners[0].tls.identity: must be cn, san-uri or san-dns"));
    }
    SECTION("at least one") {
        CHECK_THAT(error_of("threads: 1\nlisteners: []\n"),
                   Equals("t.yaml:2: listeners: at least one listener is required"));
    }
    SECTION("name and bind are required") {
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"h:1\"\n  - name: b\n"),
                   Equals("t.yaml:4: listeners[1]: missing required key 'bind'"));
        CHECK_THAT(error_of("listeners:\n  - bind: \"h:1\"\n"),
                   Equals("t.yaml:2: listeners[0]: missing required key 'name'"));
        CHECK_THAT(error_of("listeners:\n  -\n"), Equals("t.yaml:2: listeners[0]: missing required key 'name'"));
        CHECK_THAT(error_of("listeners:\n  - 5\n"), Equals("t.yaml:2: listeners[0]: expected a map, got '5'"));
    }
    SECTION("names are unique and well-formed") {
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"h:1\"\n  - name: a\n    bind: \"h:2\"\n"),
                   Equals("t.yaml:4: listeners[1].name: duplicate listener name 'a' (also listeners[0])"));
        CHECK_THAT(error_of("listeners:\n  - name: \"a b\"\n    bind: \"h:1\"\n"),
                   Equals("t.yaml:2: listeners[0].name: must be non-empty and use only letters, digits, '-', '_' "
                          "and '.' (got 'a b')"));
        CHECK_THAT(error_of("listeners:\n  - name: \"\"\n    bind: \"h:1\"\n"),
                   StartsWith("t.yaml:2: listeners[0].name: must be non-empty"));
    }
    SECTION("binds are unique, except port 0") {
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"localhost:1883\"\n  - name: b\n"
                            "    bind: \"LocalHost:1883\"\n"),
                   Equals("t.yaml:5: listeners[1].bind: 'LocalHost:1883' is already bound by listeners[0] ('a')"));
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"[::1]:1\"\n  - name: b\n    bind: \"[::1]:1\"\n"),
                   StartsWith("t.yaml:5: listeners[1].bind: '[::1]:1' is already bound by listeners[0]"));
        const config c = parse("listeners:\n  - name: a\n    bind: \"127.0.0.1:0\"\n  - name: b\n"
                               "    bind: \"127.0.0.1:0\"\n  - name: c\n    bind: \"127.0.0.1:1\"\n");
        CHECK(c.listeners.size() == 3);
    }
    SECTION("a bad bind names its key and line") {
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"::1:1883\"\n"),
                   Equals("t.yaml:3: listeners[0].bind: an IPv6 address must be in brackets, e.g. \"[::1]:1883\" "
                          "(got '::1:1883')"));
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: 1883\n"),
                   StartsWith("t.yaml:3: listeners[0].bind: missing port"));
        CHECK_THAT(error_of("listeners:\n  - name: a\n    bind: \"h:65536\"\n"),
                   Equals("t.yaml:3: listeners[0].bind: the port must be between 0 and 65535 (got '65536')"));
    }
}

TEST_CASE("config: parse_bind", "[config]") {
    std::string host;
    std::uint16_t port = 1;
    parse_bind("127.0.0.1:1883", "k", host, port);
    CHECK(host == "127.0.0.1");
    CHECK(port == 1883);
    parse_bind("localhost:0", "k", host, port);
    CHECK(host == "localhost");
    CHECK(port == 0);
    parse_bind("0.0.0.0:65535", "k", host, port);
    CHECK(host == "0.0.0.0");
    CHECK(port == 65535);
    parse_bind("[::1]:8883", "k", host, port);
    CHECK(host == "::1");
    CHECK(port == 8883);
    parse_bind("[::]:1", "k", host, port);
    CHECK(host == "::");
    parse_bind("[fe80::1%eth0]:1883", "k", host, port);
    CHECK(host == "fe80::1%eth0");
    parse_bind("[2001:db8::ff00:42:8329]:00080", "k", host, port);
    CHECK(host == "2001:db8::ff00:42:8329");
    CHECK(port == 80);

    const auto err = [](const std::string& bind) {
        std::string h;
        std::uint16_t p = 0;
        try {
            parse_bind(bind, "listeners[0].bind", h, p);
        } catch (const config_error& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    CHECK_THAT(err(":1883"), StartsWith("listeners[0].bind: the host must not be empty"));
    CHECK_THAT(err("[]:1883"), Equals("listeners[0].bind: the host must not be empty (got '[]:1883')"));
    CHECK_THAT(err("localhost"), StartsWith("listeners[0].bind: missing port"));
    CHECK_THAT(err("localhost:"), Equals("listeners[0].bind: the port must be between 0 and 65535 (got '')"));
    CHECK_THAT(err("localhost:65536"), Equals("listeners[0].bind: the port must be between 0 and 65535 (got '65536')"));
    CHECK_THAT(err("localhost:-1"), Equals("listeners[0].bind: the port must be between 0 and 65535 (got '-1')"));
    CHECK_THAT(err("localhost:1883x"), StartsWith("listeners[0].bind: the port must be between 0 and 65535"));
    CHECK_THAT(err("localhost:100000"), StartsWith("listeners[0].bind: the port must be between 0 and 65535"));
    CHECK_THAT(err("::1:1883"), StartsWith("listeners[0].bind: an IPv6 address must be in brackets"));
    CHECK_THAT(err("[::1]1883"), StartsWith("listeners[0].bind: expected \"host:port\" or \"[ipv6]:port\""));
    CHECK_THAT(err("[::1:1883"), StartsWith("listeners[0].bind: expected \"host:port\" or \"[ipv6]:port\""));
    CHECK_THAT(err("[::1]:"), StartsWith("listeners[0].bind: the port must be between 0 and 65535"));
    CHECK_THAT(err("[localhost]:1883"), StartsWith("listeners[0].bind: brackets are for IPv6 addresses"));
    CHECK_THAT(err("my host:1883"), Equals("listeners[0].bind: invalid host 'my host'"));
    CHECK_THAT(err(""), StartsWith("listeners[0].bind: missing port"));
}

TEST_CASE("config: access rules", "[config]") {
    const config c = parse("access:\n  - {allow: subscribe, on: \"#\"}\n  - {deny: publish, on: \"a/+/c\"}\n"
                           "  - {deny: subscribe, on: \"$SYS/#\"}\n  - {deny: publish, on: \"a//b\"}\n");
    REQUIRE(c.access.size() == 4);
    CHECK_FALSE(c.access[0].deny);
    CHECK(c.access[0].filter == "#");
    CHECK(c.access[3].filter == "a//b");

    CHECK_THAT(error_of("access:\n  - {deny: publish, allow: publish, on: a}\n"),
               Equals("t.yaml:2: access[0]: needs exactly one of 'deny' or 'allow'"));
    CHECK_THAT(error_of("access:\n  - {on: a}\n"), Equals("t.yaml:2: access[0]: needs exactly one of 'deny' or 'allow'"));
    CHECK_THAT(error_of("access:\n  - {deny: publish, on: a}\n  - deny: publish\n"),
               Equals("t.yaml:3: access[1]: missing required key 'on'"));
    CHECK_THAT(error_of("access:\n  - {deny: read, on: a}\n"),
               Equals("t.yaml:2: access[0].deny: must be subscribe or publish (got 'read')"));
    for (const char* bad : {"a/#/b", "a+/b", "a/b#", "\"\"", "'#/'"}) {
        INFO(bad);
        CHECK_THAT(error_of(std::string("access:\n  - deny: publish\n    on: ") + bad),
                   StartsWith("t.yaml:3: access[0].on: not a valid MQTT topic filter"));
    }
}

TEST_CASE("config: auth, roles, users and audit", "[config]") {
    const config c = parse_config(R"(
auth:
  allow_anonymous: false
  password_file: passwd
  wide_subscriptions: filter
  takeover: allowed
  command_subtrees: ["+/+/+/+/+/cmd/#"]
  limits: {connections: 3, publish_rate: 100, publish_bytes_rate: 1MiB, subscriptions: 20, retained: 500,
           retained_bytes: 10MiB}
  login_backoff: {free_attempts: 5, initial_ms: 500, max_ms: 10000}
roles:
  operator:
    - {allow: subscribe, on: "acme/dresden/press-shop/line-2/#"}
    - {allow: command, on: "acme/dresden/press-shop/line-2/#"}
    - deny: command
      on: "acme/+/+/+/safety/#"
  device:
    - {allow: publish, on: "devices/{client_id}/#"}
users:
  olga: [operator]
  anonymous: []
audit: {file: audit.log, topic: "$SYS/broker/audit"}
)",
                                   "/etc/strata/strata.yaml");
    CHECK_FALSE(c.allow_anonymous);
    CHECK_FALSE(c.anonymous_loopback_only);
    CHECK(c.auth.password_file == "/etc/strata/passwd");
    CHECK(c.auth.filter_wide_subscriptions);
    CHECK(c.auth.takeover == auth_config::takeover_policy::allowed);
    CHECK(c.policy.command_subtrees == std::vector<std::string>{"+/+/+/+/+/cmd/#"});
    CHECK(c.auth.limits.connections == 3);
    CHECK(c.auth.limits.publish_rate == 100);
    CHECK(c.auth.limits.publish_bytes_rate == 1024 * 1024);
    CHECK(c.auth.limits.subscriptions == 20);
    CHECK(c.auth.limits.retained == 500);
    CHECK(c.auth.limits.retained_bytes == 10u * 1024 * 1024);
    CHECK(c.auth.login_backoff.free_attempts == 5);
    CHECK(c.auth.login_backoff.initial_ms == 500);
    CHECK(c.auth.login_backoff.max_ms == 10000);
    REQUIRE(c.policy.roles.at("operator").size() == 3);
    CHECK(c.policy.roles.at("operator")[2].deny);
    CHECK(c.policy.roles.at("operator")[2].what == strata::auth::verb::command);
    CHECK(c.policy.roles.at("device")[0].filter == "devices/{client_id}/#");
    CHECK(c.policy.users.at("olga") == std::vector<std::string>{"operator"});
    CHECK(c.policy.users.at("anonymous").empty());
    CHECK(c.audit.file == "/etc/strata/audit.log");
    CHECK(c.audit.topic == "$SYS/broker/audit");

    CHECK_THAT(error_of("users:\n  olga: [operator]\n"),
               Equals("t.yaml:2: users.olga[0]: unknown role 'operator' (not defined under roles:)"));
    CHECK_THAT(error_of("roles:\n  r:\n    - {allow: read, on: a}\n"),
               Equals("t.yaml:3: roles.r[0].allow: must be subscribe, publish, command or admin (got 'read')"));
    CHECK_THAT(error_of("roles:\n  r:\n    - {allow: publish, on: \"a/#/b\"}\n"),
               StartsWith("t.yaml:3: roles.r[0].on: not a valid MQTT topic filter"));
    CHECK_THAT(error_of("roles:\n  r: {allow: publish}\n"),
               Equals("t.yaml:2: roles.r: expected a list, got a map"));
    CHECK_THAT(error_of("roles:\n  r:\n    - {on: a}\n"), Equals("t.yaml:3: roles.r[0]: needs exactly one of 'deny' or 'allow'"));
    CHECK_THAT(error_of("auth: {wide_subscriptions: maybe}"),
               Equals("t.yaml:1: auth.wide_subscriptions: must be refuse or filter (got 'maybe')"));
    CHECK(parse("auth: {takeover: same_identity}").auth.takeover == auth_config::takeover_policy::same_identity);
    CHECK_THAT(error_of("auth: {takeover: always}"),
               Equals("t.yaml:1: auth.takeover: must be same_identity or allowed (got 'always')"));
    CHECK_THAT(error_of("auth: {login_backoff: {initial_ms: 500, max_ms: 100}}"),
               Equals("t.yaml:1: auth.login_backoff: max_ms must be at least initial_ms"));
    CHECK_THAT(error_of("audit: {topic: \"audit/#\"}"),
               Equals("t.yaml:1: audit.topic: must be a topic name, without wildcards (got 'audit/#')"));
    CHECK_THAT(error_of("users: [a]"), Equals("t.yaml:1: users: expected a map of users to lists of roles, got a list"));
    CHECK_THAT(error_of("roles:\n  r: []\n  r: []\n"), Equals("t.yaml:3: roles: duplicate key 'r' (also on line 2)"));
    CHECK_THAT(error_of("users:\n  \"\": [r]\n"), Equals("t.yaml:2: users: names must be non-empty strings"));
}

TEST_CASE("config: password checks", "[config]") {
    const config c = parse("auth:\n  password_checks: {threads: 3, per_address: 2}\n");
    CHECK(c.auth.password_checks.threads == 3);
    CHECK(c.auth.password_checks.per_address == 2);
    CHECK_THAT(error_of("auth: {password_checks: {per_address: 0}}"),
               Equals("t.yaml:1: auth.password_checks.per_address: must be between 1 and 10000 (got 0)"));
    CHECK_THAT(error_of("auth: {password_checks: {threads: 65}}"),
               Equals("t.yaml:1: auth.password_checks.threads: must be between 0 and 64 (got 65)"));
    CHECK_THAT(error_of("auth: {password_checks: {workers: 2}}"),
               StartsWith("t.yaml:1: auth.password_checks: unknown key 'workers'"));
}

TEST_CASE("config: TLS handshakes in progress", "[config]") {
    CHECK(parse("limits: {max_handshakes: 32}").limits.max_handshakes == 32);
    CHECK_THAT(error_of("limits: {max_handshakes: 0}"),
               Equals("t.yaml:1: limits.max_handshakes: must be between 1 and 1000000 (got 0)"));
}

TEST_CASE("config: audit bounds", "[config]") {
    const config c = parse_config(
        "audit: {file: audit.log, max_bytes: 1MiB, keep: 0, refusals_per_second: 0, max_field_bytes: 64}\n",
        "/etc/strata/strata.yaml");
    CHECK(c.audit.max_bytes == 1024 * 1024);
    CHECK(c.audit.keep == 0);
    CHECK(c.audit.refusals_per_second == 0);
    CHECK(c.audit.max_field_bytes == 64);
    CHECK(parse("audit: {max_bytes: 0}").audit.max_bytes == 0);
    CHECK_THAT(error_of("audit: {max_bytes: 100}"),
               Equals("t.yaml:1: audit.max_bytes: must be 0 (never rotate) or at least 4096 bytes (got 100)"));
    CHECK_THAT(error_of("audit: {keep: 1001}"), Equals("t.yaml:1: audit.keep: must be between 0 and 1000 (got 1001)"));
    CHECK_THAT(error_of("audit: {max_field_bytes: 8}"),
               Equals("t.yaml:1: audit.max_field_bytes: must be between 16 and 65535 (got 8)"));
    CHECK_THAT(error_of("audit: {refusals_per_second: -1}"),
               Equals("t.yaml:1: audit.refusals_per_second: must be between 0 and 1000000 (got -1)"));
}

TEST_CASE("config: redirect", "[config]") {
    const config c = parse("redirect: {server_reference: \"b2:1883\"}");
    REQUIRE(c.redirect.has_value());
    CHECK(c.redirect->server_reference == "b2:1883");
    CHECK_FALSE(c.redirect->permanent);
    CHECK_THAT(error_of("redirect: {permanent: true}"),
               Equals("t.yaml:1: redirect: missing required key 'server_reference'"));
    CHECK_THAT(error_of("redirect:\n  server_reference: \"\"\n"),
               Equals("t.yaml:2: redirect.server_reference: must not be empty"));
}

TEST_CASE("config: namespace model", "[config]") {
    CHECK(parse("namespace:\n").namespace_model.empty());
    // Relative to the config file's directory; absolute paths stay.
    CHECK(parse_config("namespace: {model: acme.yaml}", "t.yaml").namespace_model == "acme.yaml");
    CHECK(parse_config("namespace: {model: ns/acme.yaml}", "/etc/strata/strata.yaml").namespace_model ==
          "/etc/strata/ns/acme.yaml");
    CHECK(parse_config("namespace: {model: ../m.yaml}", "/etc/strata/strata.yaml").namespace_model ==
          "/etc/m.yaml");
    CHECK(parse_config("namespace: {model: /srv/m.yaml}", "/etc/strata/strata.yaml").namespace_model ==
          "/srv/m.yaml");
    CHECK_THAT(error_of("namespace: {}"), Equals("t.yaml:1: namespace: missing required key 'model'"));
    CHECK_THAT(error_of("namespace:\n  model: \"\"\n"), Equals("t.yaml:2: namespace.model: must not be empty"));
    CHECK_THAT(error_of("namespace:\n  modle: a.yaml\n"),
               Equals("t.yaml:2: namespace: unknown key 'modle' (did you mean 'model'?)"));
    CHECK_THAT(error_of("namespace:\n  model: [a]\n"),
               Equals("t.yaml:2: namespace.model: expected a string, got a list"));
    CHECK_THAT(error_of("namespace: acme.yaml\n"), Equals("t.yaml:1: namespace: expected a map, got 'acme.yaml'"));

    const temp_dir dir;
    const std::string cfg = dir.write("strata.yaml", "namespace:\n  model: namespace/acme.yaml\n");
    CHECK(load_config(cfg).namespace_model == (dir.path / "namespace/acme.yaml").string());
}

TEST_CASE("config: sparkplug and its defaults", "[config][sparkplug]") {
    const config none = parse_config("sparkplug:\n", "t.yaml");
    CHECK(none.sparkplug.empty());
    const config c = parse_config(
        "sparkplug:\n"
        "  templates: {state: {state: value, ts: source_ts}}\n"
        "  mappings:\n"
        "    - group: dresden\n"
        "      edge_node: \"+\"\n"
        "      device: \"+\"\n"
        "      topic: \"acme/dresden/press-shop/{edge_node}/{device}\"\n"
        "      metrics:\n"
        "        - {name: Temperature, class: telemetry, subtopic: temperature, unit: degC}\n"
        "        - {name: State, class: state, subtopic: \"\"}\n"
        "      commands: [{subtopic: setpoint, metric: Setpoint}]\n",
        "t.yaml");
    REQUIRE(c.sparkplug.size() == 1);
    const sparkplug_config& s = c.sparkplug[0];
    CHECK(s.name == "sparkplug");
    CHECK(s.identity == "sparkplug");
    CHECK(s.certificates);
    CHECK(s.rebirth);
    CHECK(s.retain);
    CHECK(s.qos == 0);
    CHECK(s.max_nodes == 10'000);
    CHECK(s.command_class == "cmd");
    CHECK(s.reply_class == "reply");
    CHECK(s.value_path == std::vector<std::string>{"parameters", "value"});
    REQUIRE(s.templates.count("state") == 1);
    CHECK(s.templates.at("state").keys.size() == 2);
    REQUIRE(s.mappings.size() == 1);
    const auto& m = s.mappings[0];
    CHECK(m.at == "t.yaml:4: sparkplug.mappings[0]");
    CHECK(m.device == "+");
    REQUIRE(m.metrics.size() == 2);
    CHECK(m.metrics[0].unit == "degC");
    CHECK_FALSE(m.metrics[0].at_class);
    CHECK(m.metrics[1].at_class);
    REQUIRE(m.commands.size() == 1);
    CHECK(m.commands[0].metric == "Setpoint");

    CHECK_THAT(error_of("sparkplug:\n  max_aliases_per_node: -1\n"), StartsWith("t.yaml:2: sparkplug.max_aliases_per_node"));
    CHECK_THAT(error_of("sparkplug:\n  mappings:\n    - {group: \"a/b\", topic: x, metrics: [{class: c}]}\n"),
               StartsWith("t.yaml:3: sparkplug.mappings[0].group: expected a Sparkplug id"));
    CHECK_THAT(error_of("sparkplug:\n  mappings:\n    - {topic: x}\n"),
               StartsWith("t.yaml:3: sparkplug.mappings[0]: a mapping needs metrics or commands"));
}

TEST_CASE("config: opcua sources and their defaults", "[config]") {
    const config c = parse_config(
        "persistence: {path: /var/lib/strata}\n"
        "opcua:\n"
        "  - name: press-7\n"
        "    endpoint: \"opc.tcp://10.0.0.5:4840\"\n"
        "    mappings:\n"
        "      - {node: \"ns=2;s=PLC1.Line1.Counter\", topic: a/b/count}\n"
        "      - {browse: Objects/PLC1/Line1, topic_prefix: a/b, sampling_ms: 100, queue_size: 10, deadband: 0.5}\n",
        "/etc/strata/strata.yaml");
    REQUIRE(c.opcua.size() == 1);
    const opcua_config& o = c.opcua[0];
    CHECK(o.policy == "None");
    CHECK(o.mode == "None");
    CHECK_FALSE(o.username.has_value());
    CHECK(o.publish_interval_ms == 1000);
    CHECK(o.qos == 1);
    CHECK(o.retain);
    CHECK_FALSE(o.trust_any);
    CHECK(o.identity == "press-7");
    CHECK(o.pki == "/var/lib/strata/opcua-pki");
    REQUIRE(o.mappings.size() == 2);
    CHECK(o.mappings[0].node == "ns=2;s=PLC1.Line1.Counter");
    CHECK(o.mappings[0].topic == "a/b/count");
    CHECK_FALSE(o.mappings[0].sampling_ms.has_value());
    CHECK(o.mappings[0].queue_size == 1);
    CHECK(o.mappings[0].deadband == 0);
    CHECK(o.mappings[1].browse == "Objects/PLC1/Line1");
    CHECK(o.mappings[1].topic == "a/b");
    CHECK(o.mappings[1].sampling_ms == 100u);
    CHECK(o.mappings[1].queue_size == 10);
    CHECK(o.mappings[1].deadband == 0.5);

    // A relative pki is relative to the config file; a user with a password.
    const config d = parse_config("opcua:\n"
                                  "  - name: p\n"
                                  "    endpoint: \"opc.tcp://h:4840\"\n"
                                  "    pki: pki/plc\n"
                                  "    user: {username: u, password: pw}\n"
                                  "    security: {policy: Aes128_Sha256_RsaOaep, mode: Sign}\n"
                                  "    writes: [{topic: a/cmd/set, node: \"ns=2;i=7\"}]\n",
                                  "/etc/strata/strata.yaml");
    REQUIRE(d.opcua.size() == 1);
    CHECK(d.opcua[0].pki == "/etc/strata/pki/plc");
    CHECK(d.opcua[0].username == "u");
    CHECK(d.opcua[0].password == "pw");
    CHECK(d.opcua[0].policy == "Aes128_Sha256_RsaOaep");
    CHECK(d.opcua[0].mode == "Sign");
    REQUIRE(d.opcua[0].writes.size() == 1);
    CHECK(d.opcua[0].writes[0].node == "ns=2;i=7");
}

TEST_CASE("config: load_config reads files and names them in errors", "[config]") {
    const temp_dir dir;
    const std::string good = dir.write("good.yaml", "threads: 3\n");
    const config c = load_config(good);
    CHECK(c.threads == 3);
    CHECK(c.source_file == good);

    const std::string bad = dir.write("bad.yaml", "threads: 3\nlimits:\n  max_inflight: 0\n");
    CHECK_THROWS_WITH(load_config(bad), Equals(bad + ":3: limits.max_inflight: must be between 1 and 65535 (got 0)"));

    const std::string empty = dir.write("empty.yaml", "");
    check_defaults(load_config(empty));

    CHECK_THROWS_WITH(load_config("x.yaml"), Equals("cannot read config file 'x.yaml': No such file or directory"));
    CHECK_THROWS_WITH(load_config(dir.path.string()),
                      Equals("cannot read config file '" + dir.path.string() + "': Is a directory"));
}

TEST_CASE("config: deploy/strata.yaml loads and gives the documented defaults", "[config]") {
    const std::string path = std::string(STRATA_SOURCE_DIR) + "/deploy/strata.yaml";
    config c;
    REQUIRE_NOTHROW(c = load_config(path));
    check_defaults(c);
    CHECK(c.source_file == path);
}

TEST_CASE("config: web (the explorer)", "[config]") {
    const config c = parse("web: {enabled: false, root: page, max_logins: 5, login_idle_s: 600}\n");
    CHECK_FALSE(c.web.enabled);
    CHECK(c.web.root == "page");
    CHECK(c.web.max_logins == 5);
    CHECK(c.web.login_idle_s == 600);
    CHECK_THAT(error_of("web: {max_logins: 0}\n"), Contains("web.max_logins"));
    CHECK_THAT(error_of("web: {login_idle_s: 5}\n"), Contains("web.login_idle_s"));
    CHECK_THAT(error_of("web: {root: \"\"}\n"), Contains("web.root"));
    CHECK_THAT(error_of("web: {colour: blue}\n"), Contains("unknown key 'colour'"));
}
