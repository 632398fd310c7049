// The explorer's page (broker/web), built into the binary by
// broker/embed_web.cmake: one entry per file, in name order.
#pragma once

#include <span>
#include <string_view>

namespace strata::broker::ops {

struct web_asset {
    std::string_view name;  // "index.html", "explorer.js"
    std::string_view body;
};

[[nodiscard]] std::span<const web_asset> built_in_assets() noexcept;

}  // namespace strata::broker::ops
