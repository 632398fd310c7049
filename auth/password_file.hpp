// The password file: one line per user with salted, slow hashes.
//
//   USER:$pbkdf2-sha512$ITERATIONS$SALT$HASH[:$scram-sha-256$ITERATIONS$SALT$STORED_KEY$SERVER_KEY]
//
// SALT, HASH, STORED_KEY and SERVER_KEY are standard base64 (with padding).
// HASH is PBKDF2-HMAC-SHA512(password, salt, iterations), 64 bytes: what a
// CONNECT's password is checked against. The optional second field holds
// what SCRAM-SHA-256 (RFC 5802/7677) needs, with its own salt and iteration
// count: StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")) and
// ServerKey = HMAC(SaltedPassword, "Server Key"), SaltedPassword =
// PBKDF2-HMAC-SHA256(password, salt, iterations). Neither reveals the
// password. Blank lines and lines starting with '#' are ignored. A user
// name is 1..65535 bytes without ':', control characters or spaces at
// either end.
//
// Thread-safety: a loaded password_file is immutable; const members are
// safe to call concurrently. verify() is deliberately slow (the hash's
// iteration count): call it off the network threads.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

class password_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct scram_credentials {
    std::uint32_t iterations = 0;
    std::string salt;        // bytes
    std::string stored_key;  // 32 bytes
    std::string server_key;  // 32 bytes
};

struct password_entry {
    std::string user;
    std::uint32_t iterations = 0;
    std::string salt;  // bytes
    std::string hash;  // 64 bytes
    std::optional<scram_credentials> scram;
};

// Iterations when none are asked for: 210,000 for PBKDF2-HMAC-SHA512
// (OWASP's 2023 recommendation); SCRAM uses the same count.
inline constexpr std::uint32_t default_iterations = 210'000;
inline constexpr std::uint32_t min_iterations = 1'000;

// A new entry with fresh 16-byte random salts (both schemes).
[[nodiscard]] password_entry make_entry(std::string user, std::string_view password,
                                        std::uint32_t iterations = default_iterations);
[[nodiscard]] scram_credentials make_scram(std::string_view password, std::string salt, std::uint32_t iterations);
[[nodiscard]] bool verify(const password_entry& e, std::string_view password);
[[nodiscard]] std::string format_entry(const password_entry& e);
// Parses one line (without its newline); throws password_error naming the
// problem (the caller adds file and line).
[[nodiscard]] password_entry parse_entry(std::string_view line);
// Empty when `user` is acceptable, else why not.
[[nodiscard]] std::string check_user_name(std::string_view user);

class password_file {
public:
    // Throws password_error "PATH:LINE: problem" (or "PATH: cannot read ...").
    [[nodiscard]] static password_file load(const std::string& path);
    [[nodiscard]] static password_file parse(std::string_view text, const std::string& name);

    [[nodiscard]] const password_entry* find(std::string_view user) const noexcept;
    // Checks a user's password. An unknown user costs the same work as a
    // known one, so that timing does not tell which users exist.
    [[nodiscard]] bool verify(std::string_view user, std::string_view password) const;

    // Adds or replaces the entry of e.user.
    void set(password_entry e);
    // Returns false when the user was not there.
    bool remove(std::string_view user);
    [[nodiscard]] const std::vector<password_entry>& entries() const noexcept { return entries_; }

    [[nodiscard]] std::string serialize() const;
    // Writes to PATH.tmp (mode 0600) and renames it over PATH; throws
    // password_error.
    void save(const std::string& path) const;

private:
    std::vector<password_entry> entries_;
};

}  // namespace strata::auth
