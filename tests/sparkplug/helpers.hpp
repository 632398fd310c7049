// Payloads for the Sparkplug tests, built with the library's encoder.
#pragma once

#include "bridges/sparkplug/payload.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace strata::bridges::sparkplug::test {

inline metric named(std::string name, data_type t, value v, std::optional<std::uint64_t> alias = std::nullopt) {
    metric m;
    m.name = std::move(name);
    m.datatype = t;
    m.alias = alias;
    m.v = std::move(v);
    return m;
}

inline metric aliased(std::uint64_t alias, value v) {
    metric m;
    m.alias = alias;
    m.v = std::move(v);
    return m;
}

// A payload through the wire form and back, as the broker sees it.
inline payload wire(const payload& p) {
    auto d = decode(encode(p));
    return d.p;
}

inline payload birth(std::uint64_t bd_seq, std::uint64_t seq = 0) {
    payload p;
    p.timestamp = 1'700'000'000'000;
    p.seq = seq;
    p.metrics.push_back(named("bdSeq", data_type::int64, std::uint64_t{bd_seq}));
    return p;
}

}  // namespace strata::bridges::sparkplug::test
