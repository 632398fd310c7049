// Secure channel helpers that need no peer: endpoint URL parsing.
#include "bridges/opcua/channel.hpp"

#include <catch2/catch.hpp>

using namespace strata::bridges::opcua;

TEST_CASE("endpoint URLs: host, port (default 4840), path ignored, IPv6 brackets", "[opcua][channel]") {
    auto a = parse_endpoint_url("opc.tcp://127.0.0.1:4841/UA/Server");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == "4841");
    a = parse_endpoint_url("opc.tcp://plc-7");
    REQUIRE(a);
    CHECK(a->host == "plc-7");
    CHECK(a->port == "4840");
    a = parse_endpoint_url("opc.tcp://[::1]:4842/x");
    REQUIRE(a);
    CHECK(a->host == "::1");
    CHECK(a->port == "4842");
    a = parse_endpoint_url("opc.tcp://[::1]");
    REQUIRE(a);
    CHECK(a->port == "4840");
}

TEST_CASE("endpoint URLs: other schemes, empty hosts and bad ports are refused", "[opcua][channel]") {
    for (const char* bad : {"http://h:1", "opc.tcp://", "opc.tcp://:4840", "opc.tcp://h:0", "opc.tcp://h:65536",
                            "opc.tcp://h:12x", "opc.tcp://[::1", "opc.tcp://h:"}) {
        INFO(bad);
        CHECK_FALSE(parse_endpoint_url(bad));
    }
}
