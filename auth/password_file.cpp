#include "auth/password_file.hpp"

#include "auth/crypto.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace strata::auth {

namespace {

constexpr std::string_view pbkdf2_tag = "$pbkdf2-sha512$";
constexpr std::string_view scram_tag = "$scram-sha-256$";
constexpr std::size_t hash_length = 64;
constexpr std::size_t key_length = 32;
constexpr std::size_t salt_length = 16;

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto p = s.find(sep);
        out.push_back(s.substr(0, p));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

std::uint32_t parse_iterations(std::string_view text, std::string_view scheme) {
    std::uint32_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty())
        throw password_error(std::string(scheme) + ": iteration count '" + std::string(text) + "' is not a number");
    if (v < min_iterations)
        throw password_error(std::string(scheme) + ": iteration count " + std::to_string(v) + " is below " +
                             std::to_string(min_iterations));
    return v;
}

std::string decode_field(std::string_view text, std::string_view what, std::size_t expected_size) {
    auto v = base64_decode(text);
    if (!v) throw password_error(std::string(what) + " is not valid base64");
    if (expected_size != 0 && v->size() != expected_size)
        throw password_error(std::string(what) + " must be " + std::to_string(expected_size) + " bytes, got " +
                             std::to_string(v->size()));
    if (v->empty()) throw password_error(std::string(what) + " is empty");
    return std::move(*v);
}

// "$scheme$a$b$c" -> {a, b, c}, checking the tag and the field count.
std::vector<std::string_view> fields(std::string_view text, std::string_view tag, std::size_t count) {
    if (!text.starts_with(tag))
        throw password_error("expected a '" + std::string(tag) + "...' hash, got '" +
                             std::string(text.substr(0, 20)) + "'");
    auto f = split(text.substr(tag.size()), '$');
    const std::string scheme(tag.substr(1, tag.size() - 2));
    if (f.size() != count)
        throw password_error(scheme + ": expected " + std::to_string(count) + " '$'-separated fields, got " +
                             std::to_string(f.size()));
    return f;
}

}  // namespace

std::string check_user_name(std::string_view user) {
    if (user.empty()) return "the user name is empty";
    if (user.size() > 65535) return "the user name is longer than 65535 bytes";
    if (user.find(':') != std::string_view::npos) return "the user name contains ':'";
    if (std::any_of(user.begin(), user.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
        return "the user name contains a control character";
    if (user.front() == ' ' || user.back() == ' ') return "the user name starts or ends with a space";
    if (user.front() == '#') return "the user name starts with '#'";
    if (user == "anonymous") return "'anonymous' is reserved for clients without credentials";
    return {};
}

scram_credentials make_scram(std::string_view password, std::string salt, std::uint32_t iterations) {
    const std::string salted = pbkdf2(digest::sha256, password, salt, iterations, key_length);
    scram_credentials s;
    s.iterations = iterations;
    s.salt = std::move(salt);
    s.stored_key = sha256(hmac_sha256(salted, "Client Key"));
    s.server_key = hmac_sha256(salted, "Server Key");
    return s;
}

password_entry make_entry(std::string user, std::string_view password, std::uint32_t iterations) {
    password_entry e;
    e.user = std::move(user);
    e.iterations = iterations;
    e.salt = random_bytes(salt_length);
    e.hash = pbkdf2(digest::sha512, password, e.salt, iterations, hash_length);
    e.scram = make_scram(password, random_bytes(salt_length), iterations);
    return e;
}

bool verify(const password_entry& e, std::string_view password) {
    return equal_constant_time(pbkdf2(digest::sha512, password, e.salt, e.iterations, e.hash.size()), e.hash);
}

std::string format_entry(const password_entry& e) {
    std::string out = e.user;
    out += ':';
    out += pbkdf2_tag;
    out += std::to_string(e.iterations) + '$' + base64_encode(e.salt) + '$' + base64_encode(e.hash);
    if (e.scram) {
        out += ':';
        out += scram_tag;
        out += std::to_string(e.scram->iterations) + '$' + base64_encode(e.scram->salt) + '$' +
               base64_encode(e.scram->stored_key) + '$' + base64_encode(e.scram->server_key);
    }
    return out;
}

password_entry parse_entry(std::string_view line) {
    const auto parts = split(line, ':');
    if (parts.size() < 2) throw password_error("expected USER:$pbkdf2-sha512$ITERATIONS$SALT$HASH");
    if (parts.size() > 3) throw password_error("too many ':'-separated fields (at most 3)");
    password_entry e;
    e.user = std::string(parts[0]);
    if (auto why = check_user_name(e.user); !why.empty()) throw password_error(why);

    const auto p = fields(parts[1], pbkdf2_tag, 3);
    e.iterations = parse_iterations(p[0], "pbkdf2-sha512");
    e.salt = decode_field(p[1], "pbkdf2-sha512 salt", 0);
    e.hash = decode_field(p[2], "pbkdf2-sha512 hash", hash_length);
    if (parts.size() == 3) {
        const auto s = fields(parts[2], scram_tag, 4);
        scram_credentials c;
        c.iterations = parse_iterations(s[0], "scram-sha-256");
        c.salt = decode_field(s[1], "scram-sha-256 salt", 0);
        c.stored_key = decode_field(s[2], "scram-sha-256 stored key", key_length);
        c.server_key = decode_field(s[3], "scram-sha-256 server key", key_length);
        e.scram = std::move(c);
    }
    return e;
}

password_file password_file::parse(std::string_view text, const std::string& name) {
    password_file f;
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        const std::string where = name + ":" + std::to_string(line_no) + ": ";
        try {
            auto e = parse_entry(line);
            if (f.find(e.user) != nullptr) throw password_error("user '" + e.user + "' appears twice");
            f.entries_.push_back(std::move(e));
        } catch (const password_error& err) {
            throw password_error(where + err.what());
        }
    }
    return f;
}

password_file password_file::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw password_error("cannot read password file '" + path + "': " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw password_error("cannot read password file '" + path + "'");
    return parse(text.str(), path);
}

const password_entry* password_file::find(std::string_view user) const noexcept {
    const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.user == user; });
    return it == entries_.end() ? nullptr : &*it;
}

bool password_file::verify(std::string_view user, std::string_view password) const {
    if (const auto* e = find(user)) return auth::verify(*e, password);
    // Unknown user: the same work against a fixed dummy, then no.
    static const password_entry dummy = [] {
        password_entry d;
        d.iterations = default_iterations;
        d.salt = std::string(salt_length, 'x');
        d.hash = std::string(hash_length, '\0');
        return d;
    }();
    (void)auth::verify(dummy, password);
    return false;
}

void password_file::set(password_entry e) {
    const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& x) { return x.user == e.user; });
    if (it != entries_.end()) {
        *it = std::move(e);
    } else {
        entries_.push_back(std::move(e));
    }
}

bool password_file::remove(std::string_view user) {
    const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.user == user; });
    if (it == entries_.end()) return false;
    entries_.erase(it);
    return true;
}

std::string password_file::serialize() const {
    std::string out;
    for (const auto& e : entries_) {
        out += format_entry(e);
        out += '\n';
    }
    return out;
}

void password_file::save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw password_error("cannot write '" + tmp + "': " + std::strerror(errno));
    const std::string text = serialize();
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw password_error("cannot write '" + tmp + "': " + std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    const int sync_err = errno;
    if (::close(fd) != 0 || !synced) {
        const int err = synced ? errno : sync_err;
        ::unlink(tmp.c_str());
        throw password_error("cannot write '" + tmp + "': " + std::strerror(err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw password_error("cannot replace '" + path + "': " + std::strerror(err));
    }
}

}  // namespace strata::auth
