// Certificates of the OPC UA client: its application instance certificate
// (created on first start, loaded on every later one) and the trust list
// against which a server's certificate is checked.
//
// Layout on disk (each path is configured; default_trust_options gives the
// usual one under a PKI root):
//   <own>/client_certificate.der     our certificate (DER, sent to servers)
//   <own>/client_private_key.pem     its key (PKCS#8 PEM, mode 0600)
//   <pki>/trusted/                   server or CA certificates we trust (DER or PEM)
//   <pki>/rejected/                  server certificates we refused, for an operator
//                                    to inspect and move into trusted/
//
// A server certificate (DER from the wire, possibly followed by its issuers
// as OPC UA allows) is trusted when it, or a CA that issued it, is in the
// trust list, and every certificate on that path is within its validity
// dates. Revocation lists are not consulted.
//
// Thread-safety: free functions without shared state. trust_list is
// immutable after construction; check() may run from several threads at
// once (it reads the trusted directory on every call, so an operator's
// change is seen on the next connection attempt, and writes rejected
// certificates atomically). These functions do file I/O: call them off the
// network threads or accept one small read per secure channel opened.
#pragma once

#include "bridges/opcua/crypto.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bridges::opcua::pki {

using crypto::bytes;
using crypto::bytes_view;
using time_point = std::chrono::system_clock::time_point;

// What a certificate says about itself.
struct certificate_info {
    std::string subject;       // one line, "CN=...,O=..."
    std::string common_name;   // empty if none
    std::string thumbprint;    // SHA-1 of the DER, lower-case hex
    std::optional<std::string> application_uri;  // the first URI subjectAltName
    std::vector<std::string> dns_names;          // DNS subjectAltNames
    time_point not_before;
    time_point not_after;
    std::size_t key_bits = 0;  // RSA modulus; 0 for a non-RSA key
};

// nullopt when `der` does not start with a DER X.509 certificate.
[[nodiscard]] std::optional<certificate_info> inspect_certificate(bytes_view der);
// The certificate's RSA public key; an empty key when `der` is not a
// certificate with an RSA key.
[[nodiscard]] crypto::rsa_key certificate_public_key(bytes_view der);
// The first certificate of a chain as OPC UA sends it (certificates
// concatenated); nullopt when `der` does not start with one. Thumbprints and
// signatures are over this leaf alone.
[[nodiscard]] std::optional<bytes> leaf_certificate(bytes_view der);

// nullopt when the certificate's URI subjectAltName is `application_uri`
// (the server's ApplicationDescription.applicationUri); otherwise why not,
// naming the certificate.
[[nodiscard]] std::optional<std::string> application_uri_mismatch(bytes_view der, std::string_view application_uri);

// ---------------------------------------------------------------------------
// Issuing certificates

// What a new certificate states. An application instance certificate
// (certificate_authority false) gets basicConstraints CA:FALSE, keyUsage
// digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment and
// keyCertSign, extendedKeyUsage serverAuth and clientAuth, and the
// subjectAltNames; a CA certificate gets CA:TRUE and keyCertSign, cRLSign.
struct certificate_spec {
    std::string common_name;
    std::string organization;                // O; omitted when empty
    std::string application_uri;             // URI subjectAltName; omitted when empty
    std::vector<std::string> host_names;     // DNS subjectAltNames (IP addresses become iPAddress)
    time_point not_before;
    time_point not_after;
    bool certificate_authority = false;
};

// A DER certificate for `subject_key`, signed with SHA-256 by `issuer_key`;
// self-signed when `issuer_der` is empty (then issuer_key must be the
// subject's key). Throws std::runtime_error on OpenSSL failure.
[[nodiscard]] bytes issue_certificate(const certificate_spec& spec, const crypto::rsa_key& subject_key,
                                      const crypto::rsa_key& issuer_key, bytes_view issuer_der = {});

// ---------------------------------------------------------------------------
// The application instance certificate

struct application_certificate_options {
    // Where the certificate and key live; created (mode 0700) if missing.
    std::filesystem::path directory;
    // The client's ApplicationUri, required; also the URI subjectAltName.
    std::string application_uri;
    // Subject CN and O. Default: "Strata OPC UA client", "Strata".
    std::string application_name = "Strata OPC UA client";
    std::string organization = "Strata";
    // DNS subjectAltName. Default (empty): this machine's host name.
    std::string host_name;
    // Validity of a new certificate from its creation. Default: 5 years.
    std::chrono::days validity{5 * 365};
    // RSA key size of a new certificate. Default: 2048 (every policy here
    // accepts 2048 to 4096).
    unsigned key_bits = 2048;
};

struct application_certificate {
    bytes der;                 // sent as ClientCertificate / SenderCertificate
    crypto::rsa_key key;       // the private key
    certificate_info info;
    std::filesystem::path certificate_file;
    std::filesystem::path key_file;
    bool created = false;      // true when made by this call
};

// Loads the certificate and key from options.directory, or creates both
// when neither file exists. Throws std::runtime_error, naming the files,
// when only one exists, a file cannot be read or written, the key does not
// belong to the certificate, or the certificate's application URI is not
// options.application_uri (delete both files to get a new certificate).
[[nodiscard]] application_certificate load_or_create_application_certificate(
    const application_certificate_options& options);

// ---------------------------------------------------------------------------
// The trust list

struct trust_options {
    // Certificates (DER or PEM, one or more per file) of trusted servers and
    // CAs. Created if missing.
    std::filesystem::path trusted_directory;
    // Where refused server certificates are written. Created if missing.
    std::filesystem::path rejected_directory;
    // Accept every server certificate, unchecked. Default false; for a
    // commissioning test only, set explicitly in configuration.
    bool trust_any = false;
};

// trusted/ and rejected/ under a PKI root directory.
[[nodiscard]] trust_options default_trust_options(const std::filesystem::path& pki_root);

struct trust_verdict {
    bool trusted = false;
    // Why not: names the certificate (subject, SHA-1 thumbprint) and the
    // reason, and where its copy was written. Empty when trusted.
    std::string error;
    // The copy in the rejected directory; empty when none was written.
    std::filesystem::path rejected_file;
};

class trust_list {
public:
    // Creates both directories if missing; throws std::runtime_error if it cannot.
    explicit trust_list(trust_options options);

    // Checks a server certificate (its DER, optionally followed by issuer
    // certificates) at time `now`. A refused certificate that is not itself
    // in the trust list is written to the rejected directory. An unreadable
    // trust list refuses every certificate (with that as the error).
    [[nodiscard]] trust_verdict check(bytes_view der, time_point now = std::chrono::system_clock::now()) const;

    [[nodiscard]] const trust_options& options() const noexcept { return options_; }

private:
    trust_options options_;
};

}  // namespace strata::bridges::opcua::pki
