// OPC UA Binary encoding (OPC 10000-6 5.2) of the built-in types: a reader
// over a byte span and a writer appending to a byte vector.
//
// Errors are values: the reader is sticky. The first malformed or
// over-limit field records a static reason and the offset; every later read
// returns a zero value without touching the input, so decode functions are
// straight-line code and the caller checks ok() once at the message boundary.
// Lengths are checked against the limits and the remaining input before
// anything is allocated; nesting (Variant, DataValue, DiagnosticInfo,
// ExtensionObject) is bounded by limits.max_depth.
//
// Thread-safety: a reader or writer is used by one thread; the free
// functions are pure. A type_registry is immutable after construction and
// may be shared.
#pragma once

#include "bridges/opcua/types.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace strata::bridges::opcua {

struct decode_limits {
    // Longest String / XmlElement accepted, in bytes. Default 16 MiB.
    std::uint32_t max_string_length = 16u << 20;
    // Longest ByteString (and opaque ExtensionObject body) accepted. Default 16 MiB.
    std::uint32_t max_byte_string_length = 16u << 20;
    // Most elements in one array. Default 1,000,000.
    std::uint32_t max_array_length = 1'000'000;
    // Deepest nesting of Variant / DataValue / DiagnosticInfo / ExtensionObject
    // (OPC 10000-6 asks decoders to support at least 100). Default 100.
    std::uint32_t max_depth = 100;
    // Most memory one decoded value may take, counting array elements by
    // their in-memory size and strings by their length: bounds how much a
    // hostile message of null Variants can inflate. Default 256 MiB.
    std::size_t max_decoded_size = std::size_t{256} << 20;
};

class reader;
class type_registry;

class reader {
public:
    explicit reader(std::span<const std::uint8_t> in, const decode_limits& limits = {},
                    const type_registry* types = nullptr) noexcept
        : in_(in), budget_storage_(limits.max_decoded_size), budget_(&budget_storage_), limits_(limits),
          types_(types) {}
    // Nested readers share the root's budget through a pointer: no copies.
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;

    [[nodiscard]] bool ok() const noexcept { return error_ == nullptr; }
    // Static reason of the first failure ("" when ok), and where it happened.
    [[nodiscard]] const char* error() const noexcept { return error_ ? error_ : ""; }
    [[nodiscard]] std::size_t error_offset() const noexcept { return error_offset_; }
    [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
    [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
    [[nodiscard]] const decode_limits& limits() const noexcept { return limits_; }
    [[nodiscard]] const type_registry* types() const noexcept { return types_; }

    // Records `why` (a static string) unless an error is already recorded.
    void fail(const char* why) noexcept {
        if (!error_) {
            error_ = why;
            error_offset_ = pos_;
        }
    }

    // Records `why` at `offset` (an error found by a nested reader).
    void fail_at(const char* why, std::size_t offset) noexcept {
        if (!error_) {
            error_ = why;
            error_offset_ = offset;
        }
    }

    // A reader over `part` (a body inside this input) with the same limits,
    // registry and current nesting depth.
    [[nodiscard]] reader nested(std::span<const std::uint8_t> part) const noexcept {
        return reader(part, *this);
    }

    // Accounts `bytes` of decoded memory against limits.max_decoded_size;
    // false (and failure) once the budget is spent.
    [[nodiscard]] bool charge(std::size_t bytes) noexcept {
        if (bytes > *budget_) {
            fail("decoded size over limit");
            return false;
        }
        *budget_ -= bytes;
        return true;
    }

    [[nodiscard]] std::uint8_t u8() noexcept {
        const std::uint8_t* p = take(1);
        return p ? *p : 0;
    }
    [[nodiscard]] std::uint16_t u16() noexcept { return fixed<std::uint16_t>(); }
    [[nodiscard]] std::uint32_t u32() noexcept { return fixed<std::uint32_t>(); }
    [[nodiscard]] std::uint64_t u64() noexcept { return fixed<std::uint64_t>(); }
    [[nodiscard]] std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }

    // `n` raw bytes, or nullptr (and failure) if fewer remain.
    [[nodiscard]] const std::uint8_t* take(std::size_t n) noexcept {
        if (error_) return nullptr;
        if (remaining() < n) {
            fail("truncated");
            return nullptr;
        }
        const std::uint8_t* p = in_.data() + pos_;
        pos_ += n;
        return p;
    }

    // Reads an Int32 length prefix. Returns -1 for null; fails for other
    // negative values, values above `max`, or more than `remaining() /
    // min_element_size` elements (each element needs at least that many bytes).
    [[nodiscard]] std::int64_t length(std::uint32_t max, std::size_t min_element_size, const char* too_long) noexcept;
    // Array length (max_array_length); null arrays read as 0 elements.
    [[nodiscard]] std::size_t array_length(std::size_t min_element_size = 1) noexcept {
        const std::int64_t n = length(limits_.max_array_length, min_element_size, "array too long");
        return n < 0 ? 0 : static_cast<std::size_t>(n);
    }

    // Nesting guard: enter() fails (returns false) past max_depth.
    [[nodiscard]] bool enter() noexcept {
        if (++depth_ > limits_.max_depth) {
            fail("nesting too deep");
            return false;
        }
        return true;
    }
    void leave() noexcept { --depth_; }

private:
    reader(std::span<const std::uint8_t> part, const reader& parent) noexcept
        : in_(part), depth_(parent.depth_), budget_(parent.budget_), limits_(parent.limits_),
          types_(parent.types_) {}

    template <class T>
    T fixed() noexcept {
        const std::uint8_t* p = take(sizeof(T));
        if (!p) return 0;
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(T{p[i]} << (8 * i));
        return v;
    }

    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
    const char* error_ = nullptr;
    std::size_t error_offset_ = 0;
    std::uint32_t depth_ = 0;
    std::size_t budget_storage_ = 0;  // the root reader's remaining budget
    std::size_t* budget_;             // the root's budget_storage_
    decode_limits limits_;
    const type_registry* types_;
};

class writer {
public:
    explicit writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { fixed(v); }
    void u32(std::uint32_t v) { fixed(v); }
    void u64(std::uint64_t v) { fixed(v); }
    void i32(std::int32_t v) { fixed(static_cast<std::uint32_t>(v)); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::uint8_t*>(p);
        out_.insert(out_.end(), b, b + n);
    }
    [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }
    // Overwrites 4 bytes at `pos` (a length written as a placeholder).
    void patch_u32(std::size_t pos, std::uint32_t v) noexcept {
        for (int i = 0; i < 4; ++i) out_[pos + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    [[nodiscard]] std::vector<std::uint8_t>& buffer() noexcept { return out_; }

private:
    template <class T>
    void fixed(T v) {
        std::uint8_t b[sizeof(T)];
        for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
        out_.insert(out_.end(), b, b + sizeof(T));
    }
    std::vector<std::uint8_t>& out_;
};

// ---- built-in types: encode(writer&, const T&) / decode(reader&, T&) ----

void encode(writer& w, bool v);
void encode(writer& w, std::int8_t v);
void encode(writer& w, std::uint8_t v);
void encode(writer& w, std::int16_t v);
void encode(writer& w, std::uint16_t v);
void encode(writer& w, std::int32_t v);
void encode(writer& w, std::uint32_t v);
void encode(writer& w, std::int64_t v);
void encode(writer& w, std::uint64_t v);
void encode(writer& w, float v);
void encode(writer& w, double v);
void encode(writer& w, const ua_string& v);
void encode(writer& w, const byte_string& v);
void encode(writer& w, date_time v);
void encode(writer& w, const guid& v);
void encode(writer& w, status_code v);
void encode(writer& w, const xml_element& v);
// Uses the smallest encoding that fits (two-byte, four-byte, numeric, ...).
void encode(writer& w, const node_id& v);
void encode(writer& w, const expanded_node_id& v);
void encode(writer& w, const qualified_name& v);
void encode(writer& w, const localized_text& v);
void encode(writer& w, const extension_object& v);
void encode(writer& w, const variant& v);
void encode(writer& w, const data_value& v);
void encode(writer& w, const diagnostic_info& v);

void decode(reader& r, bool& v);
void decode(reader& r, std::int8_t& v);
void decode(reader& r, std::uint8_t& v);
void decode(reader& r, std::int16_t& v);
void decode(reader& r, std::uint16_t& v);
void decode(reader& r, std::int32_t& v);
void decode(reader& r, std::uint32_t& v);
void decode(reader& r, std::int64_t& v);
void decode(reader& r, std::uint64_t& v);
void decode(reader& r, float& v);
void decode(reader& r, double& v);
void decode(reader& r, ua_string& v);
void decode(reader& r, byte_string& v);
void decode(reader& r, date_time& v);
void decode(reader& r, guid& v);
void decode(reader& r, status_code& v);
void decode(reader& r, xml_element& v);
void decode(reader& r, node_id& v);
void decode(reader& r, expanded_node_id& v);
void decode(reader& r, qualified_name& v);
void decode(reader& r, localized_text& v);
// Decodes the body into a structure when r.types() knows the encoding id,
// else keeps it opaque (re-encoded unchanged).
void decode(reader& r, extension_object& v);
void decode(reader& r, variant& v);
void decode(reader& r, data_value& v);
void decode(reader& r, diagnostic_info& v);

template <class T>
void encode(writer& w, const box<T>& b) {
    encode(w, *b);
}
template <class T>
void decode(reader& r, box<T>& b) {
    decode(r, *b);
}

// Arrays: Int32 length then the elements; an empty vector is written with
// length 0, a null array (-1) reads as empty.
template <class T>
void encode(writer& w, const std::vector<T>& v) {
    w.i32(static_cast<std::int32_t>(v.size()));
    for (const auto& e : v) encode(w, static_cast<const T&>(e));
}

// Smallest wire size of one T, for the array length check.
template <class T>
constexpr std::size_t min_wire_size() noexcept {
    if constexpr (std::is_arithmetic_v<T>) return sizeof(T);
    else if constexpr (std::is_same_v<T, ua_string> || std::is_same_v<T, byte_string> ||
                       std::is_same_v<T, xml_element> || std::is_same_v<T, status_code>)
        return 4;
    else if constexpr (std::is_same_v<T, date_time>) return 8;
    else if constexpr (std::is_same_v<T, guid>) return 16;
    else return 1;
}

template <class T>
void decode(reader& r, std::vector<T>& v) {
    const std::size_t n = r.array_length(min_wire_size<T>());
    v.clear();
    if (!r.ok() || !r.charge(n * sizeof(T))) return;
    v.resize(n);
    for (std::size_t i = 0; i < n && r.ok(); ++i) {
        if constexpr (std::is_same_v<T, bool>) {
            bool b = false;
            decode(r, b);
            v[i] = b;
        } else {
            decode(r, v[i]);
        }
    }
}

// Enumerations travel as Int32.
template <class E>
    requires std::is_enum_v<E>
void encode(writer& w, E e) {
    w.i32(static_cast<std::int32_t>(e));
}
template <class E>
    requires std::is_enum_v<E>
void decode(reader& r, E& e) {
    e = static_cast<E>(r.i32());
}

// ---- ExtensionObject bodies ----

// Unqualified call, so that overloads declared after this header (the
// generated structures) are found by argument-dependent lookup.
template <class T>
void encode_value(writer& w, const T& v) {
    encode(w, v);
}

// Wraps a generated structure T (which has `binary_encoding_id` and
// `type_name` members and encode/decode overloads) as an extension_body.
template <class T>
struct body_of final : extension_body {
    T value;
    explicit body_of(T v) : value(std::move(v)) {}
    void encode(writer& w) const override { encode_value(w, value); }
    [[nodiscard]] std::unique_ptr<extension_body> clone() const override {
        return std::make_unique<body_of>(value);
    }
    [[nodiscard]] bool equals(const extension_body& o) const override {
        const auto* p = dynamic_cast<const body_of*>(&o);
        return p && p->value == value;
    }
    [[nodiscard]] std::uint32_t binary_encoding_id() const noexcept override { return T::binary_encoding_id; }
    [[nodiscard]] std::string_view type_name() const noexcept override { return T::type_name; }
};

// An ExtensionObject holding `v` (decoded form; encodes as a ByteString body).
template <class T>
[[nodiscard]] extension_object make_extension_object(T v) {
    extension_object e;
    e.type_id = node_id{0, T::binary_encoding_id};
    e.body_encoding = extension_object::encoding::byte_string;
    e.decoded = std::make_unique<body_of<T>>(std::move(v));
    return e;
}

// The structure inside `e` if it was decoded as (or made from) a T, else nullptr.
template <class T>
[[nodiscard]] const T* body_as(const extension_object& e) noexcept {
    const auto* b = dynamic_cast<const body_of<T>*>(e.decoded.get());
    return b ? &b->value : nullptr;
}

// Decoders of structure bodies by binary encoding id (namespace 0).
class type_registry {
public:
    using decode_fn = std::unique_ptr<extension_body> (*)(reader&);
    void add(std::uint32_t binary_encoding_id, decode_fn fn) { by_id_[binary_encoding_id] = fn; }
    template <class T>
    void add() {
        add(T::binary_encoding_id, [](reader& r) -> std::unique_ptr<extension_body> {
            T v;
            decode(r, v);
            return std::make_unique<body_of<T>>(std::move(v));
        });
    }
    [[nodiscard]] decode_fn find(std::uint32_t binary_encoding_id) const noexcept {
        const auto it = by_id_.find(binary_encoding_id);
        return it == by_id_.end() ? nullptr : it->second;
    }

private:
    std::unordered_map<std::uint32_t, decode_fn> by_id_;
};

// ---- whole-buffer helpers ----

struct decode_outcome {
    bool ok = false;
    const char* error = "";   // static reason when !ok
    std::size_t offset = 0;   // where the error was found
    std::size_t consumed = 0; // bytes read when ok
    explicit operator bool() const noexcept { return ok; }
};

// Decodes one T from the front of `in`.
template <class T>
[[nodiscard]] decode_outcome decode_from(std::span<const std::uint8_t> in, T& out,
                                         const decode_limits& limits = {},
                                         const type_registry* types = nullptr) {
    reader r(in, limits, types);
    decode(r, out);
    if (!r.ok()) return {false, r.error(), r.error_offset(), 0};
    return {true, "", 0, r.offset()};
}

template <class T>
[[nodiscard]] std::vector<std::uint8_t> encode_to_bytes(const T& v) {
    std::vector<std::uint8_t> out;
    writer w(out);
    encode(w, v);
    return out;
}

}  // namespace strata::bridges::opcua
