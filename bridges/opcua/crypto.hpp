// OPC UA security policies and the cryptographic primitives the secure
// channel and the session need (OPC 10000-7 policy profiles, OPC 10000-6
// 6.7), on OpenSSL 3's EVP interfaces:
//
//   - the policy table: None, Basic256Sha256 and Aes128_Sha256_RsaOaep, with
//     their URIs, algorithms and key/nonce/block lengths;
//   - P_SHA256 key derivation of the symmetric channel keys (6.7.5);
//   - HMAC-SHA256 and AES-CBC (no padding: the UA padding is the channel's,
//     computed with make_padding / strip_padding as 6.7.2.5 lays it out);
//   - RSA PKCS#1 v1.5 SHA-256 signatures and RSA-OAEP (SHA-1) encryption in
//     blocks, as used by OpenSecureChannel, and on top of them the
//     CreateSession/ActivateSession signatures and encrypted user passwords;
//   - SHA-1 certificate thumbprints and random nonces.
//
// Byte strings are `bytes` (owned) and `bytes_view` (borrowed). Functions
// whose input comes from the wire (a peer's signature, ciphertext, key)
// report failure as a value (false / nullopt); exceptions (std::runtime_error)
// are for misuse (a wrong key length, a public key where a private one is
// needed) and for OpenSSL failing on valid input.
//
// Thread-safety: free functions without shared state; rsa_key is an
// immutable, reference-counted handle that may be shared between threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

namespace strata::bridges::opcua::crypto {

using bytes = std::vector<std::uint8_t>;
using bytes_view = std::span<const std::uint8_t>;

// Owning pointer to an OpenSSL object: openssl_ptr<X509, X509_free>.
template <typename T, void (*Free)(T*)>
struct openssl_deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T*)>
using openssl_ptr = std::unique_ptr<T, openssl_deleter<T, Free>>;

// Throws std::runtime_error "OpenSSL: <what>: <first queued OpenSSL error>"
// and clears OpenSSL's error queue.
[[noreturn]] void throw_openssl_error(const char* what);

// Bytes of a string literal or text (no terminator).
[[nodiscard]] inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// ---------------------------------------------------------------------------
// Security policies

enum class policy_id : std::uint8_t { none, basic256sha256, aes128_sha256_rsaoaep };

// One row of the policy table. Lengths are in bytes; for None every length
// is 0 and every algorithm URI empty.
struct security_policy {
    policy_id id;
    std::string_view name;  // "Basic256Sha256", as written in configuration
    std::string_view uri;   // SecurityPolicyUri on the wire
    // Algorithm URIs as they appear in SignatureData.algorithm and
    // UserNameIdentityToken.encryptionAlgorithm.
    std::string_view asymmetric_signature_uri = {};   // RSA-PKCS1-v1_5-SHA256
    std::string_view asymmetric_encryption_uri = {};  // RSA-OAEP (SHA-1)
    std::string_view symmetric_signature_uri = {};    // HMAC-SHA256
    std::string_view symmetric_encryption_uri = {};   // AES-256-CBC resp. AES-128-CBC
    std::string_view certificate_signature_uri = {};  // SHA256withRSA
    std::size_t signing_key_length = 0;     // derived symmetric signing key (32)
    std::size_t encrypting_key_length = 0;  // derived AES key (32 resp. 16)
    std::size_t block_size = 0;             // AES block = IV length (16)
    std::size_t symmetric_signature_size = 0;  // HMAC-SHA256 output (32)
    std::size_t nonce_length = 0;              // client and server nonces (32)
    std::size_t min_asymmetric_key_bits = 0;   // 2048
    std::size_t max_asymmetric_key_bits = 0;   // 4096
    std::size_t asymmetric_encryption_overhead = 0;  // OAEP-SHA1: 42 bytes per block

    [[nodiscard]] bool is_none() const noexcept { return id == policy_id::none; }
    // Whether an RSA key of `bits` may be used with this policy.
    [[nodiscard]] bool key_size_allowed(std::size_t bits) const noexcept {
        return is_none() || (bits >= min_asymmetric_key_bits && bits <= max_asymmetric_key_bits);
    }
};

// All policies this client implements, None first.
[[nodiscard]] std::span<const security_policy> security_policies() noexcept;
[[nodiscard]] const security_policy& policy(policy_id id) noexcept;
// By URI (exact) or by configuration name (case-insensitive); nullptr if unknown.
[[nodiscard]] const security_policy* find_policy_by_uri(std::string_view uri) noexcept;
[[nodiscard]] const security_policy* find_policy_by_name(std::string_view name) noexcept;

// ---------------------------------------------------------------------------
// Symmetric keys (6.7.5)

// One side's keys for a secure channel token.
struct symmetric_keys {
    bytes signing_key;
    bytes encrypting_key;
    bytes iv;
};

// P_SHA256(secret, seed) (RFC 5246 section 5) truncated to `length` bytes;
// OpenSSL's TLS1-PRF with SHA-256, the seed given without a label.
[[nodiscard]] bytes p_sha256(bytes_view secret, bytes_view seed, std::size_t length);

// Keys for one direction: P_SHA256(secret, seed) cut into signing key,
// encrypting key and IV with the policy's lengths. Throws for policy None.
[[nodiscard]] symmetric_keys derive_keys(const security_policy& p, bytes_view secret, bytes_view seed);

// Both directions as 6.7.5 assigns them: the client's keys (used by the
// client to sign and encrypt) come from secret = ServerNonce and seed =
// ClientNonce, the server's from secret = ClientNonce, seed = ServerNonce.
struct channel_keys {
    symmetric_keys client;
    symmetric_keys server;
};
[[nodiscard]] channel_keys derive_channel_keys(const security_policy& p, bytes_view client_nonce,
                                               bytes_view server_nonce);

// HMAC-SHA256(key, data): 32 bytes.
[[nodiscard]] bytes hmac_sha256(bytes_view key, bytes_view data);
// Recomputes the HMAC and compares in constant time.
[[nodiscard]] bool hmac_sha256_verify(bytes_view key, bytes_view data, bytes_view signature);

// AES-CBC with a 16- or 32-byte key (AES-128 / AES-256) and a 16-byte IV,
// without padding. Throws std::invalid_argument for other key or IV lengths;
// returns nullopt when the input is not a whole number of blocks.
[[nodiscard]] std::optional<bytes> aes_cbc_encrypt(bytes_view key, bytes_view iv, bytes_view plain);
[[nodiscard]] std::optional<bytes> aes_cbc_decrypt(bytes_view key, bytes_view iv, bytes_view cipher);

// ---------------------------------------------------------------------------
// UA padding (6.7.2.5)
//
// An encrypted chunk is laid out as
//   [sequence header + body] [PaddingSize] [Padding x PaddingSize] [ExtraPadding] [Signature]
// where everything from the sequence header to the signature is a whole
// number of plaintext blocks. PaddingSize is the count of padding bytes
// (not counting itself), each padding byte carries PaddingSize's low byte,
// and ExtraPadding, the high byte, is present only when the encrypting key
// is longer than 2048 bits.

// Whether ExtraPadding is present for a key of `key_bytes` bytes (the RSA
// modulus for asymmetric encryption, the AES key for symmetric).
[[nodiscard]] constexpr bool needs_extra_padding(std::size_t key_bytes) noexcept { return key_bytes > 256; }

// The padding count and the bytes to insert between the body and the
// signature so that plain_size + padding + signature_size is a multiple of
// block_size. plain_size counts the bytes to be encrypted before the padding
// (sequence header and body). block_size must be > 0.
struct padding {
    std::size_t padding_size;  // PaddingSize: number of padding bytes after the size byte
    bytes data;                // [PaddingSize] [Padding...] [ExtraPadding if extra]
};
[[nodiscard]] padding make_padding(std::size_t plain_size, std::size_t signature_size, std::size_t block_size,
                                   bool extra_padding);

// The receiving side: `decrypted` is the whole decrypted part (sequence
// header to signature). Checks the padding bytes and returns the length of
// the sequence header + body, or nullopt when the padding is malformed.
[[nodiscard]] std::optional<std::size_t> strip_padding(bytes_view decrypted, std::size_t signature_size,
                                                       bool extra_padding);

// ---------------------------------------------------------------------------
// RSA

// A public or private RSA key (a shared, immutable EVP_PKEY).
class rsa_key {
public:
    rsa_key() = default;
    // Takes ownership of `key` (which must be an RSA key).
    explicit rsa_key(EVP_PKEY* key);

    [[nodiscard]] explicit operator bool() const noexcept { return key_ != nullptr; }
    [[nodiscard]] EVP_PKEY* get() const noexcept { return key_.get(); }
    [[nodiscard]] std::size_t bits() const noexcept;
    [[nodiscard]] std::size_t size_bytes() const noexcept { return (bits() + 7) / 8; }
    [[nodiscard]] bool has_private() const noexcept;

private:
    std::shared_ptr<EVP_PKEY> key_;
};

// A new RSA key pair (e = 65537). Throws on OpenSSL failure.
[[nodiscard]] rsa_key generate_rsa_key(unsigned bits);
// PKCS#8 PEM of the private key (unencrypted), and back; parse errors throw
// std::runtime_error (the key comes from our own files).
[[nodiscard]] std::string private_key_pem(const rsa_key& key);
[[nodiscard]] rsa_key private_key_from_pem(std::string_view pem);

// RSASSA-PKCS1-v1_5 with SHA-256. sign throws without a private key.
[[nodiscard]] bytes rsa_sign_sha256(const rsa_key& key, bytes_view data);
[[nodiscard]] bool rsa_verify_sha256(const rsa_key& key, bytes_view data, bytes_view signature);

// RSA-OAEP with SHA-1 (MGF1-SHA-1), block by block: each plaintext block is
// at most key bytes - 42, each ciphertext block exactly key bytes.
[[nodiscard]] std::size_t rsa_oaep_plain_block_size(const rsa_key& key) noexcept;
[[nodiscard]] std::size_t rsa_oaep_encrypted_size(const rsa_key& key, std::size_t plain_size) noexcept;
[[nodiscard]] bytes rsa_oaep_encrypt(const rsa_key& key, bytes_view plain);
// nullopt when the ciphertext is not whole blocks or a block fails to decrypt.
[[nodiscard]] std::optional<bytes> rsa_oaep_decrypt(const rsa_key& key, bytes_view cipher);

// ---------------------------------------------------------------------------
// Session proofs and user passwords (OPC 10000-4 5.6.2, 5.6.3, 7.36)

// CreateSession's serverSignature and ActivateSession's clientSignature: a
// party signs the other side's certificate (the leaf alone) followed by the
// nonce the other side sent, RSA-PKCS1-v1_5-SHA256 with its own key.
[[nodiscard]] bytes sign_certificate_and_nonce(const rsa_key& own_key, bytes_view peer_certificate,
                                               bytes_view peer_nonce);
[[nodiscard]] bool verify_certificate_and_nonce(const rsa_key& peer_key, bytes_view own_certificate,
                                                bytes_view own_nonce, bytes_view signature);

// A UserNameIdentityToken password as servers expect it: [UInt32 LE length
// of password + nonce] [password (UTF-8)] [server nonce], RSA-OAEP (SHA-1)
// encrypted with the server certificate's key. The token's
// encryptionAlgorithm is then the policy's asymmetric_encryption_uri.
[[nodiscard]] bytes encrypt_user_password(const rsa_key& server_key, std::string_view password,
                                          bytes_view server_nonce);
// The server's side: the password, or nullopt unless `encrypted` decrypts
// to that layout ending in `server_nonce`.
[[nodiscard]] std::optional<std::string> decrypt_user_password(const rsa_key& server_key, bytes_view encrypted,
                                                               bytes_view server_nonce);

// ---------------------------------------------------------------------------
// Digests, randomness

using sha1_digest = std::array<std::uint8_t, 20>;
// SHA-1 of a DER certificate: the certificate thumbprint of OPC UA headers.
[[nodiscard]] sha1_digest thumbprint(bytes_view der);
// Lower-case hex of any bytes (thumbprints in messages and file names).
[[nodiscard]] std::string to_hex(bytes_view data);

// Cryptographically secure random bytes (nonces); throws if none are available.
[[nodiscard]] bytes random_bytes(std::size_t n);

}  // namespace strata::bridges::opcua::crypto
