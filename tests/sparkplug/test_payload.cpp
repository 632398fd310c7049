#include "helpers.hpp"

#include "bridges/sparkplug/payload.hpp"
#include "bridges/sparkplug/topic.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace strata::bridges::sparkplug;
using namespace strata::bridges::sparkplug::test;

TEST_CASE("a payload survives the wire form", "[sparkplug][payload]") {
    payload p;
    p.timestamp = 1'700'000'000'123;
    p.seq = 7;
    p.uuid = "u-1";
    p.metrics.push_back(named("Temperature", data_type::double_, 21.5, 3));
    p.metrics.push_back(named("Count", data_type::uint32, std::uint64_t{42}));
    p.metrics.push_back(named("Offset", data_type::int16, std::int64_t{-300}));
    p.metrics.push_back(named("Big", data_type::int64, std::int64_t{-5'000'000'000}));
    p.metrics.push_back(named("Running", data_type::boolean, true));
    p.metrics.push_back(named("Mode", data_type::string, std::string("auto")));
    p.metrics.push_back(named("Ratio", data_type::float_, 0.25));
    metric null_metric = named("Missing", data_type::double_, std::monostate{});
    null_metric.is_null = true;
    p.metrics.push_back(null_metric);

    const auto d = decode(encode(p));
    REQUIRE(d.error == decode_error::none);
    CHECK(d.p.timestamp == p.timestamp);
    CHECK(d.p.seq == 7u);
    CHECK(d.p.uuid == "u-1");
    REQUIRE(d.p.metrics.size() == 8);
    const auto& m = d.p.metrics;
    CHECK(m[0].alias == 3u);
    CHECK(typed(m[0], data_type::double_) == value{21.5});
    CHECK(typed(m[1], data_type::uint32) == value{std::uint64_t{42}});
    // Signed types travel as two's complement in the unsigned fields.
    CHECK(m[2].int_field);
    CHECK(typed(m[2], data_type::int16) == value{std::int64_t{-300}});
    CHECK(typed(m[3], data_type::int64) == value{std::int64_t{-5'000'000'000}});
    CHECK(typed(m[4], data_type::boolean) == value{true});
    CHECK(typed(m[5], data_type::string) == value{std::string("auto")});
    CHECK(typed(m[6], data_type::float_) == value{0.25});
    CHECK(m[7].is_null);
    CHECK(std::holds_alternative<std::monostate>(typed(m[7], data_type::double_)));
}

TEST_CASE("a value that does not go with its type reads as none", "[sparkplug][payload]") {
    payload p;
    p.metrics.push_back(named("x", data_type::uint8, std::uint64_t{300}));
    const auto d = decode(encode(p));
    REQUIRE(d.error == decode_error::none);
    CHECK(std::holds_alternative<std::monostate>(typed(d.p.metrics[0], data_type::uint8)));
    CHECK(std::holds_alternative<std::monostate>(typed(d.p.metrics[0], data_type::boolean)));
    CHECK(std::holds_alternative<complex_value>(typed(d.p.metrics[0], data_type::data_set)));
}

TEST_CASE("fits() checks a command's value against the metric's type", "[sparkplug][payload]") {
    CHECK(fits(std::int64_t{127}, data_type::int8) == value{std::int64_t{127}});
    CHECK_FALSE(fits(std::int64_t{128}, data_type::int8));
    CHECK_FALSE(fits(std::int64_t{-1}, data_type::uint32));
    CHECK(fits(std::uint64_t{5}, data_type::int32) == value{std::int64_t{5}});
    CHECK(fits(std::int64_t{5}, data_type::double_) == value{5.0});
    CHECK_FALSE(fits(1.5, data_type::int32));
    CHECK_FALSE(fits(std::string("x"), data_type::boolean));
    CHECK(fits(true, data_type::boolean) == value{true});
    CHECK_FALSE(fits(true, data_type::data_set));
}

TEST_CASE("hostile payloads are refused, never trusted", "[sparkplug][payload][hostile]") {
    payload p = birth(3);
    for (int i = 0; i < 50; ++i) p.metrics.push_back(named("m" + std::to_string(i), data_type::double_, i * 1.5, i));
    const std::string good = encode(p);

    SECTION("every truncation decodes or is malformed") {
        for (std::size_t n = 0; n < good.size(); ++n) {
            const auto d = decode(std::string_view(good).substr(0, n));
            CHECK((d.error == decode_error::none || d.error == decode_error::malformed));
        }
    }
    SECTION("random bytes and flipped bits") {
        std::mt19937 rng(21);
        for (int round = 0; round < 5000; ++round) {
            std::string bytes = good;
            const int flips = 1 + static_cast<int>(rng() % 8);
            for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
            (void)decode(bytes);
            std::string noise(rng() % 200, '\0');
            for (auto& c : noise) c = static_cast<char>(rng());
            (void)decode(noise);
        }
        SUCCEED("no crash");
    }
    SECTION("a length beyond the payload") {
        // field 2 (metrics), length-delimited, length 0x7fffffff, no bytes.
        const std::string bytes("\x12\xff\xff\xff\xff\x07", 6);
        CHECK(decode(bytes).error == decode_error::malformed);
    }
    SECTION("limits") {
        CHECK(decode(good, {.max_bytes = 10}).error == decode_error::too_large);
        CHECK(decode(good, {.max_metrics = 5}).error == decode_error::too_many);
    }
    SECTION("deep nesting") {
        // Metric.template_value (18) holding Template.metrics (2) holding a
        // Metric ..., 500 deep: beyond protobuf's recursion limit.
        const auto delimited = [](std::string tag, const std::string& body) {
            std::size_t n = body.size();
            do {
                tag.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
                n >>= 7;
            } while (n);
            return tag + body;
        };
        std::string metric;
        for (int i = 0; i < 500; ++i) metric = delimited("\x92\x01", delimited("\x12", metric));
        CHECK(decode(delimited("\x12", metric)).error == decode_error::malformed);
    }
}

TEST_CASE("topic names", "[sparkplug][topic]") {
    const auto n = parse_topic("spBv1.0/plant/NDATA/edge-1");
    REQUIRE(n);
    CHECK(n->type == message_type::ndata);
    CHECK(n->group == "plant");
    CHECK(n->edge_node == "edge-1");
    CHECK(n->device.empty());
    const auto d = parse_topic("spBv1.0/plant/DBIRTH/edge-1/press-7");
    REQUIRE(d);
    CHECK(d->type == message_type::dbirth);
    CHECK(d->device == "press-7");
    const auto s = parse_topic("spBv1.0/STATE/scada");
    REQUIRE(s);
    CHECK(s->type == message_type::state);
    CHECK(s->edge_node == "scada");

    for (const char* bad : {"spBv1.0", "spBv1.0/", "spBv1.0/plant", "spBv1.0/plant/NDATA", "spBv1.0/plant/NDATA/",
                            "spBv1.0/plant/NDATA/e/extra", "spBv1.0/plant/DDATA/e", "spBv1.0/plant/DDATA/e/",
                            "spBv1.0/plant/XDATA/e", "spAv1.0/plant/NDATA/e", "spBv1.0//NDATA/e",
                            "spBv1.0/STATE", "spBv1.0/STATE/h/x", "spBv1.0/plant/STATE/e"}) {
        INFO(bad);
        CHECK_FALSE(parse_topic(bad));
    }
    CHECK(topic_name(message_type::dcmd, "plant", "edge-1", "press-7") == "spBv1.0/plant/DCMD/edge-1/press-7");
    CHECK(topic_name(message_type::ncmd, "plant", "edge-1") == "spBv1.0/plant/NCMD/edge-1");
    CHECK(certificate_topic("spBv1.0/plant/NBIRTH/edge-1") == "$sparkplug/certificates/spBv1.0/plant/NBIRTH/edge-1");
}
