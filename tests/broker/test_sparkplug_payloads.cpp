// Sparkplug metric values as the namespace's JSON (broker/hosts/sparkplug_json.hpp).
#include "broker/hosts/sparkplug_json.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace strata::broker;
using namespace strata::broker::hosts;
namespace sp = strata::bridges::sparkplug;
using nlohmann::json;

namespace {

constexpr std::int64_t t0 = 1'767'225'600'123;  // 2026-01-01T00:00:00.123Z

opcua_template template_of(std::vector<std::pair<std::string, opcua_template::field>> keys) {
    opcua_template t;
    for (auto& [name, f] : keys) t.keys.push_back({name, f, {"good", "uncertain", "bad"}});
    return t;
}

}  // namespace

TEST_CASE("sparkplug values as JSON", "[sparkplug][json]") {
    CHECK(*sparkplug_to_json(sp::value{std::int64_t{-7}}) == json(-7));
    CHECK(*sparkplug_to_json(sp::value{std::uint64_t{42}}) == json(42));
    // Beyond 2^53 a JSON reader's double loses digits: a string.
    CHECK(*sparkplug_to_json(sp::value{std::uint64_t{18'446'744'073'709'551'615u}}) == json("18446744073709551615"));
    CHECK(*sparkplug_to_json(sp::value{std::numeric_limits<double>::quiet_NaN()}) == json("NaN"));
    CHECK(*sparkplug_to_json(sp::value{-std::numeric_limits<double>::infinity()}) == json("-Infinity"));
    CHECK(*sparkplug_to_json(sp::value{true}) == json(true));
    CHECK(*sparkplug_to_json(sp::value{std::string("idle")}) == json("idle"));
    CHECK(sparkplug_to_json(sp::value{std::monostate{}})->is_null());
    CHECK_FALSE(sparkplug_to_json(sp::value{sp::complex_value{}}));

    // As parsed from a command: non-negative integers are unsigned.
    CHECK(sparkplug_from_json(json::parse("-3")) == sp::value{std::int64_t{-3}});
    CHECK(sparkplug_from_json(json::parse("3")) == sp::value{std::uint64_t{3}});
    CHECK(sparkplug_from_json(json(2.5)) == sp::value{2.5});
    CHECK_FALSE(sparkplug_from_json(json::object()));
    CHECK_FALSE(sparkplug_from_json(json(nullptr)));
}

TEST_CASE("sparkplug payloads: the default shape and templates", "[sparkplug][json]") {
    CHECK(sparkplug_payload(json(21.5), sparkplug_quality::good, t0, t0 + 5, nullptr, "degC") ==
          R"({"value":21.5,"ts":"2026-01-01T00:00:00.123Z","quality":"good","unit":"degC"})");
    // No source time: when it was received.
    CHECK(sparkplug_payload(json(nullptr), sparkplug_quality::bad, 0, t0, nullptr, "") ==
          R"({"value":null,"ts":"2026-01-01T00:00:00.123Z","quality":"bad"})");
    using f = opcua_template::field;
    const auto state = template_of({{"state", f::value}, {"ts", f::source_ts}});
    CHECK(sparkplug_payload(json("running"), sparkplug_quality::good, t0, t0, &state, "degC") ==
          R"({"state":"running","ts":"2026-01-01T00:00:00.123Z"})");
    const auto all = template_of({{"v", f::value}, {"at", f::server_ts}, {"q", f::status}, {"n", f::status_name},
                                  {"c", f::status_code}, {"u", f::unit}});
    CHECK(sparkplug_payload(json(1), sparkplug_quality::bad, t0, t0 + 1000, &all, "") ==
          R"({"v":1,"at":"2026-01-01T00:00:01.123Z","q":"bad","n":"Bad","c":2147483648})");
    CHECK(sparkplug_payload(json(1), sparkplug_quality::uncertain, t0, t0, &all, "") ==
          R"({"v":1,"at":"2026-01-01T00:00:00.123Z","q":"uncertain","n":"UncertainLastUsableValue","c":1083179008})");
    // A source time from the network that is no time: when it was received.
    CHECK(sparkplug_payload(json(1), sparkplug_quality::good, std::numeric_limits<std::uint64_t>::max(), t0, nullptr, "") ==
          R"({"value":1,"ts":"2026-01-01T00:00:00.123Z","quality":"good"})");
    // Text that is not UTF-8 is replaced, never thrown.
    CHECK_NOTHROW(sparkplug_payload(json(std::string("bad\xff")), sparkplug_quality::good, t0, t0, nullptr, ""));
}
