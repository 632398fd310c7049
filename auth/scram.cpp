#include "auth/scram.hpp"

#include "auth/crypto.hpp"

#include <vector>

namespace strata::auth {

namespace {

// Decodes a saslname: "=2C" is ',', "=3D" is '='; any other '=' is invalid.
bool decode_saslname(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == ',') return false;
        if (in[i] != '=') {
            out += in[i];
            continue;
        }
        const auto esc = in.substr(i, 3);
        if (esc == "=2C") {
            out += ',';
        } else if (esc == "=3D") {
            out += '=';
        } else {
            return false;
        }
        i += 2;
    }
    return !out.empty();
}

std::vector<std::string_view> attributes(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto p = s.find(',');
        out.push_back(s.substr(0, p));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

bool printable_nonce(std::string_view n) {
    if (n.empty()) return false;
    for (const char c : n)
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
    std::string out(a.size(), '\0');
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
    return out;
}

// A fixed per-process secret, so that an unknown user's fake salt is stable.
const std::string& fake_salt_secret() {
    static const std::string s = random_bytes(32);
    return s;
}

}  // namespace

scram_server::step scram_server::start(std::string_view client_first, const password_file& file,
                                       std::string server_nonce) {
    if (started_) return {false, {}, "SCRAM exchange already started"};
    started_ = true;
    // gs2-header: cbind-flag "," [authzid] ","
    const auto first_comma = client_first.find(',');
    if (first_comma == std::string_view::npos) return {false, {}, "malformed client-first-message"};
    const auto flag = client_first.substr(0, first_comma);
    if (flag.starts_with("p=")) return {false, {}, "channel binding is not supported"};
    if (flag != "n" && flag != "y") return {false, {}, "malformed GS2 channel binding flag"};
    const auto second_comma = client_first.find(',', first_comma + 1);
    if (second_comma == std::string_view::npos) return {false, {}, "malformed client-first-message"};
    const auto authzid = client_first.substr(first_comma + 1, second_comma - first_comma - 1);
    gs2_header_ = std::string(client_first.substr(0, second_comma + 1));
    client_first_bare_ = std::string(client_first.substr(second_comma + 1));

    const auto attrs = attributes(client_first_bare_);
    if (attrs.size() < 2 || !attrs[0].starts_with("n=") || !attrs[1].starts_with("r="))
        return {false, {}, "client-first-message must start with n=USER,r=NONCE"};
    if (!decode_saslname(attrs[0].substr(2), user_)) return {false, {}, "malformed user name"};
    if (!authzid.empty()) {
        std::string az;
        if (!authzid.starts_with("a=") || !decode_saslname(authzid.substr(2), az) || az != user_)
            return {false, {}, "an authorization identity other than the user is not supported"};
    }
    const auto client_nonce = attrs[1].substr(2);
    if (!printable_nonce(client_nonce)) return {false, {}, "malformed client nonce"};

    const password_entry* e = file.find(user_);
    if (e != nullptr && e->scram) {
        creds_ = *e->scram;
        known_user_ = true;
    } else {
        creds_.iterations = default_iterations;
        creds_.salt = hmac_sha256(fake_salt_secret(), user_).substr(0, 16);
        known_user_ = false;
    }
    if (server_nonce.empty()) server_nonce = base64_encode(random_bytes(18));
    nonce_ = std::string(client_nonce) + server_nonce;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(creds_.salt) + ",i=" + std::to_string(creds_.iterations);
    return {true, server_first_, {}};
}

scram_server::step scram_server::finish(std::string_view client_final) {
    if (!started_ || server_first_.empty()) return {false, {}, "SCRAM exchange not started"};
    const auto proof_at = client_final.rfind(",p=");
    if (proof_at == std::string_view::npos) return {false, {}, "client-final-message without proof"};
    const auto without_proof = client_final.substr(0, proof_at);
    const auto attrs = attributes(without_proof);
    if (attrs.size() < 2 || !attrs[0].starts_with("c=") || !attrs[1].starts_with("r="))
        return {false, {}, "client-final-message must start with c=...,r=..."};
    if (attrs[0].substr(2) != base64_encode(gs2_header_)) return {false, "e=channel-bindings-dont-match", "channel binding data does not match"};
    if (attrs[1].substr(2) != nonce_) return {false, "e=other-error", "nonce does not match"};
    const auto proof = base64_decode(client_final.substr(proof_at + 3));
    if (!proof || proof->size() != 32) return {false, "e=invalid-proof", "malformed proof"};

    const std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    const std::string client_signature = hmac_sha256(creds_.stored_key, auth_message);
    const std::string client_key = xor_bytes(*proof, client_signature);
    // Both comparisons run for unknown users too (against an empty key).
    const bool match = equal_constant_time(sha256(client_key), creds_.stored_key) && known_user_;
    if (!match) return {false, "e=invalid-proof", "invalid proof"};
    return {true, "v=" + base64_encode(scram_server_signature(creds_, auth_message)), {}};
}

std::string scram_client_proof(std::string_view password, std::string_view salt, std::uint32_t iterations,
                               std::string_view auth_message) {
    const std::string salted = pbkdf2(digest::sha256, password, salt, iterations, 32);
    const std::string client_key = hmac_sha256(salted, "Client Key");
    return xor_bytes(client_key, hmac_sha256(sha256(client_key), auth_message));
}

std::string scram_server_signature(const scram_credentials& c, std::string_view auth_message) {
    return hmac_sha256(c.server_key, auth_message);
}

}  // namespace strata::auth
