// Service messages as they travel in a secure channel's MSG/OPN/CLO body
// (OPC 10000-6 7.1.2.4 / 6.7.2): the NodeId of the structure's binary
// encoding, then the structure.
//
// Thread-safety: pure functions.
#pragma once

#include "bridges/opcua/binary.hpp"
#include "bridges/opcua/generated/types.hpp"

#include <memory>
#include <span>
#include <vector>

namespace strata::bridges::opcua {

// Appends the encoding id and `msg` to `out`.
template <class T>
void encode_message(const T& msg, std::vector<std::uint8_t>& out) {
    writer w(out);
    encode(w, node_id{0, T::binary_encoding_id});
    encode(w, msg);
}

struct decoded_message {
    std::unique_ptr<extension_body> body;  // null on failure
    decode_outcome outcome;                // error "unknown message type" for an id not in `types`
    node_id type_id;                       // as read, also on failure
    // The message as a T, or nullptr if it is another type (or failed).
    template <class T>
    [[nodiscard]] const T* as() const noexcept {
        const auto* b = dynamic_cast<const body_of<T>*>(body.get());
        return b ? &b->value : nullptr;
    }
};

// Decodes one whole message; bytes left over after the structure are an
// error ("trailing bytes"). ExtensionObjects inside are decoded with `types` too.
[[nodiscard]] decoded_message decode_message(std::span<const std::uint8_t> in, const decode_limits& limits = {},
                                             const type_registry& types = standard_types());

}  // namespace strata::bridges::opcua
