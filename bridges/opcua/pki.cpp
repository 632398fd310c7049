#include "bridges/opcua/pki.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace strata::bridges::opcua::pki {

namespace {

namespace fs = std::filesystem;
using crypto::openssl_ptr;
using crypto::throw_openssl_error;
using x509_ptr = openssl_ptr<X509, X509_free>;
using bio_ptr = openssl_ptr<BIO, BIO_free_all>;
using store_ptr = openssl_ptr<X509_STORE, X509_STORE_free>;
using store_ctx_ptr = openssl_ptr<X509_STORE_CTX, X509_STORE_CTX_free>;

void free_x509_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using x509_stack_ptr = openssl_ptr<STACK_OF(X509), free_x509_stack>;
void free_general_names(GENERAL_NAMES* n) { GENERAL_NAMES_free(n); }
using general_names_ptr = openssl_ptr<GENERAL_NAMES, free_general_names>;

// --- parsing ----------------------------------------------------------------

// Parses one DER certificate at the front of `der`, advancing it.
x509_ptr parse_der(bytes_view& der) {
    const unsigned char* p = der.data();
    x509_ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert) {
        ERR_clear_error();
        return nullptr;
    }
    der = der.subspan(static_cast<std::size_t>(p - der.data()));
    return cert;
}

// Every certificate of a concatenated DER chain; empty when any part is not one.
std::vector<x509_ptr> parse_der_chain(bytes_view der) {
    std::vector<x509_ptr> out;
    while (!der.empty()) {
        auto cert = parse_der(der);
        if (!cert) return {};
        out.push_back(std::move(cert));
    }
    return out;
}

bytes to_der(X509* cert) {
    const int n = i2d_X509(cert, nullptr);
    if (n <= 0) throw_openssl_error("cannot encode a certificate");
    bytes out(static_cast<std::size_t>(n));
    unsigned char* p = out.data();
    i2d_X509(cert, &p);
    return out;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The certificates in a trust list file: one DER certificate, or any
// number of PEM ones. Empty when the file holds none.
std::vector<x509_ptr> read_certificates(const fs::path& path) {
    const std::string text = read_file(path);
    const auto raw = crypto::as_bytes(text);
    if (auto der = parse_der_chain(raw); !der.empty()) return der;
    std::vector<x509_ptr> out;
    bio_ptr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    while (bio) {
        x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert) break;
        out.push_back(std::move(cert));
    }
    ERR_clear_error();  // the end of the PEM data reads as an error
    return out;
}

time_point to_time_point(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string format_time(time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string one_line(const X509_NAME* name) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio) throw_openssl_error("cannot allocate a BIO");
    X509_NAME_print_ex(bio.get(), name, 0, (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | XN_FLAG_SEP_COMMA_PLUS);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string common_name(const X509_NAME* name) {
    const int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return {};
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

certificate_info info_of(X509* cert) {
    certificate_info info;
    info.subject = one_line(X509_get_subject_name(cert));
    info.common_name = common_name(X509_get_subject_name(cert));
    info.thumbprint = crypto::to_hex(crypto::thumbprint(to_der(cert)));
    info.not_before = to_time_point(X509_get0_notBefore(cert));
    info.not_after = to_time_point(X509_get0_notAfter(cert));
    if (EVP_PKEY* key = X509_get0_pubkey(cert); key != nullptr && EVP_PKEY_is_a(key, "RSA"))
        info.key_bits = static_cast<std::size_t>(EVP_PKEY_get_bits(key));
    general_names_ptr names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
        const auto text = [](const ASN1_IA5STRING* s) {
            return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                               static_cast<std::size_t>(ASN1_STRING_length(s)));
        };
        if (n->type == GEN_URI && !info.application_uri)
            info.application_uri = text(n->d.uniformResourceIdentifier);
        else if (n->type == GEN_DNS)
            info.dns_names.push_back(text(n->d.dNSName));
    }
    ERR_clear_error();  // a certificate without the extension leaves a queued error
    return info;
}

// "subject (SHA-1 thumbprint ...)" for messages.
std::string describe(const certificate_info& info) {
    return "\"" + info.subject + "\" (SHA-1 thumbprint " + info.thumbprint + ")";
}

// --- writing files ----------------------------------------------------------

// Writes `data` to `path` through a temporary file in the same directory
// and a rename, so a reader never sees half a file. With `exclusive`, an
// existing `path` is an error instead of being replaced.
void write_file_atomically(const fs::path& path, bytes_view data, mode_t mode, bool exclusive) {
    const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid()) + "-" +
                         crypto::to_hex(crypto::random_bytes(4));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    const auto failed = [&](const char* what) {
        const std::string reason = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(std::string("cannot ") + what + " " + path.string() + ": " + reason);
    };
    if (fd < 0) failed("create");
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) failed("write");
        if (n == 0) {
            errno = EIO;
            failed("write");
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) failed("write");
    ::close(fd);
    // link() fails if the target exists: the exclusive variant of rename.
    const int rc = exclusive ? ::link(tmp.c_str(), path.c_str()) : ::rename(tmp.c_str(), path.c_str());
    const int err = errno;
    if (exclusive) ::unlink(tmp.c_str());
    if (rc != 0) {
        if (!exclusive) ::unlink(tmp.c_str());
        throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(err));
    }
    // The new directory entry itself survives a crash only once the
    // directory is synced.
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void create_directory(const fs::path& dir, fs::perms perms) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create directory " + dir.string() + ": " + ec.message());
    fs::permissions(dir, perms, ec);
}

// A file name for a rejected certificate: its CN, made safe, and thumbprint.
std::string rejected_name(const certificate_info& info) {
    std::string cn;
    for (char c : info.common_name.substr(0, 64)) {
        const bool safe = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
        cn += safe ? c : '_';
    }
    return (cn.empty() ? "certificate" : cn) + "-" + info.thumbprint + ".der";
}

// --- issuing ----------------------------------------------------------------

void add_name_entry(X509_NAME* name, int nid, const std::string& value) {
    if (value.empty()) return;
    if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1)
        throw_openssl_error("cannot set the certificate subject");
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    openssl_ptr<X509_EXTENSION, X509_EXTENSION_free> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) throw_openssl_error("cannot add a certificate extension");
}

GENERAL_NAME* make_general_name(int type, const std::string& value) {
    // An IP address is an iPAddress name, not a DNS one.
    if (type == GEN_DNS) {
        if (ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str())) {
            GENERAL_NAME* n = GENERAL_NAME_new();
            GENERAL_NAME_set0_value(n, GEN_IPADD, ip);
            return n;
        }
        ERR_clear_error();
    }
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    GENERAL_NAME* n = GENERAL_NAME_new();
    if (s == nullptr || n == nullptr || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
        ASN1_IA5STRING_free(s);
        GENERAL_NAME_free(n);
        throw_openssl_error("cannot build a subjectAltName");
    }
    GENERAL_NAME_set0_value(n, type, s);
    return n;
}

void add_subject_alt_names(X509* cert, const certificate_spec& spec) {
    general_names_ptr names(GENERAL_NAMES_new());
    if (!names) throw_openssl_error("cannot build a subjectAltName");
    if (!spec.application_uri.empty())
        sk_GENERAL_NAME_push(names.get(), make_general_name(GEN_URI, spec.application_uri));
    for (const auto& host : spec.host_names)
        if (!host.empty()) sk_GENERAL_NAME_push(names.get(), make_general_name(GEN_DNS, host));
    if (sk_GENERAL_NAME_num(names.get()) == 0) return;
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
        throw_openssl_error("cannot add the subjectAltName");
}

void set_random_serial(X509* cert) {
    bytes serial = crypto::random_bytes(16);
    serial[0] &= 0x7F;  // positive
    serial[0] |= 0x01;  // and 16 bytes long
    openssl_ptr<BIGNUM, BN_free> bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
    if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr)
        throw_openssl_error("cannot set the serial number");
}

// --- the application certificate ----------------------------------------------

std::string this_host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
    return name;
}

application_certificate create_application_certificate(const application_certificate_options& o,
                                                       const fs::path& cert_file, const fs::path& key_file) {
    const auto key = crypto::generate_rsa_key(o.key_bits);
    const auto now = std::chrono::system_clock::now();
    certificate_spec spec;
    spec.common_name = o.application_name;
    spec.organization = o.organization;
    spec.application_uri = o.application_uri;
    spec.host_names = {o.host_name.empty() ? this_host_name() : o.host_name};
    // A day of slack for peers whose clocks run behind ours.
    spec.not_before = now - std::chrono::days(1);
    spec.not_after = now + o.validity;
    application_certificate out;
    out.der = issue_certificate(spec, key, key);
    out.key = key;
    out.info = info_of(parse_der_chain(out.der).front().get());
    out.certificate_file = cert_file;
    out.key_file = key_file;
    out.created = true;
    // The key first: a certificate on disk always has its key beside it.
    const std::string pem = crypto::private_key_pem(key);
    write_file_atomically(key_file, crypto::as_bytes(pem), 0600, true);
    write_file_atomically(cert_file, out.der, 0644, true);
    return out;
}

application_certificate load_application_certificate(const application_certificate_options& o,
                                                     const fs::path& cert_file, const fs::path& key_file) {
    application_certificate out;
    const std::string der = read_file(cert_file);
    auto chain = parse_der_chain(crypto::as_bytes(der));
    if (chain.size() != 1) throw std::runtime_error(cert_file.string() + " is not a DER certificate");
    try {
        out.key = crypto::private_key_from_pem(read_file(key_file));
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(key_file.string() + ": " + e.what());
    }
    if (X509_check_private_key(chain.front().get(), out.key.get()) != 1) {
        ERR_clear_error();
        throw std::runtime_error(key_file.string() + " is not the private key of " + cert_file.string());
    }
    out.der.assign(der.begin(), der.end());
    out.info = info_of(chain.front().get());
    out.certificate_file = cert_file;
    out.key_file = key_file;
    if (out.info.application_uri.value_or("") != o.application_uri)
        throw std::runtime_error(cert_file.string() + " is for application URI \"" +
                                 out.info.application_uri.value_or("") + "\", not the configured \"" +
                                 o.application_uri + "\"; delete it and " + key_file.string() +
                                 " to create a new certificate");
    return out;
}

// --- verification -------------------------------------------------------------

// Why X509_verify_cert refused, in an operator's words.
std::string verify_reason(X509_STORE_CTX* ctx, const trust_options& options) {
    const int err = X509_STORE_CTX_get_error(ctx);
    const int depth = X509_STORE_CTX_get_error_depth(ctx);
    X509* at = X509_STORE_CTX_get_current_cert(ctx);
    const std::string who = depth == 0 || at == nullptr ? "it" : "its issuer " + describe(info_of(at));
    switch (err) {
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return "not trusted: neither it nor a CA that issued it is in the trust list " +
                   options.trusted_directory.string();
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return who + " expired on " + format_time(to_time_point(X509_get0_notAfter(at)));
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return who + " is not valid before " + format_time(to_time_point(X509_get0_notBefore(at)));
        default:
            return who + " failed verification: " + X509_verify_cert_error_string(err);
    }
}

}  // namespace

// --- public: parsing ----------------------------------------------------------

std::optional<certificate_info> inspect_certificate(bytes_view der) {
    auto cert = parse_der(der);
    if (!cert) return std::nullopt;
    return info_of(cert.get());
}

crypto::rsa_key certificate_public_key(bytes_view der) {
    auto cert = parse_der(der);
    if (!cert) return {};
    EVP_PKEY* key = X509_get_pubkey(cert.get());  // a new reference
    if (key == nullptr || !EVP_PKEY_is_a(key, "RSA")) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return {};
    }
    return crypto::rsa_key(key);
}

std::optional<bytes> leaf_certificate(bytes_view der) {
    const bytes_view all = der;
    if (!parse_der(der)) return std::nullopt;
    return bytes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(all.size() - der.size()));
}

std::optional<std::string> application_uri_mismatch(bytes_view der, std::string_view application_uri) {
    const auto info = inspect_certificate(der);
    if (!info) return "the server certificate is not a valid X.509 certificate";
    if (info->application_uri == application_uri) return std::nullopt;
    const std::string found = info->application_uri ? "\"" + *info->application_uri + "\"" : "no URI";
    return "certificate " + describe(*info) + " names application " + found + ", but the server's application URI is \"" +
           std::string(application_uri) + "\"";
}

// --- public: issuing ----------------------------------------------------------

bytes issue_certificate(const certificate_spec& spec, const crypto::rsa_key& subject_key,
                        const crypto::rsa_key& issuer_key, bytes_view issuer_der) {
    x509_ptr issuer;
    if (!issuer_der.empty()) {
        issuer = parse_der(issuer_der);
        if (!issuer) throw std::invalid_argument("the issuer is not a DER certificate");
    }
    x509_ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) throw_openssl_error("cannot create a certificate");
    set_random_serial(cert.get());
    if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), std::chrono::system_clock::to_time_t(spec.not_before)) == nullptr ||
        ASN1_TIME_set(X509_getm_notAfter(cert.get()), std::chrono::system_clock::to_time_t(spec.not_after)) == nullptr)
        throw_openssl_error("cannot set the validity");
    X509_NAME* subject = X509_get_subject_name(cert.get());
    add_name_entry(subject, NID_commonName, spec.common_name);
    add_name_entry(subject, NID_organizationName, spec.organization);
    if (X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer.get()) : subject) != 1 ||
        X509_set_pubkey(cert.get(), subject_key.get()) != 1)
        throw_openssl_error("cannot set the issuer or key");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer.get() : cert.get(), cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (spec.certificate_authority) {
        add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), &ctx, NID_key_usage,
                      "critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyCertSign");
        add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    add_subject_alt_names(cert.get(), spec);
    if (X509_sign(cert.get(), issuer_key.get(), EVP_sha256()) <= 0) throw_openssl_error("cannot sign the certificate");
    return to_der(cert.get());
}

// --- public: the application certificate ----------------------------------------

application_certificate load_or_create_application_certificate(const application_certificate_options& o) {
    if (o.application_uri.empty()) throw std::invalid_argument("the application certificate needs an application URI");
    create_directory(o.directory, fs::perms::owner_all);
    const fs::path cert_file = o.directory / "client_certificate.der";
    const fs::path key_file = o.directory / "client_private_key.pem";
    std::error_code ec;
    const bool have_cert = fs::exists(cert_file, ec);
    const bool have_key = fs::exists(key_file, ec);
    if (!have_cert && !have_key) return create_application_certificate(o, cert_file, key_file);
    if (have_cert != have_key)
        throw std::runtime_error((have_cert ? key_file : cert_file).string() + " is missing but " +
                                 (have_cert ? cert_file : key_file).string() +
                                 " exists; restore it, or delete both to create a new certificate");
    return load_application_certificate(o, cert_file, key_file);
}

// --- public: the trust list -------------------------------------------------------

trust_options default_trust_options(const std::filesystem::path& pki_root) {
    return {pki_root / "trusted", pki_root / "rejected", false};
}

trust_list::trust_list(trust_options options) : options_(std::move(options)) {
    create_directory(options_.trusted_directory, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    create_directory(options_.rejected_directory, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
}

trust_verdict trust_list::check(bytes_view der, time_point now) const {
    auto chain = parse_der_chain(der);
    if (chain.empty()) return {false, "the server certificate is not a valid X.509 certificate", {}};
    if (options_.trust_any) return {true, {}, {}};

    store_ptr store(X509_STORE_new());
    if (!store) throw_openssl_error("cannot create a certificate store");
    bool listed = false;  // the server certificate itself is in the trust list
    std::vector<std::string> unreadable;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options_.trusted_directory, ec)) {
        if (!entry.is_regular_file(ec)) continue;
        std::vector<x509_ptr> certs;
        try {
            certs = read_certificates(entry.path());
        } catch (const std::runtime_error&) {
        }
        if (certs.empty()) unreadable.push_back(entry.path().filename().string());
        for (auto& c : certs) {
            listed = listed || X509_cmp(c.get(), chain.front().get()) == 0;
            X509_STORE_add_cert(store.get(), c.get());  // a duplicate is not an error worth stopping for
        }
    }
    ERR_clear_error();
    if (ec)
        return {false, "cannot read the trust list " + options_.trusted_directory.string() + ": " + ec.message(), {}};

    x509_stack_ptr intermediates(sk_X509_new_null());
    for (std::size_t i = 1; i < chain.size(); ++i) {
        X509_up_ref(chain[i].get());
        sk_X509_push(intermediates.get(), chain[i].get());
    }
    store_ctx_ptr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), intermediates.get()) != 1)
        throw_openssl_error("cannot create a verification context");
    // Any certificate in the list is an anchor: a server's own certificate
    // trusted directly as well as a root or intermediate CA.
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
    if (X509_verify_cert(ctx.get()) == 1) return {true, {}, {}};

    const auto info = info_of(chain.front().get());
    trust_verdict verdict;
    verdict.error = "server certificate " + describe(info) + " rejected: " + verify_reason(ctx.get(), options_);
    ERR_clear_error();
    if (!unreadable.empty()) {
        verdict.error += " (files in the trust list that hold no certificate:";
        for (const auto& f : unreadable) verdict.error += " " + f;
        verdict.error += ")";
    }
    if (listed) return verdict;  // moving it to trusted/ would not help
    const fs::path file = options_.rejected_directory / rejected_name(info);
    try {
        // A client retrying the same server finds its copy already there.
        if (!fs::exists(file, ec)) write_file_atomically(file, to_der(chain.front().get()), 0644, false);
        verdict.rejected_file = file;
        verdict.error += "; a copy is in " + file.string() + ": move it to " + options_.trusted_directory.string() +
                         " to trust it";
    } catch (const std::runtime_error& e) {
        verdict.error += std::string("; no copy was kept: ") + e.what();
    }
    return verdict;
}

}  // namespace strata::bridges::opcua::pki
