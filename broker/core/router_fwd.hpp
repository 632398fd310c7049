// The router's retained-message slot, as sessions hold it (router.hpp).
#pragma once

#include <memory>

namespace strata::broker::core {

struct retained_slot;
using retained_ref = std::shared_ptr<retained_slot>;

}  // namespace strata::broker::core
