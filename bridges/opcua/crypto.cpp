#include "bridges/opcua/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace strata::bridges::opcua::crypto {

namespace {

// OPC 10000-7 policy profiles. The symmetric algorithm URIs never travel
// on the wire; they are listed as the profiles name them.
constexpr std::string_view rsa_sha256_uri = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
constexpr std::string_view rsa_oaep_uri = "http://www.w3.org/2001/04/xmlenc#rsa-oaep";
constexpr std::string_view hmac_sha256_uri = "http://www.w3.org/2000/09/xmldsig#hmac-sha256";

// Basic256Sha256 and Aes128_Sha256_RsaOaep differ only in the AES key.
constexpr security_policy rsa_oaep_policy(policy_id id, std::string_view name, std::string_view uri,
                                          std::string_view aes_uri, std::size_t aes_key_length) {
    return {.id = id,
            .name = name,
            .uri = uri,
            .asymmetric_signature_uri = rsa_sha256_uri,
            .asymmetric_encryption_uri = rsa_oaep_uri,
            .symmetric_signature_uri = hmac_sha256_uri,
            .symmetric_encryption_uri = aes_uri,
            .certificate_signature_uri = rsa_sha256_uri,
            .signing_key_length = 32,
            .encrypting_key_length = aes_key_length,
            .block_size = 16,
            .symmetric_signature_size = 32,
            .nonce_length = 32,
            .min_asymmetric_key_bits = 2048,
            .max_asymmetric_key_bits = 4096,
            .asymmetric_encryption_overhead = 42};
}

constexpr security_policy policy_table[] = {
    {.id = policy_id::none, .name = "None", .uri = "http://opcfoundation.org/UA/SecurityPolicy#None"},
    rsa_oaep_policy(policy_id::basic256sha256, "Basic256Sha256",
                    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
                    "http://www.w3.org/2001/04/xmlenc#aes256-cbc", 32),
    rsa_oaep_policy(policy_id::aes128_sha256_rsaoaep, "Aes128_Sha256_RsaOaep",
                    "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep",
                    "http://www.w3.org/2001/04/xmlenc#aes128-cbc", 16),
};

// policy() indexes the table by policy_id.
static_assert(policy_table[std::size_t(policy_id::none)].id == policy_id::none &&
              policy_table[std::size_t(policy_id::basic256sha256)].id == policy_id::basic256sha256 &&
              policy_table[std::size_t(policy_id::aes128_sha256_rsaoaep)].id == policy_id::aes128_sha256_rsaoaep);

using kdf_ptr = openssl_ptr<EVP_KDF, EVP_KDF_free>;
using kdf_ctx_ptr = openssl_ptr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using cipher_ptr = openssl_ptr<EVP_CIPHER, EVP_CIPHER_free>;
using cipher_ctx_ptr = openssl_ptr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using md_ctx_ptr = openssl_ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using pkey_ctx_ptr = openssl_ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using bio_ptr = openssl_ptr<BIO, BIO_free_all>;

// OpenSSL's parameter constructors take non-const pointers but do not
// modify the buffers.
OSSL_PARAM octets(const char* key, bytes_view v) {
    return OSSL_PARAM_construct_octet_string(key, const_cast<std::uint8_t*>(v.data()), v.size());
}
OSSL_PARAM utf8(const char* key, const char* v) {
    return OSSL_PARAM_construct_utf8_string(key, const_cast<char*>(v), 0);
}

std::optional<bytes> aes_cbc(bool encrypt, bytes_view key, bytes_view iv, bytes_view in) {
    if (key.size() != 16 && key.size() != 32)
        throw std::invalid_argument("AES-CBC key must be 16 or 32 bytes");
    if (iv.size() != 16) throw std::invalid_argument("AES-CBC IV must be 16 bytes");
    if (in.size() % 16 != 0) return std::nullopt;
    cipher_ptr cipher(EVP_CIPHER_fetch(nullptr, key.size() == 16 ? "AES-128-CBC" : "AES-256-CBC", nullptr));
    if (!cipher) throw_openssl_error("AES-CBC is not available");
    cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) throw_openssl_error("cannot create a cipher context");
    if (EVP_CipherInit_ex2(ctx.get(), cipher.get(), key.data(), iv.data(), encrypt ? 1 : 0, nullptr) != 1)
        throw_openssl_error("AES-CBC initialisation failed");
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    bytes out(in.size());
    int n = 0;
    int tail = 0;
    if (EVP_CipherUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(in.size())) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), out.data() + n, &tail) != 1)
        throw_openssl_error("AES-CBC failed");
    out.resize(static_cast<std::size_t>(n + tail));
    return out;
}

pkey_ctx_ptr oaep_context(const rsa_key& key, bool encrypt) {
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!ctx) throw_openssl_error("cannot create an RSA context");
    const int init = encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get());
    OSSL_PARAM params[] = {
        utf8(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP),
        utf8(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA1"),
        utf8(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, "SHA1"),
        OSSL_PARAM_construct_end(),
    };
    if (init != 1 || EVP_PKEY_CTX_set_params(ctx.get(), params) != 1) throw_openssl_error("RSA-OAEP initialisation failed");
    return ctx;
}

void require_rsa(const rsa_key& key) {
    if (!key) throw std::invalid_argument("no RSA key");
}

}  // namespace

void throw_openssl_error(const char* what) {
    std::string message = std::string("OpenSSL: ") + what;
    if (const unsigned long e = ERR_get_error(); e != 0) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        message += ": ";
        message += text;
    }
    ERR_clear_error();
    throw std::runtime_error(message);
}

// --- policies ---------------------------------------------------------------

std::span<const security_policy> security_policies() noexcept { return policy_table; }

const security_policy& policy(policy_id id) noexcept { return policy_table[static_cast<std::size_t>(id)]; }

const security_policy* find_policy_by_uri(std::string_view uri) noexcept {
    for (const auto& p : policy_table)
        if (p.uri == uri) return &p;
    return nullptr;
}

const security_policy* find_policy_by_name(std::string_view name) noexcept {
    const auto same = [](std::string_view a, std::string_view b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
            return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
        });
    };
    for (const auto& p : policy_table)
        if (same(p.name, name)) return &p;
    return nullptr;
}

// --- key derivation ---------------------------------------------------------

bytes p_sha256(bytes_view secret, bytes_view seed, std::size_t length) {
    kdf_ptr kdf(EVP_KDF_fetch(nullptr, "TLS1-PRF", nullptr));
    if (!kdf) throw_openssl_error("TLS1-PRF is not available");
    kdf_ctx_ptr ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) throw_openssl_error("cannot create a TLS1-PRF context");
    OSSL_PARAM params[] = {
        utf8(OSSL_KDF_PARAM_DIGEST, "SHA256"),
        octets(OSSL_KDF_PARAM_SECRET, secret),
        octets(OSSL_KDF_PARAM_SEED, seed),
        OSSL_PARAM_construct_end(),
    };
    bytes out(length);
    if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) throw_openssl_error("P_SHA256 derivation failed");
    return out;
}

symmetric_keys derive_keys(const security_policy& p, bytes_view secret, bytes_view seed) {
    if (p.is_none()) throw std::invalid_argument("policy None has no keys to derive");
    const bytes all = p_sha256(secret, seed, p.signing_key_length + p.encrypting_key_length + p.block_size);
    const auto at = [&](std::size_t offset, std::size_t n) {
        return bytes(all.begin() + static_cast<std::ptrdiff_t>(offset),
                     all.begin() + static_cast<std::ptrdiff_t>(offset + n));
    };
    return {at(0, p.signing_key_length), at(p.signing_key_length, p.encrypting_key_length),
            at(p.signing_key_length + p.encrypting_key_length, p.block_size)};
}

channel_keys derive_channel_keys(const security_policy& p, bytes_view client_nonce, bytes_view server_nonce) {
    return {derive_keys(p, server_nonce, client_nonce), derive_keys(p, client_nonce, server_nonce)};
}

// --- symmetric --------------------------------------------------------------

bytes hmac_sha256(bytes_view key, bytes_view data) {
    bytes out(32);
    std::size_t n = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(), data.size(),
                  out.data(), out.size(), &n) == nullptr ||
        n != out.size())
        throw_openssl_error("HMAC-SHA256 failed");
    return out;
}

bool hmac_sha256_verify(bytes_view key, bytes_view data, bytes_view signature) {
    const bytes expected = hmac_sha256(key, data);
    return signature.size() == expected.size() &&
           CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
}

std::optional<bytes> aes_cbc_encrypt(bytes_view key, bytes_view iv, bytes_view plain) {
    return aes_cbc(true, key, iv, plain);
}

std::optional<bytes> aes_cbc_decrypt(bytes_view key, bytes_view iv, bytes_view cipher) {
    return aes_cbc(false, key, iv, cipher);
}

// --- padding ----------------------------------------------------------------

padding make_padding(std::size_t plain_size, std::size_t signature_size, std::size_t block_size,
                     bool extra_padding) {
    if (block_size == 0) throw std::invalid_argument("padding block size must be > 0");
    const std::size_t fixed = plain_size + 1 + (extra_padding ? 1 : 0) + signature_size;
    const std::size_t n = (block_size - fixed % block_size) % block_size;
    if (!extra_padding && n > 0xFF) throw std::invalid_argument("padding over 255 bytes needs ExtraPadding");
    padding out{n, bytes(n + 1, static_cast<std::uint8_t>(n & 0xFF))};
    if (extra_padding) out.data.push_back(static_cast<std::uint8_t>(n >> 8));
    return out;
}

std::optional<std::size_t> strip_padding(bytes_view decrypted, std::size_t signature_size, bool extra_padding) {
    const std::size_t size_bytes = extra_padding ? 2 : 1;
    if (decrypted.size() < signature_size + size_bytes) return std::nullopt;
    std::size_t end = decrypted.size() - signature_size;  // one past the last padding byte
    std::size_t n = 0;
    if (extra_padding) n = std::size_t{decrypted[--end]} << 8;
    const std::uint8_t low = decrypted[end - 1];
    n |= low;
    if (end < n + 1) return std::nullopt;
    const std::size_t body_end = end - n - 1;  // the PaddingSize byte's position
    for (std::size_t i = body_end; i < end; ++i)
        if (decrypted[i] != low) return std::nullopt;
    return body_end;
}

// --- RSA --------------------------------------------------------------------

rsa_key::rsa_key(EVP_PKEY* key) : key_(key, &EVP_PKEY_free) {
    if (key != nullptr && !EVP_PKEY_is_a(key, "RSA")) throw std::invalid_argument("not an RSA key");
}

std::size_t rsa_key::bits() const noexcept {
    return key_ ? static_cast<std::size_t>(EVP_PKEY_get_bits(key_.get())) : 0;
}

bool rsa_key::has_private() const noexcept {
    if (!key_) return false;
    BIGNUM* d = nullptr;
    const bool has = EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_RSA_D, &d) == 1 && d != nullptr;
    BN_clear_free(d);
    return has;
}

rsa_key generate_rsa_key(unsigned bits) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits));
    if (key == nullptr) throw_openssl_error("RSA key generation failed");
    return rsa_key(key);
}

std::string private_key_pem(const rsa_key& key) {
    require_rsa(key);
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw_openssl_error("cannot write the private key");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

rsa_key private_key_from_pem(std::string_view pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) throw_openssl_error("cannot read the private key");
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) throw std::runtime_error("not a PEM private key");
    if (!EVP_PKEY_is_a(key, "RSA")) {
        EVP_PKEY_free(key);
        throw std::runtime_error("the private key is not an RSA key");
    }
    return rsa_key(key);
}

bytes rsa_sign_sha256(const rsa_key& key, bytes_view data) {
    require_rsa(key);
    if (!key.has_private()) throw std::invalid_argument("signing needs a private key");
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    std::size_t n = 0;
    if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &n, data.data(), data.size()) != 1)
        throw_openssl_error("RSA signature initialisation failed");
    bytes out(n);
    if (EVP_DigestSign(ctx.get(), out.data(), &n, data.data(), data.size()) != 1)
        throw_openssl_error("RSA signature failed");
    out.resize(n);
    return out;
}

bool rsa_verify_sha256(const rsa_key& key, bytes_view data, bytes_view signature) {
    if (!key) return false;
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) != 1)
        throw_openssl_error("RSA verification initialisation failed");
    const bool ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size()) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

std::size_t rsa_oaep_plain_block_size(const rsa_key& key) noexcept {
    const std::size_t k = key.size_bytes();
    return k > 42 ? k - 42 : 0;
}

std::size_t rsa_oaep_encrypted_size(const rsa_key& key, std::size_t plain_size) noexcept {
    const std::size_t block = rsa_oaep_plain_block_size(key);
    if (block == 0) return 0;
    return (plain_size + block - 1) / block * key.size_bytes();
}

bytes rsa_oaep_encrypt(const rsa_key& key, bytes_view plain) {
    require_rsa(key);
    const std::size_t block = rsa_oaep_plain_block_size(key);
    if (block == 0) throw std::invalid_argument("RSA key too small for OAEP");
    auto ctx = oaep_context(key, true);
    bytes out(rsa_oaep_encrypted_size(key, plain.size()));
    std::size_t written = 0;
    for (std::size_t at = 0; at < plain.size(); at += block) {
        const auto in = plain.subspan(at, std::min(block, plain.size() - at));
        std::size_t n = out.size() - written;
        if (EVP_PKEY_encrypt(ctx.get(), out.data() + written, &n, in.data(), in.size()) != 1)
            throw_openssl_error("RSA-OAEP encryption failed");
        written += n;
    }
    out.resize(written);
    return out;
}

std::optional<bytes> rsa_oaep_decrypt(const rsa_key& key, bytes_view cipher) {
    if (!key || !key.has_private()) throw std::invalid_argument("decryption needs a private key");
    const std::size_t k = key.size_bytes();
    if (cipher.size() % k != 0) return std::nullopt;
    auto ctx = oaep_context(key, false);
    bytes out(cipher.size());  // every plaintext block is shorter than its ciphertext
    std::size_t written = 0;
    for (std::size_t at = 0; at < cipher.size(); at += k) {
        std::size_t n = out.size() - written;
        if (EVP_PKEY_decrypt(ctx.get(), out.data() + written, &n, cipher.data() + at, k) != 1) {
            ERR_clear_error();  // a peer's bad ciphertext, not ours to report twice
            return std::nullopt;
        }
        written += n;
    }
    out.resize(written);
    return out;
}

// --- session proofs, user passwords -------------------------------------------

namespace {

bytes concat(bytes_view a, bytes_view b) {
    bytes out;
    out.reserve(a.size() + b.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

}  // namespace

bytes sign_certificate_and_nonce(const rsa_key& own_key, bytes_view peer_certificate, bytes_view peer_nonce) {
    return rsa_sign_sha256(own_key, concat(peer_certificate, peer_nonce));
}

bool verify_certificate_and_nonce(const rsa_key& peer_key, bytes_view own_certificate, bytes_view own_nonce,
                                  bytes_view signature) {
    return rsa_verify_sha256(peer_key, concat(own_certificate, own_nonce), signature);
}

bytes encrypt_user_password(const rsa_key& server_key, std::string_view password, bytes_view server_nonce) {
    const std::size_t length = password.size() + server_nonce.size();
    bytes plain = {static_cast<std::uint8_t>(length), static_cast<std::uint8_t>(length >> 8),
                   static_cast<std::uint8_t>(length >> 16), static_cast<std::uint8_t>(length >> 24)};
    const auto pw = as_bytes(password);
    plain.insert(plain.end(), pw.begin(), pw.end());
    plain.insert(plain.end(), server_nonce.begin(), server_nonce.end());
    bytes out = rsa_oaep_encrypt(server_key, plain);
    OPENSSL_cleanse(plain.data(), plain.size());
    return out;
}

std::optional<std::string> decrypt_user_password(const rsa_key& server_key, bytes_view encrypted,
                                                 bytes_view server_nonce) {
    auto plain = rsa_oaep_decrypt(server_key, encrypted);
    if (!plain || plain->size() < 4) return std::nullopt;
    const bytes& p = *plain;
    const std::size_t length = std::size_t{p[0]} | std::size_t{p[1]} << 8 | std::size_t{p[2]} << 16 |
                               std::size_t{p[3]} << 24;
    std::optional<std::string> out;
    if (length >= server_nonce.size() && length == p.size() - 4 &&
        std::equal(server_nonce.begin(), server_nonce.end(), p.end() - static_cast<std::ptrdiff_t>(server_nonce.size())))
        out.emplace(p.begin() + 4, p.end() - static_cast<std::ptrdiff_t>(server_nonce.size()));
    OPENSSL_cleanse(plain->data(), plain->size());
    return out;
}

// --- digests, randomness ----------------------------------------------------

sha1_digest thumbprint(bytes_view der) {
    sha1_digest out{};
    std::size_t n = 0;
    if (EVP_Q_digest(nullptr, "SHA1", nullptr, der.data(), der.size(), out.data(), &n) != 1 || n != out.size())
        throw_openssl_error("SHA-1 failed");
    return out;
}

std::string to_hex(bytes_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

bytes random_bytes(std::size_t n) {
    bytes out(n);
    if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) throw_openssl_error("no random bytes available");
    return out;
}

}  // namespace strata::bridges::opcua::crypto
