// The admin API's endpoints.
#include "broker/ops/http_admin.hpp"

#include "broker/hosts/bridge_host.hpp"
#include "broker/hosts/opcua_host.hpp"
#include "broker/hosts/sparkplug_host.hpp"
#include "broker/codec/codec.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/net/connection.hpp"
#include "broker/ops/explorer.hpp"
#include "broker/ops/state_page.hpp"
#include "namespace/topic.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace strata::broker::ops {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding of a path segment or query value ('+' is a space in a
// query); nullopt for a malformed escape.
std::optional<std::string> url_decode(std::string_view in, bool query) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (query && in[i] == '+') {
            out += ' ';
        } else {
            out += in[i];
        }
    }
    return out;
}

json session_json(const core::session& s) {
    const auto pressure = s.pressure();
    return {{"client_id", s.client_id()},
            {"identity", s.identity()},
            {"connected", s.connected()},
            {"queued", s.queued_messages()},
            {"inflight", s.inflight_messages()},
            {"dropped", s.dropped()},
            // Back-pressure: publishers its full queue holds now; whether the
            // slow-consumer policy acted on it, and what it dropped as one.
            {"publishers_held", pressure.publishers_held},
            {"slow_consumer", pressure.slow},
            {"slow_consumer_dropped", pressure.slow_dropped},
            {"retained_pending", s.replay_pending()},
            {"subscriptions", s.subscription_count()},
            {"expiry_interval", s.expiry_interval()}};
}

// One subscription as subscribed ("filter", with a "$share/GROUP/" prefix
// for a shared one), its options, identifier (null: none) and shared group
// (null: not shared).
json subscription_json(const std::string& client_id, const std::string& filter, const core::subscription_entry& e) {
    ns::shared_filter shared;
    const bool is_shared = ns::parse_shared(filter, shared) == ns::share_parse::shared;
    return {{"client_id", client_id},
            {"filter", filter},
            {"qos", e.options.qos},
            {"no_local", e.options.no_local},
            {"retain_as_published", e.options.retain_as_published},
            {"retain_handling", e.options.retain_handling},
            {"subscription_identifier", e.identifier == 0 ? json(nullptr) : json(e.identifier)},
            {"shared_group", is_shared ? json(std::string(shared.group)) : json(nullptr)}};
}

// The time, or null for 0 (not recorded).
json time_json(std::int64_t ms) { return ms <= 0 ? json(nullptr) : json(iso_time(ms)); }

json bridge_json(const hosts::bridge_status& b) {
    return {{"name", b.name},
            {"connected", b.connected},
            {"backlog", {{"messages", b.backlog_messages}, {"bytes", b.backlog_bytes},
                         {"in_store_only", b.backlog_in_store_only},
                         {"oldest_age_seconds", b.oldest_backlog_seconds}}},
            {"last_ack", time_json(b.last_ack_ms)},
            {"connects", b.connects},
            {"messages", {{"forwarded", b.forwarded}, {"received", b.received}, {"dropped", b.dropped},
                          {"refused", b.refused}, {"superseded", b.superseded}, {"loops", b.loops},
                          {"denied", b.denied}}},
            {"last_error", b.last_error}};
}

json opcua_json(const hosts::opcua_status& o) {
    return {{"name", o.name},          {"connected", o.connected}, {"items", o.items},
            {"values", o.values},      {"denied", o.denied},       {"errors", o.errors},
            {"writes", o.writes},      {"write_errors", o.write_errors},
            {"connects", o.connects},  {"last_error", o.last_error}};
}

// GET /api/v1/sparkplug: the host's counters and every edge node with its devices.
json sparkplug_json(const hosts::sparkplug_status& s) {
    json nodes = json::array();
    for (const auto& n : s.nodes) nodes.push_back(hosts::sparkplug_node_json(n));
    return {{"name", s.name},
            {"messages", {{"taken", s.messages}, {"malformed", s.malformed}, {"births", s.births},
                          {"deaths", s.deaths}, {"stale_deaths", s.stale_deaths}, {"no_birth", s.no_birth},
                          {"refused", s.refused}, {"dropped", s.dropped}}},
            {"seq_gaps", s.seq_gaps},
            {"metrics", {{"mapped", s.mapped}, {"unmapped", s.unmapped}, {"denied", s.denied},
                         {"unknown_alias", s.unknown_aliases}}},
            {"commands", {{"sent", s.commands}, {"refused", s.command_errors}, {"rebirths", s.rebirths}}},
            {"nodes_online", s.nodes_online},
            {"nodes_offline", s.nodes_offline},
            {"devices_online", s.devices_online},
            {"devices_offline", s.devices_offline},
            {"nodes", std::move(nodes)}};
}

// The answer to a reload (POST /api/v1/reload, a change of a source).
json reload_json(const reload_report& r) {
    json changed = json::object();
    for (const auto& [section, what] : r.changes.live) changed[section] = what;
    json body{{"reloaded", r.reloaded()},
              {"failed", r.failed},
              {"changed", std::move(changed)},
              {"needs_restart", r.changes.needs_restart}};
    if (!r.error.empty()) body["error"] = r.error;
    return body;
}

// The sources file (config.hpp, sources_file): {"bridges": [...], "opcua":
// [...]}. Its text goes to `text` (empty when there is no file yet).
json read_sources(const std::string& path, std::string& text) {
    text.clear();
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) return json::object();
        throw std::runtime_error("cannot read " + path);
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        throw std::runtime_error(path + " is not the JSON object the admin API writes (edited by hand?)");
    return doc;
}

// Replaces `path` by `text` at once (a new file renamed over it).
void write_file(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw std::runtime_error("cannot replace " + path + ": " + ec.message());
}

// An entry as shown: passwords left out.
json masked(json entry) {
    if (entry.is_object()) {
        for (auto& [key, value] : entry.items()) {
            if (key == "password" && value.is_string()) value = "(set)";
            else value = masked(std::move(value));
        }
    } else if (entry.is_array()) {
        for (auto& value : entry) value = masked(std::move(value));
    }
    return entry;
}

}  // namespace

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == key) {
            return eq == std::string_view::npos ? std::optional<std::string>("") : url_decode(pair.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
}


admin_api::response json_response(http::status status, const json& body, unsigned version) {
    admin_api::response res{status, version};
    res.set(http::field::server, "strata");
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    res.prepare_payload();
    return res;
}

std::string iso_time(std::int64_t ms) {
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

admin_api::response error_response(http::status status, std::string_view message, unsigned version) {
    return json_response(status, {{"error", message}}, version);
}

namespace {

// Runs `work` on `queue` under `key` and resumes the calling coroutine on
// its executor with the result; nullopt when the queue refused the job
// (`key`'s share or the total is taken) or `work` threw (logged).
template <class T>
asio::awaitable<std::optional<T>> run_on(auth::fair_queue& queue, const std::string& key, std::function<T()> work) {
    using result = std::optional<T>;
    const auto ex = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(result)>(
        [&queue, &key, ex](auto handler, std::function<T()> w) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            auto r = std::make_shared<result>();
            std::function<void()> job = [r, w = std::move(w)] {
                try {
                    *r = w();
                } catch (const std::exception& e) {
                    spdlog::error("admin API: a state read failed: {}", e.what());
                }
            };
            // Resumed once the job's slot is free: the caller's next read
            // is never refused by this one.
            std::function<void()> then = [h, r, ex] {
                asio::post(ex, [h, r]() mutable { std::move(*h)(std::move(*r)); });
            };
            if (!queue.post(key, std::move(job), std::move(then)))
                asio::post(ex, [h]() mutable { std::move(*h)(result()); });
        },
        asio::use_awaitable, std::move(work));
}

}  // namespace

admin_api::admin_api(core::broker_core& core)
    : core_(core),
      reads_(std::make_unique<auth::fair_queue>(auth::fair_queue::options{
          .threads = state_threads,
          .per_key = max_state_reads_per_caller,
          .total = max_state_reads,
          .nice = state_nice})) {}

admin_api::~admin_api() { stop(); }

void admin_api::stop() { reads_->stop(); }

void admin_api::audit(const admin_caller& who, std::string_view action, std::string_view outcome,
                      std::string_view target, std::string_view client_id, std::string_view reason) const {
    if (!core_.auditing()) return;
    auth::audit_event e;
    e.action = action;
    e.outcome = outcome;
    e.identity = who.identity;
    e.roles = who.grants ? &who.grants->roles() : nullptr;
    e.address = who.address;
    e.client_id = client_id;
    e.topic = target;
    e.reason = reason;
    core_.audit(e);
}

namespace {

// limit= and cursor= of a paged read; an error message when malformed.
struct page_query {
    std::size_t limit = default_limit;
    std::optional<std::string> after;
    std::string error;
};

page_query read_page_query(std::string_view target) {
    page_query q;
    if (const auto text = query_param(target, "limit")) {
        const auto n = parse_limit(*text);
        if (!n) q.error = "limit must be a whole number from 1 to " + std::to_string(max_limit);
        else q.limit = *n;
    }
    if (const auto text = query_param(target, "cursor")) {
        q.after = decode_cursor(*text);
        if (!q.after) q.error = "not a cursor of this API: pass next_cursor of the previous page as it is";
    }
    return q;
}

// An alert's subject, from its topic $SYS/broker/alerts/KIND/SUBJECT.
constexpr std::string_view alerts_prefix = "$SYS/broker/alerts/";

}  // namespace

asio::awaitable<admin_api::response> admin_api::read_page(const admin_caller& who, std::string filter,
                                                          std::optional<std::string> after, std::size_t limit,
                                                          std::function<bool(std::string_view)> visible,
                                                          std::function<json(const core::message&)> show,
                                                          std::string_view key, unsigned v) const {
    // On a state thread: the walk under the retained store's read lock
    // (bounded by the page), then the JSON.
    const core::router& routes = core_.routes();
    std::function<response()> work = [&routes, filter = std::move(filter), after = std::move(after), limit,
                                       visible = std::move(visible), show = std::move(show), key = std::string(key), v] {
        try {
            const auto page = routes.read_retained_page(filter, after ? &*after : nullptr, limit, page_scan_limit,
                                                        page_bytes, visible);
            json items = json::array();
            for (const auto& m : page.messages) {
                json item = show(*m);
                if (!item.is_null()) items.push_back(std::move(item));
            }
            return json_response(http::status::ok,
                                 {{key, std::move(items)},
                                  {"next_cursor", page.next ? json(encode_cursor(*page.next)) : json(nullptr)}},
                                 v);
        } catch (const std::bad_alloc&) {
            spdlog::error("admin API: out of memory reading the retained messages of '{}'", filter);
            return error_response(http::status::internal_server_error, "out of memory reading the state", v);
        }
    };
    auto answer = co_await run_on(*reads_, who.identity, std::move(work));
    if (!answer) {
        auto res = error_response(http::status::service_unavailable,
                                  "too many state reads in progress; retry in 1 s", v);
        res.set(http::field::retry_after, "1");
        co_return res;
    }
    co_return std::move(*answer);
}

asio::awaitable<admin_api::response> admin_api::read_state(const net::http_request& req, const admin_caller& who) const {
    const std::string_view target = req.target();
    const unsigned v = req.version();
    auto bad = [&](std::string message) { return error_response(http::status::bad_request, message, v); };
    const auto filter = query_param(target, "filter");
    if (!filter || filter->empty()) co_return bad("missing ?filter=TOPIC-FILTER");
    if (!ns::valid_topic_filter(*filter) || !mqtt::valid_utf8(*filter))
        co_return bad("not a valid MQTT topic filter: " + *filter);
    auto q = read_page_query(target);
    if (!q.error.empty()) co_return bad(q.error);
    // class=C: only topics the model reads as data class C.
    std::optional<std::string> klass = query_param(target, "class");
    if (klass) {
        const ns::model* m = core_.model();
        if (m == nullptr || m->find_class(*klass) == nullptr) co_return bad("no data class '" + *klass + "' in the namespace model");
    }
    // fields=topic: the topics without their messages.
    bool topics_only = false;
    if (const auto fields = query_param(target, "fields")) {
        if (*fields != "topic" && *fields != "all") co_return bad("fields must be topic or all");
        topics_only = *fields == "topic";
    }
    auto grants = who.grants;
    if (grants) {
        const auto verdict = grants->may_subscribe(*filter);
        if (verdict == auth::subscribe_verdict::refused) {
            spdlog::info("admin API: state of '{}' refused to '{}': no subscribe grant", *filter, who.identity);
            audit(who, "admin-state", "refused", *filter, {}, "no subscribe grant covers this filter");
            co_return json_response(http::status::forbidden,
                                    {{"error", "this identity may not subscribe to this filter"},
                                     {"identity", who.identity},
                                     {"filter", *filter}},
                                    v);
        }
        // Granted in full: every topic of the filter may be received.
        if (verdict == auth::subscribe_verdict::full) grants = nullptr;
    }
    const core::broker_core& core = core_;
    std::function<bool(std::string_view)> visible = [grants, klass, &core](std::string_view topic) {
        if (grants && !grants->may_receive(topic)) return false;
        if (!klass) return true;
        const ns::model* m = core.model();  // this state thread's copy
        if (m == nullptr) return false;
        const auto reading = m->read(topic);
        return reading.klass != nullptr && reading.klass->name == *klass;
    };
    std::function<json(const core::message&)> show = [topics_only](const core::message& m) {
        return topics_only ? json{{"topic", m.topic}} : state_json(m);
    };
    auto answer = co_await read_page(who, *filter, std::move(q.after), q.limit, std::move(visible), std::move(show),
                                     "messages", v);
    co_return answer;
}

asio::awaitable<admin_api::response> admin_api::read_alerts(const net::http_request& req, const admin_caller& who) const {
    const unsigned v = req.version();
    auto q = read_page_query(req.target());
    if (!q.error.empty()) co_return error_response(http::status::bad_request, q.error, v);
    auto grants = who.grants;
    const bool admin = who.login == "admin-certificate" || !grants || grants->may_admin("api/v1/alerts");
    // Who sees an alert: a stale topic's, whoever may receive the topic; a
    // subtree's rate, whoever may subscribe to some of it; the rest (client
    // ids, Sparkplug edge nodes) are for administrators.
    std::function<bool(std::string_view)> visible = [grants, admin](std::string_view topic) {
        if (!topic.starts_with(alerts_prefix)) return false;
        const std::string_view rest = topic.substr(alerts_prefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) return false;
        const std::string_view kind = rest.substr(0, slash);
        const std::string subject(rest.substr(slash + 1));
        if (!grants) return true;
        if (kind == "stale") return grants->may_receive(subject);
        if (kind == "spike" || kind == "drop") return grants->may_subscribe(subject + "/#") != auth::subscribe_verdict::refused;
        return admin;
    };
    std::function<json(const core::message&)> show = [](const core::message& m) {
        json alert = json::parse(m.payload, nullptr, false);
        if (!alert.is_object() || !alert.value("active", false)) return json(nullptr);
        return alert;
    };
    auto answer = co_await read_page(who, std::string(alerts_prefix) + "#", std::move(q.after), q.limit, std::move(visible),
                                     std::move(show), "alerts", v);
    co_return answer;
}

asio::awaitable<admin_api::response> admin_api::respond(const net::http_request& req, const admin_caller& who) const {
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    const unsigned v = req.version();
    const bool get = req.method() == http::verb::get;
    const bool post = req.method() == http::verb::post;
    auto wrong_method = [&](const char* allowed) {
        return error_response(http::status::method_not_allowed, std::string("use ") + allowed, v);
    };

    if (path == "/api/v1/sessions") {
        if (!get) co_return wrong_method("GET");
        json out = json::array();
        for (const auto& s : core_.all_sessions()) out.push_back(session_json(*s));
        co_return json_response(http::status::ok, out, v);
    }
    if (path == "/api/v1/clients") {
        if (!get) co_return wrong_method("GET");
        json out = json::array();
        for (const auto& s : core_.all_sessions())
            if (s->connected()) out.push_back(session_json(*s));
        co_return json_response(http::status::ok, out, v);
    }
    if (path == "/api/v1/subscriptions") {
        if (!get) co_return wrong_method("GET");
        std::optional<std::string> only;
        if (target.find('?') != std::string_view::npos) {
            only = query_param(target, "client_id");
            if (!only) co_return error_response(http::status::bad_request, "malformed or unknown query; use ?client_id=ID", v);
        }
        json out = json::array();
        for (const auto& s : core_.all_sessions()) {
            if (only && s->client_id() != *only) continue;
            auto subs = s->subscriptions();
            std::sort(subs.begin(), subs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
            for (const auto& [filter, e] : subs) out.push_back(subscription_json(s->client_id(), filter, e));
        }
        co_return json_response(http::status::ok, out, v);
    }
    if (path == "/api/v1/bridges") {
        if (!get) co_return wrong_method("GET");
        json out = json::array();
        if (bridges != nullptr)
            for (const auto& b : bridges->status()) out.push_back(bridge_json(b));
        co_return json_response(http::status::ok, out, v);
    }
    if (path == "/api/v1/opcua") {
        if (!get) co_return wrong_method("GET");
        json out = json::array();
        if (opcua != nullptr)
            for (const auto& o : opcua->status()) out.push_back(opcua_json(o));
        co_return json_response(http::status::ok, out, v);
    }
    if (path == "/api/v1/sparkplug") {
        if (!get) co_return wrong_method("GET");
        json out = json::array();
        if (sparkplug != nullptr)
            for (const auto& s : sparkplug->status()) out.push_back(sparkplug_json(s));
        co_return json_response(http::status::ok, out, v);
    }
    // (An array, not an initializer list: GCC 12 cannot keep the latter's
    // array alive across the co_await.)
    static constexpr std::array<std::string_view, 2> source_kinds{"bridges", "opcua"};
    for (const std::string_view kind : source_kinds) {
        const std::string prefix = "/api/v1/" + std::string(kind) + "/";
        if (!path.starts_with(prefix) || path.size() == prefix.size()) continue;
        const auto name = url_decode(path.substr(prefix.size()), false);
        if (!name || name->find('/') != std::string::npos)
            co_return error_response(http::status::bad_request, "malformed name", v);
        // Arguments as named values: GCC 12 destroys the temporaries of a
        // co_await expression twice.
        std::string kind_name(kind);
        auto entry = source_entry(req, who, std::move(kind_name), std::move(*name));
        auto answer = co_await std::move(entry);
        co_return answer;
    }
    if (path == "/api/v1/state") {
        if (!get) co_return wrong_method("GET");
        auto answer = co_await read_state(req, who);
        co_return answer;
    }
    if (path == "/api/v1/alerts") {
        if (!get) co_return wrong_method("GET");
        auto answer = co_await read_alerts(req, who);
        co_return answer;
    }
    if (path == "/api/v1/me") {
        if (!get) co_return wrong_method("GET");
        co_return me_response(core_, who, v);
    }
    if (path == "/api/v1/topic") {
        if (!get) co_return wrong_method("GET");
        co_return topic_response(core_, who, target, v);
    }
    if (path == "/api/v1/reload") {
        if (!post) co_return wrong_method("POST");
        spdlog::info("admin API: '{}' asks for a reload", who.identity);
        reload_report r;
        if (reload) {
            auto reloaded = reload({}, {});
            r = co_await std::move(reloaded);
        }
        std::string reason = r.error.empty() ? "" : "config not reloaded: " + r.error;
        for (const auto& part : r.failed) reason += (reason.empty() ? "failed to reload: " : ", ") + part;
        audit(who, "admin-reload", "allowed", path, {}, reason);
        // A config that does not load is the request's to fix: 422.
        co_return json_response(r.error.empty() ? http::status::ok : http::status::unprocessable_entity,
                                reload_json(r), v);
    }
    constexpr std::string_view clients = "/api/v1/clients/";
    constexpr std::string_view disconnect = "/disconnect";
    if (path.starts_with(clients) && path.ends_with(disconnect) && path.size() > clients.size() + disconnect.size()) {
        if (!post) co_return wrong_method("POST");
        const auto id = url_decode(path.substr(clients.size(), path.size() - clients.size() - disconnect.size()), false);
        if (!id) co_return error_response(http::status::bad_request, "malformed client id", v);
        for (const auto& s : core_.all_sessions()) {
            if (s->client_id() != *id) continue;
            if (auto c = s->owner()) {
                spdlog::info("admin API: '{}' disconnects client '{}'", who.identity, *id);
                c->kick(mqtt::reason_code::administrative_action);
                audit(who, "admin-disconnect", "allowed", path, *id, {});
                co_return json_response(http::status::accepted, {{"disconnected", *id}}, v);
            }
        }
        co_return json_response(http::status::not_found, {{"error", "no connected client with this id"}, {"client_id", *id}}, v);
    }
    co_return json_response(http::status::not_found, {{"error", "no such admin endpoint"}, {"path", std::string(path)}}, v);
}

asio::awaitable<admin_api::response> admin_api::source_entry(const net::http_request& req, const admin_caller& who,
                                                            std::string kind, std::string name) const {
    const unsigned v = req.version();
    const auto method = req.method();
    const std::string path(req.target().substr(0, req.target().find('?')));
    if (method != http::verb::get && method != http::verb::put && method != http::verb::delete_)
        co_return error_response(http::status::method_not_allowed, "use GET, PUT or DELETE", v);
    const bool bridge = kind == "bridges";
    // What the config in force says (copied: the coroutine outlives this handler).
    std::string file, config_file;
    bool configured = false;
    {
        const config& c = core_.cfg();
        file = c.sources_file;
        config_file = c.source_file;
        if (bridge) configured = std::any_of(c.bridges.begin(), c.bridges.end(), [&](const auto& b) { return b.name == name; });
        else configured = std::any_of(c.opcua.begin(), c.opcua.end(), [&](const auto& o) { return o.name == name; });
    }
    std::string before;
    json doc = json::object();
    if (!file.empty()) {
        try {
            doc = read_sources(file, before);
        } catch (const std::exception& e) {
            co_return error_response(http::status::conflict, e.what(), v);
        }
    }
    json& list = doc[kind];
    if (!list.is_array()) list = json::array();
    const auto kept = std::find_if(list.begin(), list.end(), [&](const json& e) {
        return e.is_object() && e.contains("name") && e["name"] == name;
    });
    const bool by_api = kept != list.end();

    if (method == http::verb::get) {
        if (!configured) co_return json_response(http::status::not_found, {{"error", "no such " + std::string(bridge ? "bridge" : "OPC UA source")}, {"name", name}}, v);
        json out{{"name", name}, {"kept_by", by_api ? "admin API (" + file + ")" : config_file}, {"status", nullptr}};
        if (bridge && bridges != nullptr)
            for (const auto& b : bridges->status())
                if (b.name == name) out["status"] = bridge_json(b);
        if (!bridge && opcua != nullptr)
            for (const auto& o : opcua->status())
                if (o.name == name) out["status"] = opcua_json(o);
        if (by_api) out["config"] = masked(*kept);
        co_return json_response(http::status::ok, out, v);
    }

    if (file.empty())
        co_return error_response(http::status::conflict,
                                 "the config names no sources_file: the admin API cannot change bridges or OPC UA "
                                 "sources (docs/operations.md)", v);
    if (configured && !by_api)
        co_return error_response(http::status::conflict, "'" + name + "' is defined in " + config_file + "; change it there", v);
    std::string what;
    if (method == http::verb::delete_) {
        if (!by_api) co_return json_response(http::status::not_found, {{"error", "not kept by the admin API"}, {"name", name}}, v);
        list.erase(kept);
        what = "removed";
    } else {
        json entry = json::parse(req.body(), nullptr, false);
        if (entry.is_discarded() || !entry.is_object())
            co_return error_response(http::status::bad_request, "the body must be a JSON object: the entry as under `" + kind + ":`", v);
        if (entry.contains("name") && entry["name"] != name)
            co_return error_response(http::status::bad_request, "the entry's name differs from the one in the path", v);
        entry["name"] = name;
        if (by_api) *kept = std::move(entry);
        else list.push_back(std::move(entry));
        what = by_api ? "changed" : "added";
    }
    spdlog::info("admin API: '{}' {} {} '{}'", who.identity, what == "removed" ? "removes" : what == "added" ? "adds" : "changes",
                 bridge ? "bridge" : "OPC UA source", name);
    const std::string after = doc.dump(2) + "\n";
    const bool existed = !before.empty();
    reload_report r;
    if (reload) {
        // Named, not temporaries of the co_await expression (GCC 12
        // destroys those twice).
        std::function<void()> edit = [file, after] { write_file(file, after); };
        std::function<void()> undo = [file, before, existed] {
            if (existed) {
                write_file(file, before);
            } else {
                std::error_code ec;
                std::filesystem::remove(file, ec);  // it did not exist: nothing to keep
            }
        };
        auto reloaded = reload(std::move(edit), std::move(undo));
        r = co_await std::move(reloaded);
    }
    audit(who, bridge ? "admin-bridge" : "admin-opcua", r.error.empty() ? "allowed" : "failed", path, {},
          r.error.empty() ? what : "not " + what + ": " + r.error);
    co_return json_response(r.error.empty() ? http::status::ok : http::status::unprocessable_entity, reload_json(r), v);
}

}  // namespace strata::broker::ops
