#include "auth/identity.hpp"

namespace strata::auth {

std::string certificate_identity(const certificate_names& names, certificate_field field) {
    switch (field) {
    case certificate_field::cn: return names.cn;
    case certificate_field::san_uri: return names.san_uris.empty() ? std::string() : names.san_uris.front();
    case certificate_field::san_dns: return names.san_dns.empty() ? std::string() : names.san_dns.front();
    }
    return {};
}

login_plan plan_login(const login_request& r) {
    login_plan p;
    if (r.username && r.has_password) {
        if (!r.password_file) {
            p.refusal = login_refusal::bad_credentials;
            p.why = "password logins are not configured (auth.password_file)";
            return p;
        }
        p.kind = login_kind::password;
        p.identity = *r.username;
        return p;
    }
    if (!r.certificate_identity.empty()) {
        if (r.username && *r.username != r.certificate_identity) {
            p.refusal = login_refusal::not_authorized;
            p.why = "the user name differs from the certificate's identity";
            return p;
        }
        p.kind = login_kind::certificate;
        p.identity = r.certificate_identity;
        return p;
    }
    if (r.username || r.has_password) {
        p.refusal = login_refusal::bad_credentials;
        p.why = r.username ? "a user name without a password" : "a password without a user name";
        return p;
    }
    if (!r.anonymous_allowed) {
        p.refusal = login_refusal::not_authorized;
        p.why = "anonymous clients are not allowed";
        return p;
    }
    p.kind = login_kind::anonymous;
    return p;
}

}  // namespace strata::auth
