// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), carried in MQTT 5
// enhanced authentication (method "SCRAM-SHA-256"):
//
//   CONNECT  auth data = client-first-message   "n,,n=user,r=cnonce"
//   AUTH 0x18 (server) = server-first-message   "r=cnonce+snonce,s=salt,i=4096"
//   AUTH 0x18 (client) = client-final-message   "c=biws,r=cnonce+snonce,p=proof"
//   CONNACK 0x00       = server-final-message   "v=signature"
//
// Channel binding is not supported ("n" or "y" GS2 flag only); an
// authorization identity different from the user is refused. An unknown
// user gets a plausible server-first-message (salt derived from the name)
// and fails at the proof, so the exchange does not reveal which users exist.
//
// Thread-safety: one scram_server per exchange, used by one thread.
#pragma once

#include "auth/password_file.hpp"

#include <string>
#include <string_view>

namespace strata::auth {

inline constexpr std::string_view scram_method = "SCRAM-SHA-256";

class scram_server {
public:
    struct step {
        bool ok = false;
        std::string data;   // the message to send (server-first / server-final)
        std::string error;  // why not, when !ok
    };

    // Handles client-first-message. `file` is consulted once; the
    // credentials are copied. `server_nonce`: empty for a fresh random one
    // (tests pass a fixed nonce).
    [[nodiscard]] step start(std::string_view client_first, const password_file& file,
                             std::string server_nonce = {});
    // Handles client-final-message; ok means the client proved the password.
    [[nodiscard]] step finish(std::string_view client_final);

    [[nodiscard]] const std::string& user() const noexcept { return user_; }

private:
    std::string user_;
    std::string gs2_header_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string nonce_;
    scram_credentials creds_;
    bool known_user_ = false;
    bool started_ = false;
};

// Client-side computations, for tests and tools: the ClientProof and the
// expected ServerSignature for an AuthMessage.
[[nodiscard]] std::string scram_client_proof(std::string_view password, std::string_view salt,
                                             std::uint32_t iterations, std::string_view auth_message);
[[nodiscard]] std::string scram_server_signature(const scram_credentials& c, std::string_view auth_message);

}  // namespace strata::auth
