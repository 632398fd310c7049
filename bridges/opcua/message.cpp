// Service message framing inside a secure channel body.
#include "bridges/opcua/message.hpp"

namespace strata::bridges::opcua {

decoded_message decode_message(std::span<const std::uint8_t> in, const decode_limits& limits,
                               const type_registry& types) {
    decoded_message out;
    reader r(in, limits, &types);
    decode(r, out.type_id);
    const std::uint32_t* id = out.type_id.numeric();
    const type_registry::decode_fn fn = (r.ok() && out.type_id.namespace_index == 0 && id) ? types.find(*id) : nullptr;
    if (r.ok() && !fn) r.fail("unknown message type");
    if (fn) out.body = fn(r);
    if (r.ok() && r.remaining() != 0) r.fail("trailing bytes");
    if (!r.ok()) {
        out.body.reset();
        out.outcome = {false, r.error(), r.error_offset(), 0};
        return out;
    }
    out.outcome = {true, "", 0, r.offset()};
    return out;
}

}  // namespace strata::bridges::opcua
