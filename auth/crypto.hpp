// Cryptographic building blocks for identities, on OpenSSL 3: PBKDF2
// through EVP_KDF, HMAC and SHA-256 through EVP, random bytes, base64 and
// constant-time comparison. Byte strings are std::string (binary-safe).
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::auth {

enum class digest : std::uint8_t { sha256, sha512 };

// PBKDF2-HMAC-<d>(password, salt, iterations) -> `length` bytes.
// Throws std::runtime_error when OpenSSL fails (never for valid input).
[[nodiscard]] std::string pbkdf2(digest d, std::string_view password, std::string_view salt,
                                 std::uint32_t iterations, std::size_t length);
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);
[[nodiscard]] std::string sha256(std::string_view data);
// Cryptographically secure random bytes (RAND_bytes); throws on failure.
[[nodiscard]] std::string random_bytes(std::size_t n);

// Constant-time equality of two byte strings (CRYPTO_memcmp; the length is
// not secret).
[[nodiscard]] bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

// Overwrites a secret's bytes (OPENSSL_cleanse: not optimised away).
void cleanse(std::string& secret) noexcept;

// Standard base64 (RFC 4648, with padding).
[[nodiscard]] std::string base64_encode(std::string_view bytes);
// Strict decoding: padding required, no whitespace; nullopt when invalid.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

}  // namespace strata::auth
