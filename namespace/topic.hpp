// Topic names and topic filters (MQTT 3.1.1 section 4.7, 5.0 section 4.7/4.8).
//
// A topic name is what a PUBLISH carries: non-empty, no wildcards. A topic
// filter is what a SUBSCRIBE carries: '+' matches exactly one level, '#'
// matches the rest (including the parent level), each must occupy a whole
// level and '#' must be last. Topics starting with '$' are not matched by a
// filter whose first level is a wildcard. Shared subscriptions are written
// "$share/{group}/{filter}".
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace strata::ns {

[[nodiscard]] bool valid_topic_name(std::string_view topic) noexcept;
[[nodiscard]] bool valid_topic_filter(std::string_view filter) noexcept;
[[nodiscard]] bool has_wildcard(std::string_view filter) noexcept;

struct shared_filter {
    std::string_view group;   // non-empty, no '+', '#' or '/'
    std::string_view filter;  // a valid topic filter
};

enum class share_parse { not_shared, shared, invalid };

// Splits "$share/group/filter". Returns not_shared for any other filter,
// invalid for "$share/" forms that break the rules (empty or wildcard group,
// missing or invalid filter).
[[nodiscard]] share_parse parse_shared(std::string_view filter, shared_filter& out) noexcept;

// True when `filter` (valid) matches `topic` (valid), with the '$' rule.
[[nodiscard]] bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

// The filter that matches exactly the topics both (valid) filters match, or
// nullopt when no topic matches both: "acme/dresden/#" and "+/+/+/+/cmd/#"
// give "acme/dresden/+/+/cmd/#"; "a/#" and "a" give "a".
[[nodiscard]] std::optional<std::string> filter_intersection(std::string_view a, std::string_view b);

}  // namespace strata::ns
