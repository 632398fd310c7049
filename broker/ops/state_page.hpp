// GET /api/v1/state in pages: the cursor, the bounds of a page and how one
// retained message is shown.
//
//   GET /api/v1/state?filter=F[&limit=N][&cursor=C]
//   {"messages": [...], "next_cursor": "..." | null}
//
// Messages come in topic order, level by level (ns::retained_tree::
// match_ordered). `next_cursor` is null on the last page; otherwise the next
// page is asked for with `cursor=` it. The cursor is opaque to clients (the
// last topic of the page, base64url), so a walk from the first page to the
// last returns every retained message matching F exactly once in topic
// order, whatever is published meanwhile (a topic set or cleared during the
// walk may or may not be in it).
//
// A page has at most `limit` messages (default_limit, at most max_limit);
// it may have fewer and still a next_cursor: it also ends after
// page_scan_limit topics were looked at (the read lock on the retained
// store is held for a bounded time however few of them the caller may
// see) and once its messages reach page_bytes (topic + payload).
//
// A message:
//   {"topic": "...", "payload": "...", "payload_encoding": "utf-8" | "base64",
//    "qos": 1, "retain": true, "received": "2026-...Z" | null, "received_ms": ... | null,
//    "properties": {"payload_format_indicator": 1, "content_type": "...",
//                   "response_topic": "...", "correlation_data": "BASE64",
//                   "user_properties": [["key", "value"], ...]}}
// A payload that is not valid UTF-8 (as MQTT defines it: no U+0000, no
// surrogates, no overlong forms) is base64 (RFC 4648, padded). `properties`
// is there when the message carried any of those MQTT 5 properties.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace strata::broker::core {
struct message;
}

namespace strata::broker::ops {

inline constexpr std::size_t default_limit = 1000;
inline constexpr std::size_t max_limit = 10'000;
inline constexpr std::size_t page_scan_limit = 100'000;
inline constexpr std::size_t page_bytes = 16u << 20;

// The cursor of a page that ended after `topic`.
[[nodiscard]] std::string encode_cursor(std::string_view topic);
// The topic a cursor stands for; nullopt when `cursor` is not one
// encode_cursor made (whatever a client sends: never throws).
[[nodiscard]] std::optional<std::string> decode_cursor(std::string_view cursor);

// `limit=` as text: 1..max_limit; nullopt otherwise.
[[nodiscard]] std::optional<std::size_t> parse_limit(std::string_view text);

// One retained message as the state API shows it (see above).
[[nodiscard]] nlohmann::json state_json(const core::message& m);

}  // namespace strata::broker::ops
