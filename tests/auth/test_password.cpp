#include "auth/crypto.hpp"
#include "auth/password_file.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace strata::auth;

namespace {
std::string hex(std::string_view bytes) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}
}  // namespace

TEST_CASE("crypto: PBKDF2-HMAC-SHA512 and SHA-256 known answers") {
    // RFC 6070-style vector for SHA-512 (widely published): "password"/"salt", 1 iteration.
    CHECK(hex(pbkdf2(digest::sha512, "password", "salt", 1, 64)) ==
          "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
          "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce");
    // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64), first 32 bytes.
    CHECK(hex(pbkdf2(digest::sha256, "passwd", "salt", 1, 32)) ==
          "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
    CHECK(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("crypto: base64 round trip and strict decoding") {
    for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
        const auto enc = base64_encode(s);
        const auto dec = base64_decode(enc);
        REQUIRE(dec.has_value());
        CHECK(*dec == s);
    }
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK_FALSE(base64_decode("Zm8").has_value());      // missing padding
    CHECK_FALSE(base64_decode("Zm=8").has_value());     // data after padding
    CHECK_FALSE(base64_decode("Zm 8=").has_value());    // whitespace
    CHECK_FALSE(base64_decode("Z===").has_value());     // too much padding
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "ab"));
}

TEST_CASE("password entry: make, verify, format, parse") {
    const auto e = make_entry("olga", "s3cret pass", 1000);
    CHECK(e.salt.size() == 16);
    CHECK(e.hash.size() == 64);
    REQUIRE(e.scram.has_value());
    CHECK(verify(e, "s3cret pass"));
    CHECK_FALSE(verify(e, "s3cret pasS"));
    CHECK_FALSE(verify(e, ""));

    const std::string line = format_entry(e);
    CHECK(line.starts_with("olga:$pbkdf2-sha512$1000$"));
    CHECK(line.find(":$scram-sha-256$1000$") != std::string::npos);
    const auto back = parse_entry(line);
    CHECK(back.user == "olga");
    CHECK(back.iterations == 1000);
    CHECK(back.salt == e.salt);
    CHECK(back.hash == e.hash);
    REQUIRE(back.scram.has_value());
    CHECK(back.scram->stored_key == e.scram->stored_key);
    CHECK(back.scram->server_key == e.scram->server_key);
    CHECK(verify(back, "s3cret pass"));

    // Two entries for the same password differ (fresh salts).
    CHECK(format_entry(make_entry("olga", "s3cret pass", 1000)) != line);
}

TEST_CASE("password file: parse errors name the line and the problem") {
    const std::string good = format_entry(make_entry("a", "x", 1000));
    struct row {
        std::string text;
        std::string error;
    };
    const row rows[] = {
        {"# comment\n\nnocolon\n", "p:3: expected USER:$pbkdf2-sha512$ITERATIONS$SALT$HASH"},
        {"u:$md5$1$2$3\n", "p:1: expected a '$pbkdf2-sha512$...' hash"},
        {"u:$pbkdf2-sha512$abc$c2FsdA==$" + std::string(88, 'A') + "\n", "p:1: pbkdf2-sha512: iteration count 'abc' is not a number"},
        {"u:$pbkdf2-sha512$10$c2FsdA==$AAAA\n", "p:1: pbkdf2-sha512: iteration count 10 is below 1000"},
        {"u:$pbkdf2-sha512$1000$c2FsdA=$AAAA\n", "p:1: pbkdf2-sha512 salt is not valid base64"},
        {"u:$pbkdf2-sha512$1000$c2FsdA==$AAAA\n", "p:1: pbkdf2-sha512 hash must be 64 bytes, got 3"},
        {"u:$pbkdf2-sha512$1000$c2FsdA==\n", "p:1: pbkdf2-sha512: expected 3 '$'-separated fields, got 2"},
        {good + "\n" + good + "\n", "p:2: user 'a' appears twice"},
        {":$pbkdf2-sha512$1000$c2FsdA==$AAAA\n", "p:1: the user name is empty"},
        {good + ":x:y\n", "p:1: too many ':'-separated fields"},
    };
    for (const auto& r : rows) {
        INFO(r.text);
        try {
            (void)password_file::parse(r.text, "p");
            FAIL("no error");
        } catch (const password_error& e) {
            CHECK(std::string(e.what()).starts_with(r.error));
        }
    }
}

TEST_CASE("password file: verify, set, remove, save and load") {
    password_file f;
    f.set(make_entry("alice", "wonderland", 1000));
    f.set(make_entry("bob", "builder", 1000));
    CHECK(f.verify("alice", "wonderland"));
    CHECK_FALSE(f.verify("alice", "builder"));
    CHECK_FALSE(f.verify("carol", "wonderland"));
    f.set(make_entry("alice", "new", 1000));  // replaces
    CHECK(f.entries().size() == 2);
    CHECK(f.verify("alice", "new"));

    const auto dir = std::filesystem::temp_directory_path() / ("strata-pw-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = (dir / "passwd").string();
    f.save(path);
    CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_read) ==
          std::filesystem::perms::none);
    auto g = password_file::load(path);
    CHECK(g.verify("bob", "builder"));
    CHECK(g.remove("bob"));
    CHECK_FALSE(g.remove("bob"));
    CHECK(g.find("bob") == nullptr);
    std::filesystem::remove_all(dir);

    CHECK_THROWS_WITH(password_file::load("/nonexistent/passwd"),
                      Catch::Matchers::StartsWith("cannot read password file '/nonexistent/passwd'"));
}

TEST_CASE("user names") {
    CHECK(check_user_name("olga").empty());
    CHECK(check_user_name("spiffe://acme/plc-7").empty() == false);  // contains ':'
    CHECK_FALSE(check_user_name("").empty());
    CHECK_FALSE(check_user_name("a\nb").empty());
    CHECK_FALSE(check_user_name("anonymous").empty());
}
