// Generated service structures: requests encoded to bytes derived by hand
// from OPC 10000-4/-6, a PublishResponse with a DataChangeNotification
// decoded through the registry, and round trips of every generated type.
#include "generated_samples.hpp"
#include "helpers.hpp"

#include "bridges/opcua/message.hpp"

using namespace strata::bridges::opcua;
using namespace strata::bridges::opcua::test;

namespace {

const bytes epoch_ticks{0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01};  // 1970-01-01T00:00:00Z

request_header sample_request_header(std::uint32_t handle, node_id token) {
    request_header h;
    h.authentication_token = std::move(token);
    h.timestamp = date_time::from_unix_us(0);
    h.request_handle = handle;
    h.timeout_hint = 10000;
    return h;
}

// The RequestHeader above: token bytes, then the fixed fields.
bytes request_header_bytes(const bytes& token, std::uint8_t handle) {
    return token + epoch_ticks +
           bytes{handle, 0x00, 0x00, 0x00,          // request handle
                 0x00, 0x00, 0x00, 0x00,            // return diagnostics: none
                 0xFF, 0xFF, 0xFF, 0xFF,            // audit entry id: null
                 0x10, 0x27, 0x00, 0x00,            // timeout hint 10000 ms
                 0x00, 0x00, 0x00};                 // additional header: null ExtensionObject
}

bytes message_bytes(const auto& msg) {
    bytes out;
    encode_message(msg, out);
    return out;
}

}  // namespace

TEST_CASE("ReadRequest encodes to the bytes of OPC 10000-4 5.10.2", "[opcua][services]") {
    read_request req;
    req.request_header = sample_request_header(7, node_id{1, 1000u});
    req.max_age = 0;
    req.timestamps_to_return = timestamps_to_return::both;
    read_value_id item;
    item.node_id = *node_id::parse("ns=2;s=PLC1.Line1.Counter");
    item.attribute_id = 13;  // Value
    req.nodes_to_read.push_back(item);

    const bytes expected =
        bytes{0x01, 0x00, 0x77, 0x02} +                              // four-byte NodeId i=631 (ReadRequest binary)
        request_header_bytes({0x01, 0x01, 0xE8, 0x03}, 7) +          // token ns=1;i=1000
        bytes{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,        // max age 0.0
              0x02, 0x00, 0x00, 0x00,                                // timestamps to return: Both
              0x01, 0x00, 0x00, 0x00,                                // 1 node to read
              0x03, 0x02, 0x00} +                                    // string NodeId, ns=2
        str("PLC1.Line1.Counter") +
        bytes{0x0D, 0x00, 0x00, 0x00,                                // attribute id 13 (Value)
              0xFF, 0xFF, 0xFF, 0xFF,                                // index range: null
              0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};                   // data encoding: ns 0, null name
    CHECK(message_bytes(req) == expected);

    const decoded_message m = decode_message(expected);
    INFO(m.outcome.error);
    REQUIRE(m.outcome.ok);
    REQUIRE(m.as<read_request>() != nullptr);
    CHECK(*m.as<read_request>() == req);
    CHECK(m.body->type_name() == "ReadRequest");
    for (std::size_t n = 0; n < expected.size(); ++n) CHECK_FALSE(decode_message(std::span(expected.data(), n)).outcome.ok);
}

TEST_CASE("CreateSessionRequest encodes to bytes derived by hand", "[opcua][services]") {
    create_session_request req;
    req.request_header = sample_request_header(1, node_id{});
    req.client_description.application_uri = "urn:strata";
    req.client_description.product_uri = "urn:strata";
    req.client_description.application_name.text = "Strata";
    req.client_description.application_type = application_type::client;
    req.endpoint_url = "opc.tcp://127.0.0.1:4840";
    req.session_name = "s1";
    req.client_nonce = std::vector<std::uint8_t>{0xAA, 0xBB, 0xCC, 0xDD};
    req.requested_session_timeout = 60000.0;

    const bytes expected =
        bytes{0x01, 0x00, 0xCD, 0x01} +                              // i=461 (CreateSessionRequest binary)
        request_header_bytes({0x00, 0x00}, 1) +                      // null token (two-byte i=0)
        str("urn:strata") + str("urn:strata") +                      // application and product URI
        bytes{0x02} + str("Strata") +                                // application name: text only
        bytes{0x01, 0x00, 0x00, 0x00,                                // application type: Client
              0xFF, 0xFF, 0xFF, 0xFF,                                // gateway server URI: null
              0xFF, 0xFF, 0xFF, 0xFF,                                // discovery profile URI: null
              0x00, 0x00, 0x00, 0x00,                                // discovery URLs: none
              0xFF, 0xFF, 0xFF, 0xFF} +                              // server URI: null
        str("opc.tcp://127.0.0.1:4840") + str("s1") +                // endpoint URL, session name
        bytes{0x04, 0x00, 0x00, 0x00, 0xAA, 0xBB, 0xCC, 0xDD,        // client nonce
              0xFF, 0xFF, 0xFF, 0xFF,                                // client certificate: null
              0x00, 0x00, 0x00, 0x00, 0x00, 0x4C, 0xED, 0x40,        // requested timeout 60000.0 ms
              0x00, 0x00, 0x00, 0x00};                               // max response size: no limit
    CHECK(message_bytes(req) == expected);
    const decoded_message m = decode_message(expected);
    REQUIRE(m.as<create_session_request>() != nullptr);
    CHECK(*m.as<create_session_request>() == req);
}

TEST_CASE("PublishResponse with a DataChangeNotification inside", "[opcua][services]") {
    data_change_notification dcn;
    monitored_item_notification item;
    item.client_handle = 5;
    item.value.value = variant{1.5};
    item.value.source_timestamp = date_time::from_unix_us(0);
    dcn.monitored_items.push_back(item);

    publish_response resp;
    resp.response_header.timestamp = date_time::from_unix_us(0);
    resp.response_header.request_handle = 3;
    resp.subscription_id = 1;
    resp.available_sequence_numbers = {1};
    resp.notification_message.sequence_number = 1;
    resp.notification_message.publish_time = date_time::from_unix_us(0);
    resp.notification_message.notification_data.push_back(make_extension_object(dcn));

    const bytes dcn_body = bytes{0x01, 0x00, 0x00, 0x00,            // 1 monitored item
                                 0x05, 0x00, 0x00, 0x00,            // client handle 5
                                 0x05,                              // DataValue: value + source timestamp
                                 0x0B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F} +  // Double 1.5
                           epoch_ticks +                            // source timestamp
                           bytes{0x00, 0x00, 0x00, 0x00};           // no diagnostic infos
    REQUIRE(dcn_body.size() == 30);
    const bytes expected =
        bytes{0x01, 0x00, 0x3D, 0x03} +                              // i=829 (PublishResponse binary)
        epoch_ticks +                                                // response header: timestamp
        bytes{0x03, 0x00, 0x00, 0x00,                                // request handle 3
              0x00, 0x00, 0x00, 0x00,                                // service result Good
              0x00,                                                  // service diagnostics: empty
              0x00, 0x00, 0x00, 0x00,                                // string table: none
              0x00, 0x00, 0x00,                                      // additional header: null
              0x01, 0x00, 0x00, 0x00,                                // subscription id 1
              0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,        // available sequence numbers [1]
              0x00,                                                  // more notifications: false
              0x01, 0x00, 0x00, 0x00} +                              // notification sequence number 1
        epoch_ticks +                                                // publish time
        bytes{0x01, 0x00, 0x00, 0x00,                                // 1 notification
              0x01, 0x00, 0x2B, 0x03,                                // i=811 (DataChangeNotification binary)
              0x01,                                                  // ByteString body
              0x1E, 0x00, 0x00, 0x00} +                              // body length 30
        dcn_body +
        bytes{0x00, 0x00, 0x00, 0x00,                                // results: none
              0x00, 0x00, 0x00, 0x00};                               // diagnostic infos: none
    CHECK(message_bytes(resp) == expected);

    // Decoded through the registry: the notification comes back as the struct.
    const decoded_message m = decode_message(expected);
    INFO(m.outcome.error);
    REQUIRE(m.as<publish_response>() != nullptr);
    const publish_response& got = *m.as<publish_response>();
    CHECK(got == resp);
    REQUIRE(got.notification_message.notification_data.size() == 1);
    const auto* n = body_as<data_change_notification>(got.notification_message.notification_data[0]);
    REQUIRE(n != nullptr);
    CHECK(n->monitored_items.at(0).client_handle == 5);
    CHECK(*n->monitored_items.at(0).value.value->get_if<double>() == 1.5);

    // Without a registry the body stays opaque and re-encodes unchanged.
    bytes body(expected.begin() + 4, expected.end());
    const publish_response opaque = decode_exact<publish_response>(body);
    const extension_object& eo = opaque.notification_message.notification_data.at(0);
    CHECK(eo.decoded == nullptr);
    CHECK(eo.type_id == node_id{0, 811u});
    CHECK(eo.body == dcn_body);
    CHECK(encode_to_bytes(opaque) == body);

    // A corrupt notification body fails the whole message, with the offset inside it.
    bytes bad = expected;
    bad[expected.size() - 8 - dcn_body.size() + 8] = 0xC0;  // DataValue mask with reserved bits
    const decoded_message b = decode_message(bad);
    CHECK_FALSE(b.outcome.ok);
    CHECK(std::string(b.outcome.error) == "DataValue reserved bits set");
    CHECK(b.outcome.offset == expected.size() - 8 - dcn_body.size() + 9);  // just after the mask
}

TEST_CASE("decode_message refuses unknown types and trailing bytes", "[opcua][services]") {
    CHECK(std::string(decode_message(bytes{0x01, 0x00, 0x01, 0x00}).outcome.error) == "unknown message type");
    CHECK(std::string(decode_message(bytes{0x00, 0x00}).outcome.error) == "unknown message type");
    bytes close = message_bytes(close_session_request{});
    close.push_back(0);
    CHECK(std::string(decode_message(close).outcome.error) == "trailing bytes");
}

TEST_CASE("enumerations have their specification names", "[opcua][services]") {
    CHECK(to_string(message_security_mode::sign_and_encrypt) == "SignAndEncrypt");
    CHECK(to_string(timestamps_to_return::both) == "Both");
    CHECK(to_string(static_cast<node_class>(3)) == "?");
    CHECK(static_cast<int>(node_class::variable) == 2);
}

TEST_CASE("every generated structure round-trips with non-default values", "[opcua][services]") {
    int count = 0;
    for_each_generated_type([&count](auto value) {
        using T = decltype(value);
        sample(value, 1);
        INFO(T::type_name);
        CHECK_FALSE(value == T{});
        const bytes b = encode_to_bytes(value);
        CHECK(decode_exact<T>(b, &standard_types()) == value);
        // Wrapped in an ExtensionObject it comes back decoded as T.
        const extension_object eo = decode_exact<extension_object>(encode_to_bytes(make_extension_object(value)),
                                                                   &standard_types());
        REQUIRE(body_as<T>(eo) != nullptr);
        CHECK(*body_as<T>(eo) == value);
        // Truncated anywhere: a clean failure.
        for (std::size_t n = 0; n < b.size(); n += 1 + n / 16) {
            T out;
            CHECK_FALSE(decode_from(std::span(b.data(), n), out, {}, &standard_types()).ok);
        }
        ++count;
    });
    CHECK(count == 75);
}
