// The OPC UA security primitives: known-answer vectors (TLS 1.2 PRF,
// RFC 4231, NIST SP 800-38A), key derivation cross-checked against
// node-opcua, the padding layout, RSA round trips and the policy table.
#include "bridges/opcua/crypto.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace strata::opcua::crypto;

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

TEST_CASE("AES-CBC: NIST SP 800-38A F.2.1 to F.2.6, no padding") {
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

TEST_CASE("digests and randomness") {
    // SHA-1("abc"), FIPS 180-2 appendix A.
    CHECK(to_hex(thumbprint(as_bytes("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    const bytes a = random_bytes(32);
    const bytes b = random_bytes(32);
    CHECK(a.size() == 32);
    CHECK(a != b);
    CHECK(random_bytes(0).empty());
}
