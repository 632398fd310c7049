// SUBSCRIBE and UNSUBSCRIBE, including retained messages sent on subscribe
// (paced by the session: session.hpp).
#include "auth/access.hpp"
#include "broker/core/router.hpp"
#include "broker/core/stats.hpp"
#include "broker/net/client_protocol.hpp"
#include "namespace/topic.hpp"

#include <spdlog/spdlog.h>

#include <string_view>
#include <unordered_map>

namespace strata::broker::net {

void client_protocol::handle_subscribe(mqtt::subscribe& s) {
    using mqtt::reason_code;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    const auto& limits = core_.cfg().limits;
    mqtt::suback ack;
    ack.packet_id = s.packet_id;
    ack.codes.reserve(s.subscriptions.size());

    const std::uint32_t identifier =
        s.props.subscription_identifiers.empty() ? 0 : s.props.subscription_identifiers.front();

    // Retained messages go out after the SUBACK; collect them first.
    struct retained_send {
        std::string filter;
        core::subscription_entry entry;
    };
    std::vector<retained_send> retained;

    // A filter listed twice is one subscription: a repeated filter replaces
    // the subscription [MQTT-3.8.4-3], so the last one wins and the earlier
    // ones get its reason code (one code per filter listed).
    std::vector<std::size_t> same_as;  // index of the last listing of each filter
    {
        std::unordered_map<std::string_view, std::size_t> last;
        last.reserve(s.subscriptions.size());
        for (std::size_t i = 0; i < s.subscriptions.size(); ++i) last[s.subscriptions[i].filter] = i;
        if (last.size() != s.subscriptions.size()) {
            same_as.resize(s.subscriptions.size());
            for (std::size_t i = 0; i < s.subscriptions.size(); ++i) same_as[i] = last[s.subscriptions[i].filter];
        }
    }

    // The smaller of the broker-wide and the per-identity limit (0: none).
    const std::uint32_t per_identity = core_.cfg().auth.limits.subscriptions;
    std::uint32_t max_subscriptions = limits.max_subscriptions_per_client;
    if (per_identity != 0 && (max_subscriptions == 0 || per_identity < max_subscriptions)) max_subscriptions = per_identity;

    for (std::size_t i = 0; i < s.subscriptions.size(); ++i) {
        auto& req = s.subscriptions[i];
        if (!same_as.empty() && same_as[i] != i) {
            ack.codes.push_back(reason_code::success);  // set below, to the last listing's code
            continue;
        }
        ns::shared_filter shared;
        const auto kind = ns::parse_shared(req.filter, shared);
        const std::string_view filter = kind == ns::share_parse::shared ? shared.filter : req.filter;
        if (kind == ns::share_parse::invalid || !ns::valid_topic_filter(filter)) {
            ack.codes.push_back(v5 ? reason_code::topic_filter_invalid : reason_code::unspecified_error);
            continue;
        }
        if (kind == ns::share_parse::shared && req.options.no_local) {
            fail(reason_code::protocol_error, "No Local on a shared subscription");
            return;
        }
        if (!core_.access().may_subscribe(filter)) {
            spdlog::debug("{} '{}': subscription to '{}' refused", remote_, client_id_, req.filter);
            ack.codes.push_back(reason_code::unspecified_error);
            continue;
        }
        // Roles: a subscription wider than the grants is refused, or (with
        // auth.wide_subscriptions: filter) accepted with every message
        // checked before delivery.
        bool filtered = false;
        if (grants_) {
            const auto verdict = grants_->may_subscribe(filter);
            filtered = verdict == auth::subscribe_verdict::checked ||
                       (verdict == auth::subscribe_verdict::partial && (core_.security().filter_wide_subscriptions() || filter_wide_));
            if (verdict == auth::subscribe_verdict::refused || (verdict == auth::subscribe_verdict::partial && !filtered)) {
                spdlog::debug("{} '{}': subscription to '{}' not granted", remote_, client_id_, req.filter);
                audit("subscribe", "refused", req.filter, "not authorized");
                ack.codes.push_back(v5 ? reason_code::not_authorized : reason_code::unspecified_error);
                continue;
            }
        }
        if (max_subscriptions != 0 && session_->subscription_count() >= max_subscriptions) {
            ack.codes.push_back(v5 ? reason_code::quota_exceeded : reason_code::unspecified_error);
            continue;
        }
        if (bridge_client_ && !v5 && kind != ns::share_parse::shared) {
            req.options.no_local = true;
            req.options.retain_as_published = true;
        }
        const core::subscription_entry entry{req.options, identifier, filtered};
        bool is_new = false;
        if (kind == ns::share_parse::shared) {
            is_new = core_.routes().subscribe_shared(session_.get(), shared.group, shared.filter, entry);
        } else {
            is_new = core_.routes().subscribe(session_.get(), req.filter, entry);
        }
        session_->remember_subscription(req.filter, entry);
        ack.codes.push_back(static_cast<reason_code>(req.options.qos));

        // Retained messages are not sent for shared subscriptions.
        const auto rh = req.options.retain_handling;
        if (kind != ns::share_parse::shared && (rh == 0 || (rh == 1 && is_new))) {
            retained.push_back({req.filter, entry});
        }
    }
    if (!same_as.empty()) {
        for (std::size_t i = 0; i < same_as.size(); ++i) ack.codes[i] = ack.codes[same_as[i]];
    }
    // A persistent session's subscriptions are on disk before the SUBACK.
    send_when_durable(ack, 0);

    for (const auto& r : retained) session_->replay_retained(r.filter, r.entry);
}

void client_protocol::handle_unsubscribe(mqtt::unsubscribe& u) {
    using mqtt::reason_code;
    mqtt::unsuback ack;
    ack.packet_id = u.packet_id;
    for (const auto& filter : u.filters) {
        ns::shared_filter shared;
        const auto kind = ns::parse_shared(filter, shared);
        bool removed = false;
        if (kind == ns::share_parse::shared) {
            removed = core_.routes().unsubscribe_shared(session_.get(), shared.group, shared.filter);
        } else if (kind == ns::share_parse::not_shared && ns::valid_topic_filter(filter)) {
            removed = core_.routes().unsubscribe(session_.get(), filter);
        } else {
            ack.codes.push_back(reason_code::topic_filter_invalid);
            continue;
        }
        session_->forget_subscription(filter);
        ack.codes.push_back(removed ? reason_code::success : reason_code::no_subscription_existed);
    }
    if (version_ != mqtt::protocol_version::v5) ack.codes.clear();
    send_when_durable(ack, 0);
}

}  // namespace strata::broker::net
