// A catalogue of valid packets of every type, for stream and round-trip
// tests and for the fuzz seed corpus (tests/fuzz/gen_corpus.cpp). No Catch2
// here. 3.1.1 samples leave every 5.0-only field at its default, so they
// decode back equal.
#pragma once

#include "broker/codec/packet.hpp"

#include <string>
#include <utility>
#include <vector>

namespace strata::mqtt::samples {

inline properties publish_props() {
    properties p;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 3600;
    p.content_type = "application/json";
    p.response_topic = "acme/reply";
    p.correlation_data = std::string("\x00\x01\xFF", 3);
    p.subscription_identifiers = {1, 268'435'455};
    p.topic_alias = 3;
    p.user_properties = {{"unit", "C"}, {"unit", "K"}, {"src", "plc-7"}};
    return p;
}

inline std::vector<std::pair<std::string, packet>> named(protocol_version v) {
    const bool v5 = v == protocol_version::v5;
    std::vector<std::pair<std::string, packet>> out;
    const auto add = [&](std::string name, packet p) { out.emplace_back(std::move(name), std::move(p)); };

    {
        connect c;
        c.version = v;
        c.client_id = "press-7";
        c.keep_alive = 30;
        add("connect_minimal", c);
        c.clean_start = false;
        c.username = "operator";
        c.password = std::string("s\x00\xFFt", 4);
        will_message w;
        w.topic = "acme/dresden/press-7/state";
        w.payload = "offline";
        w.qos = 1;
        w.retain = true;
        if (v5) {
            w.props.will_delay_interval = 10;
            w.props.payload_format_indicator = 1;
            w.props.content_type = "text/plain";
            w.props.user_properties = {{"a", "b"}};
            c.props.session_expiry_interval = 0xFFFFFFFF;
            c.props.receive_maximum = 100;
            c.props.maximum_packet_size = 1 << 20;
            c.props.topic_alias_maximum = 10;
            c.props.request_response_information = 1;
            c.props.request_problem_information = 0;
            c.props.authentication_method = "SCRAM-SHA-256";
            c.props.authentication_data = std::string("\x01\x02", 2);
            c.props.user_properties = {{"site", "dresden"}};
        }
        c.will = w;
        add("connect_full", c);
        if (v5) {
            connect e;
            e.version = v;
            e.password = "token-only";  // 5.0 allows a password without a user name
            add("connect_password_only", e);
        }
    }
    {
        connack a;
        add("connack_success", a);
        a.session_present = true;
        add("connack_session_present", a);
        connack r;
        r.code = reason_code::not_authorized;
        if (v5) {
            r.code = reason_code::quota_exceeded;
            r.props.reason_string = "too many";
        }
        add("connack_refused", r);
        if (v5) {
            connack f;
            f.props.session_expiry_interval = 60;
            f.props.receive_maximum = 65535;
            f.props.maximum_qos = 1;
            f.props.retain_available = 0;
            f.props.maximum_packet_size = 65536;
            f.props.assigned_client_identifier = "auto-1234";
            f.props.topic_alias_maximum = 16;
            f.props.reason_string = "welcome";
            f.props.user_properties = {{"x", "y"}};
            f.props.wildcard_subscription_available = 1;
            f.props.subscription_identifier_available = 1;
            f.props.shared_subscription_available = 0;
            f.props.server_keep_alive = 45;
            f.props.response_information = "acme/resp/";
            f.props.server_reference = "other:1883";
            f.props.authentication_method = "SCRAM-SHA-256";
            f.props.authentication_data = "srv";
            add("connack_all_properties", f);
        }
    }
    {
        publish p;
        p.topic = "acme/dresden/press-shop/line-2/cell-1/press-7/temperature";
        p.payload = "{\"v\":21.5}";
        add("publish_qos0", p);
        p.qos = 1;
        p.packet_id = 1;
        p.retain = true;
        add("publish_qos1_retain", p);
        p.qos = 2;
        p.dup = true;
        p.packet_id = 65535;
        p.payload.clear();
        add("publish_qos2_dup_empty", p);
        publish big;
        big.topic = "big";
        big.payload.assign(300, 'z');  // two-byte remaining length
        add("publish_big", big);
        if (v5) {
            publish q;
            q.topic = "acme/x";
            q.qos = 1;
            q.packet_id = 7;
            q.payload = "h\xC3\xA9llo";
            q.props = publish_props();
            add("publish_props", q);
            publish a;  // empty topic with a topic alias
            a.payload = "aliased";
            a.props.topic_alias = 3;
            add("publish_alias_only", a);
        }
    }
    {
        puback a;
        a.packet_id = 1;
        add("puback", a);
        pubrec b;
        b.packet_id = 2;
        add("pubrec", b);
        pubrel c;
        c.packet_id = 3;
        add("pubrel", c);
        pubcomp d;
        d.packet_id = 4;
        add("pubcomp", d);
        if (v5) {
            puback e;
            e.packet_id = 5;
            e.code = reason_code::no_matching_subscribers;
            add("puback_reason", e);
            pubrec f;
            f.packet_id = 6;
            f.code = reason_code::quota_exceeded;
            f.props.reason_string = "full";
            f.props.user_properties = {{"k", "v"}};
            add("pubrec_props", f);
            pubrel g;
            g.packet_id = 7;
            g.code = reason_code::packet_identifier_not_found;
            add("pubrel_reason", g);
            pubcomp h;
            h.packet_id = 8;
            h.props.reason_string = "ok";
            add("pubcomp_props", h);
        }
    }
    {
        subscribe s;
        s.packet_id = 10;
        s.subscriptions = {{"acme/+/press-shop/#", {1}}, {"$SYS/broker/uptime", {0}}, {"a", {2}}};
        add("subscribe", s);
        if (v5) {
            subscribe t;
            t.packet_id = 11;
            t.props.subscription_identifiers = {42};
            t.props.user_properties = {{"role", "analyst"}};
            t.subscriptions = {{"acme/+/+/+/+/+/oee", {1, true, true, 2}}, {"$share/g/x", {2, false, false, 1}}};
            add("subscribe_v5", t);
        }
        suback a;
        a.packet_id = 10;
        a.codes = {reason_code::granted_qos_1, reason_code::success, reason_code::granted_qos_2,
                   reason_code::unspecified_error};
        if (v5) {
            a.codes.push_back(reason_code::not_authorized);
            a.codes.push_back(reason_code::wildcard_subscriptions_not_supported);
            a.props.reason_string = "partly";
        }
        add("suback", a);
        unsubscribe u;
        u.packet_id = 12;
        u.filters = {"acme/#", "b"};
        if (v5) u.props.user_properties = {{"why", "done"}};
        add("unsubscribe", u);
        unsuback ua;
        ua.packet_id = 12;
        if (v5) {
            ua.codes = {reason_code::success, reason_code::no_subscription_existed};
            ua.props.reason_string = "ok";
        }
        add("unsuback", ua);
    }
    add("pingreq", pingreq{});
    add("pingresp", pingresp{});
    add("disconnect", disconnect{});
    if (v5) {
        disconnect d;
        d.code = reason_code::disconnect_with_will;
        add("disconnect_reason", d);
        d.code = reason_code::server_moved;
        d.props.server_reference = "broker-2:1883";
        d.props.session_expiry_interval = 0;
        d.props.reason_string = "moved";
        add("disconnect_props", d);
        add("auth_empty", auth{});
        auth a;
        a.code = reason_code::continue_authentication;
        a.props.authentication_method = "SCRAM-SHA-256";
        a.props.authentication_data = std::string("\x00\x10\x20", 3);
        add("auth", a);
        auth b;
        b.code = reason_code::reauthenticate;
        add("auth_reauth", b);
    }
    return out;
}

inline std::vector<packet> all(protocol_version v) {
    std::vector<packet> out;
    for (auto& [name, p] : named(v)) out.push_back(std::move(p));
    return out;
}

}  // namespace strata::mqtt::samples
