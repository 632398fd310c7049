// The OPC UA built-in types (OPC 10000-6 5.1.2) as plain value types.
//
// Null and empty are kept apart where the wire keeps them apart: a String or
// ByteString is a std::optional (nullopt = length -1). A Variant knows its
// built-in type from the alternative it holds; recursive members
// (a DataValue or Variant inside a Variant, an inner DiagnosticInfo) are boxed.
// ExtensionObject bodies are either decoded structures (see binary.hpp,
// type_registry) or opaque bytes kept with their type id.
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace strata::bridges::opcua {

using ua_string = std::optional<std::string>;                  // nullopt = null String
using byte_string = std::optional<std::vector<std::uint8_t>>;  // nullopt = null ByteString

// A heap-held value with value semantics (deep copy, deep compare), for the
// recursive built-in types. A moved-from box is empty; only assign or destroy it.
template <class T>
class box {
public:
    box() : p_(std::make_unique<T>()) {}
    box(T v) : p_(std::make_unique<T>(std::move(v))) {}  // NOLINT: implicit on purpose
    box(const box& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
    box(box&&) noexcept = default;
    box& operator=(const box& o) {
        if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
        return *this;
    }
    box& operator=(box&&) noexcept = default;
    ~box() = default;
    T& operator*() { return *p_; }
    const T& operator*() const { return *p_; }
    T* operator->() { return p_.get(); }
    const T* operator->() const { return p_.get(); }
    friend bool operator==(const box& a, const box& b) {
        if (!a.p_ || !b.p_) return !a.p_ && !b.p_;
        return *a.p_ == *b.p_;
    }

private:
    std::unique_ptr<T> p_;
};

// Built-in type ids (OPC 10000-6 table 1), as used in Variant encoding bytes.
enum class builtin_type : std::uint8_t {
    null = 0, boolean = 1, sbyte = 2, byte = 3, int16 = 4, uint16 = 5, int32 = 6, uint32 = 7,
    int64 = 8, uint64 = 9, float_ = 10, double_ = 11, string = 12, date_time = 13, guid = 14,
    byte_string = 15, xml_element = 16, node_id = 17, expanded_node_id = 18, status_code = 19,
    qualified_name = 20, localized_text = 21, extension_object = 22, data_value = 23,
    variant = 24, diagnostic_info = 25,
};
inline constexpr std::uint8_t max_builtin_type = 25;
[[nodiscard]] std::string_view to_string(builtin_type t) noexcept;

// DateTime: 100 ns ticks since 1601-01-01 00:00 UTC. 0 and INT64_MAX are
// the spec's "no value" and "end of time"; conversions saturate at both.
struct date_time {
    std::int64_t ticks = 0;
    static constexpr std::int64_t unix_epoch_ticks = 116'444'736'000'000'000;  // 1970-01-01
    using sys_us = std::chrono::sys_time<std::chrono::microseconds>;

    [[nodiscard]] static date_time from_unix_us(std::int64_t us) noexcept;
    [[nodiscard]] static date_time from_unix(sys_us t) noexcept { return from_unix_us(t.time_since_epoch().count()); }
    [[nodiscard]] static date_time now() noexcept;
    // Microseconds since the Unix epoch (negative before 1970; truncated).
    [[nodiscard]] std::int64_t unix_us() const noexcept { return (ticks - unix_epoch_ticks) / 10; }
    [[nodiscard]] sys_us to_unix() const noexcept { return sys_us{std::chrono::microseconds{unix_us()}}; }
    // ISO 8601 UTC with 100 ns precision trimmed: "2024-05-01T12:00:00.123Z".
    [[nodiscard]] std::string to_iso8601() const;
    friend auto operator<=>(const date_time&, const date_time&) = default;
};

struct guid {
    std::uint32_t data1 = 0;
    std::uint16_t data2 = 0;
    std::uint16_t data3 = 0;
    std::array<std::uint8_t, 8> data4{};
    // "72962B91-FA75-4AE6-8D28-B404DC7DAF63" (either case accepted, upper case written).
    [[nodiscard]] static std::optional<guid> parse(std::string_view s);
    [[nodiscard]] std::string to_string() const;
    friend auto operator<=>(const guid&, const guid&) = default;
};

// StatusCode (OPC 10000-4 7.39): severity in the top two bits, sub-code in
// bits 16..29, info bits below.
struct status_code {
    std::uint32_t value = 0;
    [[nodiscard]] constexpr bool good() const noexcept { return (value >> 30) == 0; }
    [[nodiscard]] constexpr bool uncertain() const noexcept { return (value >> 30) == 1; }
    [[nodiscard]] constexpr bool bad() const noexcept { return (value >> 31) == 1; }
    // The code without info bits ("BadNodeIdUnknown" for 0x80340000).
    [[nodiscard]] constexpr std::uint32_t code() const noexcept { return value & 0xFFFF0000u; }
    // The spec's name for code() ("Good", "BadTimeout", ...), or "0x80AB0000"
    // for a code not in the table.
    [[nodiscard]] std::string name() const;
    friend auto operator<=>(const status_code&, const status_code&) = default;
};
// The name of a code in the table, empty if unknown (info bits ignored).
[[nodiscard]] std::string_view status_name(std::uint32_t code) noexcept;
// The code for a name in the table ("BadTimeout"), nullopt if unknown.
[[nodiscard]] std::optional<std::uint32_t> status_from_name(std::string_view name) noexcept;

struct node_id {
    std::uint16_t namespace_index = 0;
    // Numeric, String, Guid or Opaque (ByteString) identifier. A null String
    // or ByteString identifier reads as empty.
    std::variant<std::uint32_t, std::string, guid, std::vector<std::uint8_t>> identifier{std::uint32_t{0}};

    node_id() = default;
    node_id(std::uint16_t ns, std::uint32_t id) : namespace_index(ns), identifier(id) {}
    node_id(std::uint16_t ns, std::string id) : namespace_index(ns), identifier(std::move(id)) {}
    node_id(std::uint16_t ns, guid id) : namespace_index(ns), identifier(id) {}
    node_id(std::uint16_t ns, std::vector<std::uint8_t> id) : namespace_index(ns), identifier(std::move(id)) {}

    [[nodiscard]] bool is_null() const noexcept;  // ns=0;i=0
    [[nodiscard]] const std::uint32_t* numeric() const noexcept { return std::get_if<std::uint32_t>(&identifier); }
    // Text form (OPC 10000-6 5.3.1.10): "i=85", "ns=2;s=PLC1.Line1.Counter",
    // "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "ns=1;b=M/RbKBsRVkePCePcx24oRA==".
    // parse accepts what to_string writes (ns= omitted for namespace 0).
    [[nodiscard]] static std::optional<node_id> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const node_id&, const node_id&) = default;
};

struct expanded_node_id {
    node_id id;
    ua_string namespace_uri;         // present: the namespace index is replaced by this URI
    std::uint32_t server_index = 0;  // 0 = the local server (flag not set)
    friend bool operator==(const expanded_node_id&, const expanded_node_id&) = default;
};

struct qualified_name {
    std::uint16_t namespace_index = 0;
    ua_string name;
    friend bool operator==(const qualified_name&, const qualified_name&) = default;
};

struct localized_text {
    ua_string locale;  // nullopt: not encoded
    ua_string text;    // nullopt: not encoded
    friend bool operator==(const localized_text&, const localized_text&) = default;
};

// XmlElement: UTF-8 XML kept as text (encoded like a String).
struct xml_element {
    ua_string value;
    friend bool operator==(const xml_element&, const xml_element&) = default;
};

class writer;

// A decoded ExtensionObject body: one of the generated structures, held by a
// type-erased wrapper (see binary.hpp: body_of<T>, type_registry).
struct extension_body {
    virtual ~extension_body() = default;
    virtual void encode(writer& w) const = 0;
    [[nodiscard]] virtual std::unique_ptr<extension_body> clone() const = 0;
    [[nodiscard]] virtual bool equals(const extension_body& o) const = 0;
    [[nodiscard]] virtual std::uint32_t binary_encoding_id() const noexcept = 0;  // namespace 0
    [[nodiscard]] virtual std::string_view type_name() const noexcept = 0;
};

struct extension_object {
    enum class encoding : std::uint8_t { none = 0, byte_string = 1, xml = 2 };
    // The encoding id (DataType's "Default Binary" node). When `decoded` is set
    // it is ns=0 and the decoded type's binary encoding id.
    node_id type_id;
    encoding body_encoding = encoding::none;
    std::vector<std::uint8_t> body;           // opaque body when not decoded
    std::unique_ptr<extension_body> decoded;  // set when the type is known

    extension_object() = default;
    extension_object(const extension_object& o);
    extension_object(extension_object&&) noexcept = default;
    extension_object& operator=(const extension_object& o);
    extension_object& operator=(extension_object&&) noexcept = default;
    ~extension_object() = default;
    friend bool operator==(const extension_object& a, const extension_object& b);

    [[nodiscard]] bool empty() const noexcept { return body_encoding == encoding::none && !decoded; }
};

struct data_value;
struct diagnostic_info;

// Variant (OPC 10000-6 5.2.2.16): null, a scalar, a one-dimensional array or
// a multi-dimensional array (an array plus `dimensions`, product = length).
class variant {
public:
    // Index i (1..25) holds a scalar of built-in type i; index 25 + i an array
    // of it. Booleans in arrays are std::vector<bool>.
    using storage = std::variant<
        std::monostate, bool, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
        std::uint32_t, std::int64_t, std::uint64_t, float, double, ua_string, date_time, guid,
        byte_string, xml_element, node_id, expanded_node_id, status_code, qualified_name,
        localized_text, extension_object, box<data_value>, box<variant>, box<diagnostic_info>,
        std::vector<bool>, std::vector<std::int8_t>, std::vector<std::uint8_t>,
        std::vector<std::int16_t>, std::vector<std::uint16_t>, std::vector<std::int32_t>,
        std::vector<std::uint32_t>, std::vector<std::int64_t>, std::vector<std::uint64_t>,
        std::vector<float>, std::vector<double>, std::vector<ua_string>, std::vector<date_time>,
        std::vector<guid>, std::vector<byte_string>, std::vector<xml_element>,
        std::vector<node_id>, std::vector<expanded_node_id>, std::vector<status_code>,
        std::vector<qualified_name>, std::vector<localized_text>,
        std::vector<extension_object>, std::vector<data_value>, std::vector<variant>,
        std::vector<diagnostic_info>>;
    static constexpr std::size_t array_offset = max_builtin_type;

    variant() = default;
    // Any scalar or array alternative, e.g. variant{std::int32_t{5}} or
    // variant{std::vector<double>{1, 2}}. Strings: pass ua_string{"x"}.
    template <class T>
        requires(!std::is_same_v<std::remove_cvref_t<T>, variant>)
    variant(T&& v) : value(std::forward<T>(v)) {}  // NOLINT: implicit on purpose

    storage value;
    std::vector<std::int32_t> dimensions;  // only for multi-dimensional arrays; ignored for scalars

    [[nodiscard]] bool is_null() const noexcept { return value.index() == 0; }
    [[nodiscard]] bool is_array() const noexcept { return value.index() > array_offset; }
    [[nodiscard]] builtin_type type() const noexcept {
        const std::size_t i = value.index();
        return static_cast<builtin_type>(i > array_offset ? i - array_offset : i);
    }
    template <class T>
    [[nodiscard]] const T* get_if() const noexcept { return std::get_if<T>(&value); }
    friend bool operator==(const variant&, const variant&) = default;
};

// DataValue (OPC 10000-6 5.2.2.17): every field optional, as on the wire.
struct data_value {
    std::optional<variant> value;
    std::optional<status_code> status;  // absent means Good
    std::optional<date_time> source_timestamp;
    std::optional<std::uint16_t> source_picoseconds;  // in units of 10 ps, as on the wire
    std::optional<date_time> server_timestamp;
    std::optional<std::uint16_t> server_picoseconds;  // in units of 10 ps
    friend bool operator==(const data_value&, const data_value&) = default;
};

struct diagnostic_info {
    std::optional<std::int32_t> symbolic_id;
    std::optional<std::int32_t> namespace_uri;
    std::optional<std::int32_t> locale;
    std::optional<std::int32_t> localized_text;
    ua_string additional_info;
    std::optional<status_code> inner_status_code;
    std::optional<box<diagnostic_info>> inner_diagnostic_info;
    friend bool operator==(const diagnostic_info&, const diagnostic_info&) = default;
};

}  // namespace strata::bridges::opcua
