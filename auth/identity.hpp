// Who a connecting client is: the decision between anonymous, certificate
// and password logins, and which certificate field names the identity.
//
// The TLS listener hands over the verified client certificate's fields;
// `tls.identity` (cn, san-uri or san-dns) picks the one that becomes the
// identity, looked up in `users:` like a password user.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

enum class certificate_field : std::uint8_t { cn, san_uri, san_dns };

// The verified client certificate, as the TLS layer reads it.
struct certificate_names {
    std::string cn;
    std::vector<std::string> san_uris;
    std::vector<std::string> san_dns;
};

// The identity a certificate maps to: its CN or its first SAN of the
// chosen kind; empty when the certificate has none.
[[nodiscard]] std::string certificate_identity(const certificate_names& names, certificate_field field);

struct login_request {
    std::optional<std::string> username;
    bool has_password = false;
    std::string certificate_identity;  // empty: no (verified) client certificate
    bool password_file = false;        // a password file is configured
    bool anonymous_allowed = false;    // for this listener
};

enum class login_kind : std::uint8_t {
    anonymous,    // no identity
    certificate,  // identity = the certificate's, no password needed
    password,     // verify username/password against the password file
    refused,      // see login_plan::refusal
};

enum class login_refusal : std::uint8_t { none, bad_credentials, not_authorized };

struct login_plan {
    login_kind kind = login_kind::refused;
    std::string identity;
    login_refusal refusal = login_refusal::none;
    std::string_view why;
};

// Rules:
//   - a user name with a password is checked against the password file
//     (none configured: refused, bad credentials);
//   - a certificate identity without a password logs in as that identity;
//     a user name sent with it must be the same (or it is refused);
//   - a user name without a password (and no certificate) is refused;
//   - no credentials: anonymous when allowed, else not authorized.
[[nodiscard]] login_plan plan_login(const login_request& r);

}  // namespace strata::auth
