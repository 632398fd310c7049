// The OPC UA security primitives: known-answer vectors (TLS 1.2 PRF,
// RFC 4231, NIST SP 800-38A), key derivation cross-checked against
// node-opcua, the padding layout, RSA round trips and the policy table;
// then the application certificate and the trust list, with certificates
// made by the test in a temporary directory.
#include "bridges/opcua/crypto.hpp"
#include "bridges/opcua/pki.hpp"

#include <catch2/catch.hpp>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

using namespace strata::bridges::opcua::crypto;

namespace {

bytes unhex(std::string_view hex) {
    bytes out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

bytes to_bytes(std::string_view s) {
    const auto v = as_bytes(s);
    return bytes(v.begin(), v.end());
}

bytes concat(bytes_view a, bytes_view b) {
    bytes out(a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

bytes counting(std::uint8_t first, std::size_t n) {
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(first + i);
    return out;
}

// One 2048-bit key for all RSA tests of this binary (generation is slow
// under the sanitizers).
const rsa_key& test_key() {
    static const rsa_key key = generate_rsa_key(2048);
    return key;
}

}  // namespace

TEST_CASE("policies: the table's URIs and lengths") {
    const auto& none = policy(policy_id::none);
    CHECK(none.is_none());
    CHECK(none.uri == "http://opcfoundation.org/UA/SecurityPolicy#None");
    CHECK(none.key_size_allowed(1024));

    const auto& b = policy(policy_id::basic256sha256);
    CHECK(b.uri == "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256");
    CHECK(b.asymmetric_signature_uri == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    CHECK(b.asymmetric_encryption_uri == "http://www.w3.org/2001/04/xmlenc#rsa-oaep");
    CHECK(b.symmetric_encryption_uri == "http://www.w3.org/2001/04/xmlenc#aes256-cbc");
    CHECK(b.signing_key_length == 32);
    CHECK(b.encrypting_key_length == 32);
    CHECK(b.block_size == 16);
    CHECK(b.symmetric_signature_size == 32);
    CHECK(b.nonce_length == 32);
    CHECK(b.asymmetric_encryption_overhead == 42);
    CHECK_FALSE(b.key_size_allowed(1024));
    CHECK(b.key_size_allowed(2048));
    CHECK(b.key_size_allowed(4096));
    CHECK_FALSE(b.key_size_allowed(8192));

    const auto& a = policy(policy_id::aes128_sha256_rsaoaep);
    CHECK(a.uri == "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep");
    CHECK(a.symmetric_encryption_uri == "http://www.w3.org/2001/04/xmlenc#aes128-cbc");
    CHECK(a.signing_key_length == 32);
    CHECK(a.encrypting_key_length == 16);

    CHECK(security_policies().size() == 3);
    CHECK(find_policy_by_uri(a.uri) == &a);
    CHECK(find_policy_by_uri("http://opcfoundation.org/UA/SecurityPolicy#Basic128Rsa15") == nullptr);
    CHECK(find_policy_by_name("basic256sha256") == &b);
    CHECK(find_policy_by_name("None") == &none);
    CHECK(find_policy_by_name("Basic256") == nullptr);
}

TEST_CASE("P_SHA256: the TLS 1.2 PRF SHA-256 test vector") {
    // Published TLS 1.2 PRF vector: PRF(secret, "test label", seed) is
    // P_SHA256(secret, label || seed), 100 bytes.
    const bytes secret = unhex("9bbe436ba940f017b17652849a71db35");
    const bytes seed = concat(as_bytes("test label"), unhex("a0ba9f936cda311827a6f796ffd5198c"));
    CHECK(to_hex(p_sha256(secret, seed, 100)) ==
          "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
          "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
          "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
          "87347b66");
    // A shorter output is a prefix of the longer one.
    CHECK(to_hex(p_sha256(secret, seed, 20)) == "e3f229ba727be17b8d122620557cd453c2aab21d");
}

TEST_CASE("key derivation: the keys node-opcua derives for the same nonces") {
    // Output of tests/opcua/peer/derive_keys.js (node-opcua 2.182.2's own
    // computeDerivedKeys, as its secure channel calls it).
    const bytes client_nonce = counting(0x00, 32);
    const bytes server_nonce = counting(0xa0, 32);

    const auto b = derive_channel_keys(policy(policy_id::basic256sha256), client_nonce, server_nonce);
    CHECK(to_hex(b.client.signing_key) == "a70a99cc2ac5a962005d4ec1762c192a07390a85772b5bf5e2c96d9fc18406d2");
    CHECK(to_hex(b.client.encrypting_key) == "5f99e138f539b8356b9b40d05411e856a7ff4bc5b416cf15f9600de1d8b652fa");
    CHECK(to_hex(b.client.iv) == "2c23b363b407b3f737fcae16bacebc2f");
    CHECK(to_hex(b.server.signing_key) == "49adaac108434c093e9175f2d07c7159ef60b69ea0159f874cba31f99c949ef2");
    CHECK(to_hex(b.server.encrypting_key) == "574b5bd1027338064dd4be7f0956e1910b5cfd5a873ae212c30f8d191890cc45");
    CHECK(to_hex(b.server.iv) == "0668bd6612fd9776cf39b099e064384b");

    const auto a = derive_channel_keys(policy(policy_id::aes128_sha256_rsaoaep), client_nonce, server_nonce);
    CHECK(to_hex(a.client.signing_key) == "a70a99cc2ac5a962005d4ec1762c192a07390a85772b5bf5e2c96d9fc18406d2");
    CHECK(to_hex(a.client.encrypting_key) == "5f99e138f539b8356b9b40d05411e856");
    CHECK(to_hex(a.client.iv) == "a7ff4bc5b416cf15f9600de1d8b652fa");
    CHECK(to_hex(a.server.signing_key) == "49adaac108434c093e9175f2d07c7159ef60b69ea0159f874cba31f99c949ef2");
    CHECK(to_hex(a.server.encrypting_key) == "574b5bd1027338064dd4be7f0956e191");
    CHECK(to_hex(a.server.iv) == "0b5cfd5a873ae212c30f8d191890cc45");

    CHECK_THROWS_AS(derive_keys(policy(policy_id::none), client_nonce, server_nonce), std::invalid_argument);
}

TEST_CASE("HMAC-SHA256: RFC 4231 test cases 1, 2 and 6") {
    CHECK(to_hex(hmac_sha256(bytes(20, 0x0b), as_bytes("Hi There"))) ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CHECK(to_hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(to_hex(hmac_sha256(bytes(131, 0xaa), as_bytes("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    const bytes key = bytes(32, 0x42);
    bytes sig = hmac_sha256(key, as_bytes("chunk"));
    CHECK(hmac_sha256_verify(key, as_bytes("chunk"), sig));
    CHECK_FALSE(hmac_sha256_verify(key, as_bytes("chunK"), sig));
    sig[31] ^= 1;
    CHECK_FALSE(hmac_sha256_verify(key, as_bytes("chunk"), sig));
    sig.pop_back();
    CHECK_FALSE(hmac_sha256_verify(key, as_bytes("chunk"), sig));
}

TEST_CASE("AES-CBC: NIST SP 800-38A F.2.1, F.2.2 (AES-128), F.2.5, F.2.6 (AES-256), no padding") {
    const bytes iv = unhex("000102030405060708090a0b0c0d0e0f");
    const bytes plain = unhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
    struct vector {
        const char* key;
        const char* cipher;
    };
    const vector vectors[] = {
        {"2b7e151628aed2a6abf7158809cf4f3c",  // F.2.1 / F.2.2, AES-128
         "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
         "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"},
        {"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",  // F.2.5 / F.2.6, AES-256
         "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
         "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"},
    };
    for (const auto& v : vectors) {
        const bytes key = unhex(v.key);
        const auto enc = aes_cbc_encrypt(key, iv, plain);
        REQUIRE(enc.has_value());
        CHECK(to_hex(*enc) == v.cipher);
        const auto dec = aes_cbc_decrypt(key, iv, unhex(v.cipher));
        REQUIRE(dec.has_value());
        CHECK(*dec == plain);
    }
    const bytes key16(16, 1);
    // Not a whole number of blocks: refused, not padded.
    CHECK_FALSE(aes_cbc_encrypt(key16, iv, bytes(17, 0)).has_value());
    CHECK_FALSE(aes_cbc_decrypt(key16, iv, bytes(15, 0)).has_value());
    const auto empty = aes_cbc_encrypt(key16, iv, bytes{});
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
    CHECK_THROWS_AS(aes_cbc_encrypt(bytes(24, 1), iv, plain), std::invalid_argument);
    CHECK_THROWS_AS(aes_cbc_encrypt(key16, bytes(8, 0), plain), std::invalid_argument);
}

TEST_CASE("padding: sizes and bytes as 10000-6 6.7.2.5 lays them out") {
    SECTION("symmetric, 16-byte blocks, 32-byte HMAC") {
        // 8 (sequence header) + 100 (body) + 1 (size byte) + 32 = 141: 3 bytes to 144.
        auto p = make_padding(108, 32, 16, false);
        CHECK(p.padding_size == 3);
        CHECK(p.data == bytes{3, 3, 3, 3});
        // Already aligned with the size byte alone: PaddingSize 0.
        p = make_padding(15, 32, 16, false);
        CHECK(p.padding_size == 0);
        CHECK(p.data == bytes{0});
        // One byte short of alignment without the size byte: a whole block more.
        p = make_padding(16, 32, 16, false);
        CHECK(p.padding_size == 15);
        CHECK(p.data.size() == 16);
        CHECK(p.data == bytes(16, 15));
    }
    SECTION("every size gives a whole number of blocks") {
        for (std::size_t block : {16u, 214u, 470u})
            for (std::size_t size = 0; size < 3 * block; ++size) {
                const bool extra = block > 256;
                const auto p = make_padding(size, 256, block, extra);
                INFO("block " << block << " size " << size);
                CHECK((size + p.data.size() + 256) % block == 0);
                CHECK(p.padding_size < block);
                CHECK(p.data.size() == p.padding_size + 1 + (extra ? 1 : 0));
            }
    }
    SECTION("asymmetric with a 4096-bit key: ExtraPadding carries the high byte") {
        // Plaintext block of a 4096-bit key with OAEP-SHA1: 512 - 42 = 470.
        CHECK(needs_extra_padding(512));
        CHECK_FALSE(needs_extra_padding(256));
        // 10 + 1 + 1 + 512 = 524 -> next multiple of 470 is 940: 416 padding bytes.
        const auto p = make_padding(10, 512, 470, true);
        CHECK(p.padding_size == 416);
        REQUIRE(p.data.size() == 418);
        CHECK(p.data.front() == (416 & 0xFF));
        CHECK(p.data[1] == (416 & 0xFF));
        CHECK(p.data.back() == (416 >> 8));
    }
    SECTION("strip_padding undoes make_padding and refuses bad padding") {
        for (bool extra : {false, true}) {
            const std::size_t block = extra ? 470 : 16;
            for (std::size_t size : {0u, 1u, 15u, 16u, 100u, 469u}) {
                bytes msg = counting(0x10, size);
                const auto p = make_padding(size, 32, block, extra);
                msg.insert(msg.end(), p.data.begin(), p.data.end());
                msg.insert(msg.end(), 32, 0xEE);  // the signature
                const auto body = strip_padding(msg, 32, extra);
                REQUIRE(body.has_value());
                CHECK(*body == size);
            }
        }
        bytes bad = {1, 2, 3, 2, 2, 2, 9};  // body 1 2 3, PaddingSize 2, padding 2 2, signature 9
        CHECK(strip_padding(bad, 1, false) == std::optional<std::size_t>(3));
        bad = {1, 2, 3, 2, 7, 2, 9};  // a padding byte differs
        CHECK_FALSE(strip_padding(bad, 1, false).has_value());
        bad = {5, 5, 9};  // PaddingSize larger than the data
        CHECK_FALSE(strip_padding(bad, 1, false).has_value());
        CHECK_FALSE(strip_padding(bytes{9}, 1, false).has_value());
    }
}

TEST_CASE("RSA: PKCS#1 v1.5 SHA-256 signatures") {
    const auto& key = test_key();
    CHECK(key.bits() == 2048);
    CHECK(key.size_bytes() == 256);
    CHECK(key.has_private());
    const bytes data = to_bytes("certificate bytes followed by a nonce");
    const bytes sig = rsa_sign_sha256(key, data);
    CHECK(sig.size() == 256);
    CHECK(rsa_verify_sha256(key, data, sig));
    bytes tampered = data;
    tampered[0] ^= 1;
    CHECK_FALSE(rsa_verify_sha256(key, tampered, sig));
    bytes bad_sig = sig;
    bad_sig[100] ^= 0x80;
    CHECK_FALSE(rsa_verify_sha256(key, data, bad_sig));
    CHECK_FALSE(rsa_verify_sha256(key, data, bytes(10, 0)));
    CHECK_FALSE(rsa_verify_sha256(rsa_key{}, data, sig));

    // The key survives a PEM round trip.
    const auto again = private_key_from_pem(private_key_pem(key));
    CHECK(rsa_verify_sha256(again, data, rsa_sign_sha256(again, data)));
    CHECK(rsa_verify_sha256(key, data, rsa_sign_sha256(again, data)));
    CHECK_THROWS(private_key_from_pem("not a key"));
}

TEST_CASE("RSA: OAEP-SHA1 encryption in blocks") {
    const auto& key = test_key();
    CHECK(rsa_oaep_plain_block_size(key) == 214);
    CHECK(rsa_oaep_encrypted_size(key, 0) == 0);
    CHECK(rsa_oaep_encrypted_size(key, 1) == 256);
    CHECK(rsa_oaep_encrypted_size(key, 214) == 256);
    CHECK(rsa_oaep_encrypted_size(key, 215) == 512);
    for (std::size_t size : {1u, 32u, 214u, 215u, 428u, 1000u}) {
        const bytes plain = counting(static_cast<std::uint8_t>(size), size);
        const bytes cipher = rsa_oaep_encrypt(key, plain);
        CHECK(cipher.size() == rsa_oaep_encrypted_size(key, size));
        const auto back = rsa_oaep_decrypt(key, cipher);
        REQUIRE(back.has_value());
        CHECK(*back == plain);
    }
    // OAEP is randomised: the same plaintext encrypts differently.
    CHECK(rsa_oaep_encrypt(key, as_bytes("pw")) != rsa_oaep_encrypt(key, as_bytes("pw")));
    bytes cipher = rsa_oaep_encrypt(key, as_bytes("password"));
    CHECK_FALSE(rsa_oaep_decrypt(key, bytes(cipher.begin(), cipher.end() - 1)).has_value());
    cipher[17] ^= 1;
    CHECK_FALSE(rsa_oaep_decrypt(key, cipher).has_value());
}

TEST_CASE("session signatures and the encrypted user password") {
    const auto& server_key = test_key();
    const bytes client_cert = to_bytes("client certificate DER");
    const bytes client_nonce = counting(1, 32);
    const bytes sig = sign_certificate_and_nonce(server_key, client_cert, client_nonce);
    CHECK(sig == rsa_sign_sha256(server_key, concat(client_cert, client_nonce)));
    CHECK(verify_certificate_and_nonce(server_key, client_cert, client_nonce, sig));
    CHECK_FALSE(verify_certificate_and_nonce(server_key, client_cert, counting(2, 32), sig));

    const bytes server_nonce = counting(0x80, 32);
    const bytes blob = encrypt_user_password(server_key, "s3cret \xc3\xa4", server_nonce);
    CHECK(blob.size() == 256);
    // The layout under the encryption: length, password, nonce.
    const auto plain = rsa_oaep_decrypt(server_key, blob);
    REQUIRE(plain.has_value());
    REQUIRE(plain->size() == 4 + 9 + 32);
    CHECK(bytes(plain->begin(), plain->begin() + 4) == bytes{9 + 32, 0, 0, 0});
    CHECK(bytes(plain->begin() + 13, plain->end()) == server_nonce);
    CHECK(decrypt_user_password(server_key, blob, server_nonce) == std::optional<std::string>("s3cret \xc3\xa4"));
    CHECK_FALSE(decrypt_user_password(server_key, blob, counting(0x81, 32)).has_value());
    CHECK_FALSE(decrypt_user_password(server_key, bytes(256, 7), server_nonce).has_value());
    // A password longer than one OAEP block spans two.
    const std::string long_password(300, 'p');
    const bytes long_blob = encrypt_user_password(server_key, long_password, server_nonce);
    CHECK(long_blob.size() == 512);
    CHECK(decrypt_user_password(server_key, long_blob, server_nonce) == std::optional<std::string>(long_password));
}

TEST_CASE("digests and randomness") {
    // SHA-1("abc"), FIPS 180-2 appendix A.
    CHECK(to_hex(thumbprint(as_bytes("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    const bytes a = random_bytes(32);
    const bytes b = random_bytes(32);
    CHECK(a.size() == 32);
    CHECK(a != b);
    CHECK(random_bytes(0).empty());
}

// ---------------------------------------------------------------------------
// Certificates and the trust list

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using strata::bridges::opcua::pki::certificate_spec;
using strata::bridges::opcua::pki::trust_list;
using strata::bridges::opcua::pki::trust_options;

// A fresh directory under the system's temporary one, removed afterwards.
struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("strata-opcua-test-" + to_hex(random_bytes(6)));
    temp_dir() { fs::create_directories(path); }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

const rsa_key& ca_key() {
    static const rsa_key key = generate_rsa_key(2048);
    return key;
}

certificate_spec spec(std::string cn, bool ca = false, std::chrono::system_clock::time_point not_after =
                                                            std::chrono::system_clock::now() + 24h * 30) {
    certificate_spec s;
    s.common_name = std::move(cn);
    s.organization = "Test Plant";
    if (!ca) {
        s.application_uri = "urn:test:" + s.common_name;
        s.host_names = {"plc.test", "127.0.0.1"};
    }
    s.not_before = std::chrono::system_clock::now() - 24h;
    s.not_after = not_after;
    s.certificate_authority = ca;
    return s;
}

bytes self_signed(const std::string& cn) {
    return strata::bridges::opcua::pki::issue_certificate(spec(cn), test_key(), test_key());
}

void write_file(const fs::path& path, bytes_view data) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                static_cast<std::streamsize>(data.size()));
}

bytes read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return bytes(std::istreambuf_iterator<char>(in), {});
}

std::string pem_of(bytes_view der) {
    const unsigned char* p = der.data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    X509_free(cert);
    return out;
}

std::size_t files_in(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

}  // namespace

TEST_CASE("application certificate: created on first start, read back with OpenSSL, loaded later") {
    temp_dir dir;
    strata::bridges::opcua::pki::application_certificate_options o;
    o.directory = dir.path / "own";
    o.application_uri = "urn:strata:test-gateway";
    o.application_name = "Strata test";
    o.organization = "Acme";
    o.host_name = "edge-gw-1.acme.test";
    o.validity = std::chrono::days(30);

    const auto made = strata::bridges::opcua::pki::load_or_create_application_certificate(o);
    CHECK(made.created);
    CHECK(made.key.bits() == 2048);
    CHECK(made.key.has_private());
    CHECK(fs::exists(made.certificate_file));
    CHECK((fs::status(made.key_file).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(read_file(made.certificate_file) == made.der);
    CHECK(made.info.thumbprint == to_hex(thumbprint(made.der)));

    // Parse it back with OpenSSL alone.
    const unsigned char* p = made.der.data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(made.der.size()));
    REQUIRE(cert != nullptr);
    CHECK(X509_get_version(cert) == X509_VERSION_3);
    CHECK(X509_get_signature_nid(cert) == NID_sha256WithRSAEncryption);
    CHECK(X509_check_issued(cert, cert) == X509_V_OK);  // self-signed
    CHECK(X509_check_ca(cert) == 0);                    // basicConstraints CA:FALSE
    const auto usage = X509_get_key_usage(cert);
    CHECK(usage == (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION | KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT |
                    KU_KEY_CERT_SIGN));
    CHECK(X509_get_extended_key_usage(cert) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    REQUIRE(names != nullptr);
    REQUIRE(sk_GENERAL_NAME_num(names) == 2);
    const auto text = [](const ASN1_IA5STRING* s) {
        return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<std::size_t>(ASN1_STRING_length(s)));
    };
    CHECK(sk_GENERAL_NAME_value(names, 0)->type == GEN_URI);
    CHECK(text(sk_GENERAL_NAME_value(names, 0)->d.uniformResourceIdentifier) == "urn:strata:test-gateway");
    CHECK(sk_GENERAL_NAME_value(names, 1)->type == GEN_DNS);
    CHECK(text(sk_GENERAL_NAME_value(names, 1)->d.dNSName) == "edge-gw-1.acme.test");
    GENERAL_NAMES_free(names);
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    CHECK(std::string(cn) == "Strata test");
    char org[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, org, sizeof org);
    CHECK(std::string(org) == "Acme");
    const auto days = std::chrono::duration_cast<std::chrono::hours>(made.info.not_after - made.info.not_before);
    CHECK(days == 24h * 31);  // the configured 30 days plus a day of clock slack
    X509_free(cert);

    // The key signs what the certificate's public key verifies.
    const auto pub = strata::bridges::opcua::pki::certificate_public_key(made.der);
    CHECK(rsa_verify_sha256(pub, as_bytes("x"), rsa_sign_sha256(made.key, as_bytes("x"))));

    SECTION("the next start loads the same certificate") {
        const auto again = strata::bridges::opcua::pki::load_or_create_application_certificate(o);
        CHECK_FALSE(again.created);
        CHECK(again.der == made.der);
        CHECK(private_key_pem(again.key) == private_key_pem(made.key));
        CHECK(again.info.application_uri == "urn:strata:test-gateway");
        CHECK(again.info.dns_names == std::vector<std::string>{"edge-gw-1.acme.test"});
    }
    SECTION("a changed application URI is an error naming the files") {
        o.application_uri = "urn:strata:other";
        CHECK_THROWS_WITH(strata::bridges::opcua::pki::load_or_create_application_certificate(o),
                          Catch::Contains("urn:strata:test-gateway") && Catch::Contains("client_certificate.der"));
    }
    SECTION("a missing key is an error, nothing is overwritten") {
        fs::remove(made.key_file);
        CHECK_THROWS_WITH(strata::bridges::opcua::pki::load_or_create_application_certificate(o),
                          Catch::Contains("client_private_key.pem is missing"));
        CHECK(read_file(made.certificate_file) == made.der);
    }
    SECTION("a key that is not the certificate's is an error") {
        fs::remove(made.key_file);
        const std::string other = private_key_pem(test_key());
        write_file(made.key_file, as_bytes(other));
        CHECK_THROWS_WITH(strata::bridges::opcua::pki::load_or_create_application_certificate(o),
                          Catch::Contains("is not the private key of"));
    }
}

TEST_CASE("certificate helpers: inspection, chains, application URI") {
    const bytes cert = self_signed("server-a");
    const auto info = strata::bridges::opcua::pki::inspect_certificate(cert);
    REQUIRE(info.has_value());
    CHECK(info->subject == "CN=server-a,O=Test Plant");
    CHECK(info->common_name == "server-a");
    CHECK(info->application_uri == "urn:test:server-a");
    CHECK(info->dns_names == std::vector<std::string>{"plc.test"});  // 127.0.0.1 is an iPAddress name
    CHECK(info->key_bits == 2048);
    CHECK_FALSE(strata::bridges::opcua::pki::inspect_certificate(as_bytes("garbage")).has_value());
    CHECK_FALSE(strata::bridges::opcua::pki::certificate_public_key(as_bytes("garbage")));

    const bytes ca = strata::bridges::opcua::pki::issue_certificate(spec("Test CA", true), ca_key(), ca_key());
    const bytes chain = concat(cert, ca);
    CHECK(strata::bridges::opcua::pki::leaf_certificate(chain) == std::optional<bytes>(cert));
    CHECK_FALSE(strata::bridges::opcua::pki::leaf_certificate(as_bytes("garbage")).has_value());

    CHECK_FALSE(strata::bridges::opcua::pki::application_uri_mismatch(cert, "urn:test:server-a").has_value());
    const auto mismatch = strata::bridges::opcua::pki::application_uri_mismatch(cert, "urn:test:server-b");
    REQUIRE(mismatch.has_value());
    CHECK_THAT(*mismatch, Catch::Contains("urn:test:server-a") && Catch::Contains("urn:test:server-b") &&
                              Catch::Contains(info->thumbprint));
    CHECK(strata::bridges::opcua::pki::application_uri_mismatch(ca, "urn:x").value_or("").find("no URI") != std::string::npos);
}

TEST_CASE("trust list: unknown certificates are rejected and filed, trusted ones accepted") {
    temp_dir dir;
    const trust_list trust(strata::bridges::opcua::pki::default_trust_options(dir.path));
    CHECK(fs::is_directory(dir.path / "trusted"));
    CHECK(fs::is_directory(dir.path / "rejected"));
    const bytes server = self_signed("plc-7");
    const auto info = *strata::bridges::opcua::pki::inspect_certificate(server);

    auto v = trust.check(server);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("CN=plc-7") && Catch::Contains(info.thumbprint) &&
                            Catch::Contains("not trusted") && Catch::Contains("move it to"));
    REQUIRE_FALSE(v.rejected_file.empty());
    CHECK(v.rejected_file.parent_path() == dir.path / "rejected");
    CHECK(v.rejected_file.filename() == "plc-7-" + info.thumbprint + ".der");
    CHECK(read_file(v.rejected_file) == server);
    // Refused again: the same file, neither a second one nor rewritten.
    const auto written = fs::last_write_time(v.rejected_file);
    CHECK_FALSE(trust.check(server).trusted);
    CHECK(files_in(dir.path / "rejected") == 1);
    CHECK(fs::last_write_time(v.rejected_file) == written);

    // The operator moves it into trusted/: accepted on the next attempt.
    fs::rename(v.rejected_file, dir.path / "trusted" / v.rejected_file.filename());
    v = trust.check(server);
    CHECK(v.trusted);
    CHECK(v.error.empty());
    // Another certificate with the same key and subject is still unknown.
    CHECK_FALSE(trust.check(self_signed("plc-7")).trusted);

    // Not a certificate at all.
    v = trust.check(as_bytes("not a certificate"));
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("not a valid X.509 certificate"));

    // The trust list gone: everything refused, and the error says why.
    fs::remove_all(dir.path / "trusted");
    v = trust.check(server);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("cannot read the trust list"));
}

TEST_CASE("trust list: validity dates") {
    temp_dir dir;
    const trust_list trust(strata::bridges::opcua::pki::default_trust_options(dir.path));
    const auto now = std::chrono::system_clock::now();
    auto s = spec("old-plc", false, now - 24h);
    s.not_before = now - 24h * 400;
    const bytes expired = strata::bridges::opcua::pki::issue_certificate(s, test_key(), test_key());
    write_file(dir.path / "trusted" / "old-plc.der", expired);

    auto v = trust.check(expired);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("CN=old-plc") && Catch::Contains("expired on"));
    CHECK(v.rejected_file.empty());  // already in trusted/: a copy would not help
    CHECK(files_in(dir.path / "rejected") == 0);

    const bytes current = self_signed("plc-8");
    write_file(dir.path / "trusted" / "plc-8.der", current);
    CHECK(trust.check(current).trusted);
    // The same certificate checked at a time past its end, or before its start.
    v = trust.check(current, now + 24h * 365);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("expired on"));
    v = trust.check(current, now - 24h * 7);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("not valid before"));
}

TEST_CASE("trust list: a certificate issued by a trusted CA") {
    temp_dir dir;
    const trust_list trust(strata::bridges::opcua::pki::default_trust_options(dir.path));
    const bytes ca = strata::bridges::opcua::pki::issue_certificate(spec("Plant CA", true), ca_key(), ca_key());
    const bytes server = strata::bridges::opcua::pki::issue_certificate(spec("plc-9"), test_key(), ca_key(), ca);

    // Without the CA in the list: rejected, and so is the leaf sent with its CA.
    CHECK_FALSE(trust.check(server).trusted);
    CHECK_FALSE(trust.check(concat(server, ca)).trusted);

    // The CA as PEM in trusted/: the leaf alone and the chain are trusted.
    const std::string pem = pem_of(ca);
    write_file(dir.path / "trusted" / "plant-ca.pem", as_bytes(pem));
    CHECK(trust.check(server).trusted);
    CHECK(trust.check(concat(server, ca)).trusted);

    // A leaf from another CA of the same name is not.
    const bytes rogue_ca = strata::bridges::opcua::pki::issue_certificate(spec("Plant CA", true), test_key(), test_key());
    const bytes rogue = strata::bridges::opcua::pki::issue_certificate(spec("plc-9"), test_key(), test_key(), rogue_ca);
    auto v = trust.check(rogue);
    CHECK_FALSE(v.trusted);
    CHECK_FALSE(v.error.empty());

    // An expired CA makes its leaves untrusted too, and the error says it was the issuer.
    temp_dir dir2;
    const trust_list trust2(strata::bridges::opcua::pki::default_trust_options(dir2.path));
    auto old = spec("Old CA", true, std::chrono::system_clock::now() - 1h);
    const bytes old_ca = strata::bridges::opcua::pki::issue_certificate(old, ca_key(), ca_key());
    const bytes leaf = strata::bridges::opcua::pki::issue_certificate(spec("plc-10"), test_key(), ca_key(), old_ca);
    write_file(dir2.path / "trusted" / "old-ca.der", old_ca);
    v = trust2.check(leaf);
    CHECK_FALSE(v.trusted);
    CHECK_THAT(v.error, Catch::Contains("its issuer") && Catch::Contains("CN=Old CA") && Catch::Contains("expired"));

    // Files that hold no certificate are named in the error.
    write_file(dir2.path / "trusted" / "README.txt", as_bytes("notes"));
    CHECK_THAT(trust2.check(leaf).error, Catch::Contains("README.txt"));
}

TEST_CASE("trust list: trust_any accepts every certificate, but not garbage") {
    temp_dir dir;
    auto options = strata::bridges::opcua::pki::default_trust_options(dir.path);
    options.trust_any = true;
    const trust_list trust(options);
    CHECK(trust.check(self_signed("anything")).trusted);
    CHECK_FALSE(trust.check(as_bytes("junk")).trusted);
    CHECK(files_in(dir.path / "rejected") == 0);
}
