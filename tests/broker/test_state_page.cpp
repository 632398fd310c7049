// The state API's pages: the cursor (round trip, and whatever a client
// makes up is refused, never thrown), the limit, and how a message is shown
// (text, base64 for what is not UTF-8, MQTT 5 properties).
#include <catch2/catch.hpp>

#include "broker/core/message.hpp"
#include "broker/ops/state_page.hpp"

#include <nlohmann/json.hpp>

#include <random>
#include <string>

using namespace strata::broker;

TEST_CASE("state cursor: round trip, URL-safe, canonical", "[state]") {
    const std::string long_topic = std::string(300, 'x') + "/y?";
    for (const std::string_view topic : {"a", "acme/dresden/press-shop/line-2/press-7/state", "/", "a//b", "$SYS/x",
                                         "grüße/ü", long_topic.c_str()}) {
        const auto c = ops::encode_cursor(topic);
        CHECK(c.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
        const auto back = ops::decode_cursor(c);
        REQUIRE(back);
        CHECK(*back == topic);
    }
    // Not one encode_cursor makes.
    CHECK_FALSE(ops::decode_cursor(""));
    CHECK_FALSE(ops::decode_cursor("!!"));
    CHECK_FALSE(ops::decode_cursor("abcde"));  // a length base64 cannot have
    CHECK_FALSE(ops::decode_cursor("dA"));     // the tag alone: no topic
    CHECK_FALSE(ops::decode_cursor("eGE"));    // "xa": another tag
    CHECK_FALSE(ops::decode_cursor("dGEvIw"));  // "ta/#": a wildcard is no topic
    CHECK_FALSE(ops::decode_cursor("dGEA"));    // "ta\0"
    CHECK_FALSE(ops::decode_cursor("dP8"));     // "t\xff": not UTF-8
    const auto c = ops::encode_cursor("ab");
    CHECK_FALSE(ops::decode_cursor(c + "="));   // padding is not written
    std::string plus = c;
    plus[0] = '+';
    CHECK_FALSE(ops::decode_cursor(plus));
    // The unused low bits of the last character must be zero.
    const auto one = ops::encode_cursor("a");  // "ta": 3 characters, 2 spare bits
    std::string odd = one;
    odd.back() = static_cast<char>(odd.back() + 1);
    CHECK_FALSE(ops::decode_cursor(odd));

    // Random text: refused or a valid topic, never a throw.
    std::mt19937 rng(5);
    for (int i = 0; i < 5000; ++i) {
        std::string s(std::uniform_int_distribution<int>(0, 12)(rng), ' ');
        for (char& ch : s) ch = "AZaz09-_+/=t!"[std::uniform_int_distribution<int>(0, 12)(rng)];
        if (const auto t = ops::decode_cursor(s)) CHECK(ops::encode_cursor(*t) == s);
    }
}

TEST_CASE("state limit: 1 to max_limit", "[state]") {
    CHECK(ops::parse_limit("1") == 1u);
    CHECK(ops::parse_limit("10000") == ops::max_limit);
    for (const char* bad : {"", "0", "10001", "-1", "+5", "1e3", " 5", "5 ", "abc", "99999999999999999999999"})
        CHECK_FALSE(ops::parse_limit(bad));
}

TEST_CASE("state message: text as is, anything else base64, properties when present", "[state]") {
    core::message m;
    m.topic = "a/b";
    m.payload = "running";
    m.qos = 1;
    m.retain = true;
    auto j = ops::state_json(m);
    CHECK(j["payload"] == "running");
    CHECK(j["payload_encoding"] == "utf-8");
    CHECK(j["received"].is_null());
    CHECK(j["received_ms"].is_null());
    CHECK(j["retain"] == true);
    CHECK_FALSE(j.contains("properties"));

    m.payload = std::string("\xff\x00\x01", 3);
    m.received_ms = 1'700'000'000'123;
    m.props.edit().content_type = "application/octet-stream";
    m.props.edit().payload_format_indicator = 0;
    m.props.edit().user_properties = {{"k", "1"}, {"k", "2"}};
    m.props.edit().correlation_data = std::string("\x00\x01", 2);
    j = ops::state_json(m);
    CHECK(j["payload"] == "/wAB");
    CHECK(j["payload_encoding"] == "base64");
    CHECK(j["received"] == "2023-11-14T22:13:20.123Z");
    CHECK(j["received_ms"] == 1'700'000'000'123);
    CHECK(j["properties"] == nlohmann::json{{"content_type", "application/octet-stream"},
                                            {"payload_format_indicator", 0},
                                            {"user_properties", nlohmann::json::array({nlohmann::json::array({"k", "1"}), nlohmann::json::array({"k", "2"})})},
                                            {"correlation_data", "AAE="}});
    // An overlong form, a surrogate, U+0000: not text as MQTT defines it.
    for (const std::string_view bad : {std::string_view("\xc0\xaf"), std::string_view("\xed\xa0\x80"),
                                       std::string_view("a\0b", 3)}) {
        m.payload = std::string(bad);
        CHECK(ops::state_json(m)["payload_encoding"] == "base64");
    }
    m.payload = "";  // empty text
    CHECK(ops::state_json(m)["payload_encoding"] == "utf-8");
}
