// The explorer's page, logins, and the endpoints only it needs.
#include "broker/ops/explorer.hpp"

#include "broker/codec/codec.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/core/security.hpp"
#include "broker/ops/state_page.hpp"
#include "broker/ops/web_assets.hpp"

#include "auth/crypto.hpp"
#include "auth/policy.hpp"
#include "namespace/model.hpp"
#include "namespace/model_schema.hpp"
#include "namespace/topic.hpp"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace strata::broker::ops {

namespace http = boost::beast::http;
using nlohmann::json;

// ---- logins ---------------------------------------------------------------

namespace {

// URL-safe base64 without padding (RFC 4648 section 5): a token fits in a
// header as it is.
std::string base64url(std::string_view bytes) {
    std::string s = auth::base64_encode(bytes);
    while (!s.empty() && s.back() == '=') s.pop_back();
    std::replace(s.begin(), s.end(), '+', '-');
    std::replace(s.begin(), s.end(), '/', '_');
    return s;
}

}  // namespace

web_logins::web_logins(std::size_t max, std::chrono::seconds idle) : max_(max), idle_(idle) {}

void web_logins::erase_locked(table::iterator it) {
    const auto own = by_identity_.find(it->second.identity);
    if (own != by_identity_.end()) {
        std::erase(own->second, it->first);
        if (own->second.empty()) by_identity_.erase(own);
    }
    by_hash_.erase(it);
}

void web_logins::expire_locked(clock::time_point now) {
    if (now - swept_ < std::chrono::seconds(1)) return;
    swept_ = now;
    for (auto it = by_hash_.begin(); it != by_hash_.end();) {
        const auto next = std::next(it);
        if (now - it->second.used >= idle_) erase_locked(it);
        it = next;
    }
}

std::optional<std::string> web_logins::open(std::string identity, clock::time_point now) {
    const std::string token = base64url(auth::random_bytes(16));
    std::string hash = auth::sha256(token);
    std::lock_guard lock(mutex_);
    // The identity's own logins first: beyond its share, its least recently
    // used one ends.
    if (const auto own = by_identity_.find(identity);
        own != by_identity_.end() && own->second.size() >= max_per_identity) {
        auto oldest = by_hash_.end();
        for (const auto& h : own->second) {
            const auto it = by_hash_.find(h);
            if (it != by_hash_.end() && (oldest == by_hash_.end() || it->second.used < oldest->second.used)) oldest = it;
        }
        if (oldest != by_hash_.end()) erase_locked(oldest);
    }
    if (by_hash_.size() >= max_) expire_locked(now);
    if (by_hash_.size() >= max_) return std::nullopt;
    by_identity_[identity].push_back(hash);
    by_hash_.emplace(std::move(hash), entry{std::move(identity), now});
    return token;
}

std::optional<std::string> web_logins::find(std::string_view token, clock::time_point now) {
    const std::string hash = auth::sha256(token);
    std::lock_guard lock(mutex_);
    const auto it = by_hash_.find(hash);
    if (it == by_hash_.end()) return std::nullopt;
    if (now - it->second.used >= idle_) {
        erase_locked(it);
        return std::nullopt;
    }
    it->second.used = now;
    return it->second.identity;
}

void web_logins::close(std::string_view token) {
    const std::string hash = auth::sha256(token);
    std::lock_guard lock(mutex_);
    if (const auto it = by_hash_.find(hash); it != by_hash_.end()) erase_locked(it);
}

std::size_t web_logins::size() const {
    std::lock_guard lock(mutex_);
    return by_hash_.size();
}

// ---- the page -------------------------------------------------------------

namespace {

std::string_view content_type(std::string_view name) {
    const auto dot = name.rfind('.');
    const std::string_view ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (ext == "html") return "text/html; charset=utf-8";
    if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
    if (ext == "css") return "text/css; charset=utf-8";
    if (ext == "svg") return "image/svg+xml";
    if (ext == "png") return "image/png";
    if (ext == "json") return "application/json";
    return "application/octet-stream";
}

bool page_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    });
}

std::optional<std::string> read_file(const std::string& root, std::string_view name) {
    std::ifstream in(root + "/" + std::string(name), std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return std::move(out).str();
}

}  // namespace

std::optional<admin_api::response> page_file(std::string_view path, const std::string& root, unsigned version) {
    constexpr std::string_view dir = "/web/";
    std::string_view name;
    if (path == "/" || path == "/index.html") name = "index.html";
    else if (path.starts_with(dir)) name = path.substr(dir.size());
    else return std::nullopt;
    if (!page_name(name)) return error_response(http::status::not_found, "no such file of the page", version);
    std::optional<std::string> body;
    if (root.empty()) {
        for (const auto& a : built_in_assets())
            if (a.name == name) body = std::string(a.body);
    } else {
        body = read_file(root, name);
    }
    if (!body) return error_response(http::status::not_found, "no such file of the page", version);
    admin_api::response res{http::status::ok, version};
    res.set(http::field::server, "strata");
    res.set(http::field::content_type, content_type(name));
    res.set(http::field::cache_control, "no-cache");
    res.set("Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.body() = std::move(*body);
    res.prepare_payload();
    return res;
}

// ---- /api/v1/me -------------------------------------------------------------

namespace {

json expected_period(const ns::data_class& c) {
    if (!c.expected_period) return nullptr;
    return static_cast<double>(c.expected_period->count()) / 1000.0;
}

bool may_admin(const admin_caller& who) {
    if (who.login == "admin-certificate") return true;
    return who.grants != nullptr && who.grants->may_admin("api/v1/bridges");
}

}  // namespace

admin_api::response me_response(const core::broker_core& core, const admin_caller& who, unsigned version) {
    json out{{"identity", who.identity.empty() ? std::string(auth::anonymous_identity) : who.identity},
             {"login", who.login},
             {"roles", who.grants ? json(who.grants->roles()) : json::array()},
             {"roles_active", who.grants != nullptr},
             {"may_admin", may_admin(who)},
             {"model", nullptr}};
    if (const ns::model* m = core.model()) {
        json levels = json::array();
        for (const auto& l : m->levels()) levels.push_back(l.name);
        json classes = json::object();
        for (const auto& c : m->classes()) {
            classes[c.name] = {{"command", c.command},
                               {"retain", std::string(ns::to_string(c.retain))},
                               {"expected_period_s", expected_period(c)}};
        }
        out["model"] = {{"name", std::filesystem::path(m->source()).filename().string()},
                        {"levels", std::move(levels)},
                        {"classes", std::move(classes)},
                        {"dead_letter", m->dead_letter_prefix()}};
    }
    return json_response(http::status::ok, out, version);
}

// ---- /api/v1/topic ---------------------------------------------------------

namespace {

// May `who` see T: a topic it may receive, or a node of the tree with a
// subtree it may subscribe to at least in part.
bool visible(const admin_caller& who, const std::string& t) {
    if (!who.grants) return true;
    if (who.grants->may_receive(t)) return true;
    return who.grants->may_subscribe(t + "/#") != auth::subscribe_verdict::refused;
}

json schema_of(const ns::data_class* c) {
    if (c == nullptr || !c->schema) return nullptr;
    return c->schema->document();
}

// The class named `name` when it may follow node `t` (T/NAME/x reads as it).
const ns::data_class* class_after(const ns::model& m, const std::string& t, const ns::data_class& c) {
    const std::string probe = t + "/" + c.name + "/x";
    const auto v = m.read(probe);
    return v.klass == &c && !v.violation() ? &c : nullptr;
}

}  // namespace

admin_api::response topic_response(core::broker_core& core, const admin_caller& who, std::string_view target,
                                   unsigned version) {
    const auto topic = query_param(target, "topic");
    if (!topic || topic->empty())
        return error_response(http::status::bad_request, "missing ?topic=TOPIC", version);
    if (topic->size() > 65'000 || !ns::valid_topic_name(*topic) || !mqtt::valid_utf8(*topic))
        return error_response(http::status::bad_request, "not a valid MQTT topic name", version);
    const std::string& t = *topic;
    if (!visible(who, t)) {
        return json_response(http::status::forbidden,
                             {{"error", "this identity may not subscribe to this topic"}, {"topic", t}}, version);
    }
    json out{{"topic", t},       {"levels", json::array()}, {"class", nullptr},     {"free", false},
             {"schema", nullptr}, {"verdict", nullptr},      {"retained", nullptr},  {"may_command", false},
             {"command", nullptr}};

    // The retained message, if the caller may receive it.
    core::message_ptr retained;
    if (!who.grants || who.grants->may_receive(t)) {
        const auto page = core.routes().read_retained_page(t, nullptr, 1, 1, page_bytes, [](std::string_view) { return true; });
        if (!page.messages.empty() && page.messages.front()->topic == t) retained = page.messages.front();
    }
    if (retained) out["retained"] = state_json(*retained);

    const ns::model* m = core.model();
    const bool command_topic = core.is_command(t);
    out["may_command"] = command_topic && (!who.grants || who.grants->may_publish(t, true));
    if (m == nullptr) return json_response(http::status::ok, out, version);

    const auto reading = m->read(t);
    out["free"] = reading.result == ns::outcome::free;
    for (std::size_t i = 0; i < m->levels().size(); ++i) {
        const auto name = reading.level(i);
        if (!name.empty()) out["levels"].push_back({{"level", m->levels()[i].name}, {"name", std::string(name)}});
    }
    if (reading.klass != nullptr) {
        out["class"] = reading.klass->name;
        out["schema"] = schema_of(reading.klass);
    }
    if (retained) {
        const auto v = m->evaluate(t, retained->payload, true);
        if (v.violation()) out["verdict"] = {{"ok", false}, {"reason", v.reason}, {"mode", std::string(ns::to_string(v.mode))}};
        else out["verdict"] = {{"ok", true}};
    }
    // The command the node's subtree takes: a command class that may
    // follow T, when the caller holds the command grant there.
    if (reading.klass == nullptr) {
        for (const auto& c : m->classes()) {
            if (!c.command || class_after(*m, t, c) == nullptr) continue;
            const std::string prefix = t + "/" + c.name + "/";
            if (who.grants && !who.grants->may_publish(prefix + "x", true)) continue;
            json reply = nullptr;
            if (const auto* r = m->find_class("reply"); r != nullptr && !r->command && class_after(*m, t, *r) != nullptr)
                reply = t + "/reply/";
            out["command"] = {{"topic_prefix", prefix}, {"reply_prefix", reply}, {"class", c.name}, {"schema", schema_of(&c)}};
            out["may_command"] = true;
            break;
        }
    }
    return json_response(http::status::ok, out, version);
}

}  // namespace strata::broker::ops
