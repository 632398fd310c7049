#include "auth/crypto.hpp"
#include "auth/password_file.hpp"
#include "auth/scram.hpp"

#include <catch2/catch.hpp>

using namespace strata::auth;

namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr const char* client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

password_file rfc_file() {
    password_entry e = make_entry("user", "pencil", 1000);
    e.scram = make_scram("pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
    password_file f;
    f.set(std::move(e));
    return f;
}

}  // namespace

TEST_CASE("scram: RFC 7677 test vector") {
    const auto f = rfc_file();
    scram_server s;
    const auto first = s.start(client_first, f, server_nonce);
    REQUIRE(first.ok);
    CHECK(first.data == server_first);
    CHECK(s.user() == "user");
    const auto final_step = s.finish(client_final);
    REQUIRE(final_step.ok);
    CHECK(final_step.data == server_final);
}

TEST_CASE("scram: client-side math gives the RFC's proof") {
    const std::string auth_message = std::string("n=user,r=rOprNGfwEbeRWgbNEkqO,") + server_first + "," +
                                     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const auto salt = *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    CHECK(base64_encode(scram_client_proof("pencil", salt, 4096, auth_message)) ==
          "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    CHECK("v=" + base64_encode(scram_server_signature(make_scram("pencil", salt, 4096), auth_message)) ==
          server_final);
}

TEST_CASE("scram: wrong proof, unknown user, malformed messages") {
    const auto f = rfc_file();
    {
        scram_server s;
        REQUIRE(s.start(client_first, f, server_nonce).ok);
        std::string bad = client_final;
        bad[bad.size() - 5] = 'A';
        const auto r = s.finish(bad);
        CHECK_FALSE(r.ok);
        CHECK(r.data == "e=invalid-proof");
    }
    {
        // Unknown user: a plausible server-first (stable salt), then failure.
        scram_server s1, s2;
        const auto a = s1.start("n,,n=nobody,r=abc", f, "xyz");
        const auto b = s2.start("n,,n=nobody,r=abc", f, "xyz");
        REQUIRE(a.ok);
        CHECK(a.data == b.data);
        CHECK_FALSE(s1.finish("c=biws,r=abcxyz,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").ok);
    }
    {
        scram_server s;
        REQUIRE(s.start(client_first, f, server_nonce).ok);
        // Nonce replaced.
        CHECK_FALSE(s.finish("c=biws,r=other,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").ok);
    }
    for (const char* bad : {"", "n", "p=tls-unique,,n=user,r=a", "n,,r=abc", "n,,n=user", "n,a=other,n=user,r=a",
                            "n,,n=us=41r,r=a", "x,,n=user,r=a"}) {
        INFO(bad);
        scram_server s;
        CHECK_FALSE(s.start(bad, f).ok);
    }
    {
        // Escaped names and a matching authzid are fine.
        scram_server s;
        CHECK(s.start("n,a=a=2Cb,n=a=2Cb,r=nonce", f).ok);
        CHECK(s.user() == "a,b");
    }
}
