// Test support for the bridge link (see support.hpp).
#include "support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace strata::bridges::mqtt::test {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

temp_dir::temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "strata-bridge-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
}

child_process::child_process(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

child_process::~child_process() {
    if (!reaped_) signal(SIGKILL);
}

void child_process::signal(int sig) {
    if (reaped_) return;
    ::kill(pid_, sig);
    if (sig != SIGKILL && sig != SIGTERM) return;
    if (!wait_exit(10s)) {
        ::kill(pid_, SIGKILL);
        wait_exit(10s);
    }
}

std::optional<int> child_process::wait_exit(ms timeout) {
    if (reaped_) return 0;
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno == ECHILD)) {
            reaped_ = true;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (clock_type::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);  // polling the exit, bounded by the deadline
    }
}

void run_command(const std::vector<std::string>& argv, const temp_dir& dir) {
    const std::string log = dir.file("command.log");
    std::filesystem::remove(log);
    child_process p(argv, log);
    const auto status = p.wait_exit(60s);
    if (status != 0) throw std::runtime_error("command failed: " + argv[0] + " " + argv[1] + "\n" + read_file(log));
}

namespace {

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

}  // namespace

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

bool port_open(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in a = loopback(port);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

bool eventually(const std::function<bool()>& pred, ms timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);  // polling a condition, bounded by the deadline
    }
}

broker_process::broker_process(std::uint16_t port, std::vector<std::string> argv, std::string log)
    : port_(port), argv_(std::move(argv)), log_(std::move(log)) {}

std::unique_ptr<broker_process> broker_process::mosquitto(const temp_dir& dir, const std::string& extra_config,
                                                          bool quiet) {
    const std::uint16_t port = free_port();
    const std::string conf = dir.file("mosquitto.conf");
    write_file(conf, "listener " + std::to_string(port) +
                         " 127.0.0.1\n"
                         "allow_anonymous true\n"
                         "persistence false\n"
                         // As root, mosquitto would switch to user "mosquitto", which
                         // cannot read the temporary directory; ignored otherwise.
                         "user root\n"
                         "log_dest stderr\n"
                         "log_type " + std::string(quiet ? "error" : "all") + "\n"
                         "connection_messages true\n" +
                         extra_config);
    return std::unique_ptr<broker_process>(
        new broker_process(port, {"mosquitto", "-c", conf}, dir.file("mosquitto.log")));
}

std::unique_ptr<broker_process> broker_process::strata(const temp_dir& dir, const std::string& binary) {
    const std::uint16_t port = free_port();
    const std::string conf = dir.file("strata.yaml");
    write_file(conf, "listeners:\n"
                     "  - name: default\n"
                     "    bind: \"127.0.0.1:" + std::to_string(port) + "\"\n"
                     "persistence:\n"
                     "  path: \"" + dir.file("strata-data") + "\"\n");
    return std::unique_ptr<broker_process>(
        new broker_process(port, {binary, "--config", conf}, dir.file("strata.log")));
}

void broker_process::start() {
    proc_ = std::make_unique<child_process>(argv_, log_);
    if (!eventually([&] { return port_open(port_) || proc_->wait_exit(0ms).has_value(); }) || !port_open(port_))
        throw std::runtime_error(argv_[0] + " did not start:\n" + log());
}

void broker_process::kill() {
    if (proc_) proc_->signal(SIGKILL);
    proc_.reset();
}

std::string broker_process::log() const { return read_file(log_); }

const char* cli_version(codec::protocol_version v) {
    return v == codec::protocol_version::v5 ? "mqttv5" : "mqttv311";
}

// -d prints "received SUBACK"; stdbuf makes stdout line-buffered so it
// shows at once; -F marks the message lines.
observer::observer(const broker_process& broker, const temp_dir& dir, const std::string& id,
                   const std::string& filter, int count, codec::protocol_version v)
    : out_(dir.file(id + ".out")),
      proc_({"stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-V",
             cli_version(v), "-i", id, "-q", "1", "-t", filter, "-F", "MSG %t %p", "-C", std::to_string(count),
             "-W", "30"},
            out_) {
    if (!eventually([&] { return read_file(out_).find("received SUBACK") != std::string::npos; }))
        throw std::runtime_error("mosquitto_sub did not subscribe:\n" + read_file(out_));
}

std::vector<std::string> observer::messages() const {
    std::vector<std::string> out;
    std::istringstream in(read_file(out_));
    for (std::string l; std::getline(in, l);)
        if (l.starts_with("MSG ")) out.push_back(l.substr(4));
    return out;
}

pki make_pki(const temp_dir& dir, const std::string& prefix) {
    const auto f = [&](const std::string& name) { return dir.file(prefix + name); };
    pki k{f("ca.crt"), f("ca.key"), f("server.crt"), f("server.key"), f("client.crt"), f("client.key")};
    const std::vector<std::string> ec_key{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
    auto req = [&](std::vector<std::string> tail) {
        std::vector<std::string> argv{"openssl", "req"};
        argv.insert(argv.end(), ec_key.begin(), ec_key.end());
        argv.insert(argv.end(), tail.begin(), tail.end());
        run_command(argv, dir);
    };
    req({"-x509", "-days", "2", "-keyout", k.ca_key, "-out", k.ca, "-subj", "/CN=" + prefix + "test-ca"});
    const auto sign = [&](const std::string& name, const std::string& key, const std::string& cert,
                          const std::string& ext) {
        const std::string csr = f(name + ".csr"), extfile = f(name + ".ext");
        write_file(extfile, ext);
        req({"-keyout", key, "-out", csr, "-subj", "/CN=" + name});
        run_command({"openssl", "x509", "-req", "-in", csr, "-CA", k.ca, "-CAkey", k.ca_key, "-CAcreateserial",
                     "-days", "2", "-out", cert, "-extfile", extfile},
                    dir);
    };
    sign("localhost", k.server_key, k.server_cert,
         "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    sign("bridge-client", k.client_key, k.client_cert, "extendedKeyUsage=clientAuth\n");
    return k;
}

// --- test_owner -----------------------------------------------------------------

void test_owner::on_up(bool session_present) {
    std::lock_guard lock(mutex);
    ups.push_back(session_present);
    cv_.notify_all();
}

void test_owner::on_down(const std::string& why) {
    {
        std::lock_guard lock(mutex);
        downs.push_back(why);
        // Unacknowledged messages go out again first, marked as duplicates.
        for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
            it->dup = true;
            queue.push_front(std::move(*it));
        }
        in_flight.clear();
        cv_.notify_all();
    }
    if (down_hook) down_hook();
}

void test_owner::collect(std::vector<outbound>& out, std::size_t window) {
    std::lock_guard lock(mutex);
    windows.push_back(window);
    if (hold_) return;
    while (out.size() < window && !queue.empty()) {
        outbound m = std::move(queue.front());
        queue.pop_front();
        if (m.qos > 0) in_flight.push_back(m);
        out.push_back(std::move(m));
    }
    max_in_flight = std::max(max_in_flight, in_flight.size());
    cv_.notify_all();
}

void test_owner::on_ack(std::uint16_t packet_id, codec::reason_code rc) {
    std::lock_guard lock(mutex);
    acks.emplace_back(packet_id, rc);
    std::erase_if(in_flight, [&](const outbound& m) { return m.packet_id == packet_id; });
    cv_.notify_all();
}

void test_owner::on_message(codec::publish&& p, std::function<void(codec::reason_code)> done) {
    bool now;
    {
        std::lock_guard lock(mutex);
        messages.push_back(std::move(p));
        now = auto_done_;
        if (!now) dones.push_back(done);
        cv_.notify_all();
    }
    if (now) done(codec::reason_code::success);
}

void test_owner::enqueue(outbound m) {
    std::lock_guard lock(mutex);
    queue.push_back(std::move(m));
}

void test_owner::hold(bool on) {
    std::lock_guard lock(mutex);
    hold_ = on;
}

void test_owner::auto_done(bool on) {
    std::lock_guard lock(mutex);
    auto_done_ = on;
}

bool test_owner::down_with(std::string_view text) const {
    return std::any_of(downs.begin(), downs.end(),
                       [&](const std::string& d) { return d.find(text) != std::string::npos; });
}

bool test_owner::wait(const std::function<bool(const test_owner&)>& pred, ms timeout) {
    std::unique_lock lock(mutex);
    return cv_.wait_for(lock, timeout, [&] { return pred(*this); });
}

// --- link_runner ----------------------------------------------------------------

link_runner::link_runner(link_options opts, test_owner& owner, const std::function<void(link&)>& before_start)
    : work_(ioc_.get_executor()), owner_(owner), link_(ioc_.get_executor(), std::move(opts), owner) {
    if (before_start) before_start(link_);
    link_.start();
    thread_ = std::thread([this] { ioc_.run(); });
}

link_runner::~link_runner() {
    link_.stop();
    work_.reset();
    thread_.join();
}

void link_runner::enqueue(outbound m) {
    owner_.enqueue(std::move(m));
    link_.wake();
}

link_options local_options(std::uint16_t port, codec::protocol_version v, std::string client_id) {
    link_options o;
    o.name = client_id;
    o.host = "127.0.0.1";
    o.port = port;
    o.version = v;
    o.client_id = std::move(client_id);
    o.reconnect_min = 50ms;
    o.reconnect_max = 400ms;
    o.response_timeout = 2s;
    return o;
}

outbound message(std::uint16_t id, std::string topic, std::string payload, std::uint8_t qos) {
    outbound m;
    m.packet_id = id;
    m.topic = std::move(topic);
    m.payload = std::move(payload);
    m.qos = qos;
    return m;
}

// --- scripted_remote ------------------------------------------------------------

scripted_remote::scripted_remote(codec::protocol_version v) : v_(v) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("scripted remote: cannot listen");
    port_ = ntohs(a.sin_port);
}

scripted_remote::~scripted_remote() {
    drop();
    ::close(listen_fd_);
}

namespace {

bool readable(int fd, clock_type::time_point deadline) {
    const auto left = std::chrono::duration_cast<ms>(deadline - clock_type::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(left)) == 1;
}

}  // namespace

bool scripted_remote::accept(ms timeout) {
    drop();
    if (!readable(listen_fd_, clock_type::now() + timeout)) return false;
    fd_ = ::accept(listen_fd_, nullptr, nullptr);
    return fd_ >= 0;
}

void scripted_remote::drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
}

std::optional<codec::packet> scripted_remote::read(ms timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
        codec::packet p;
        const auto r = codec::decode(buf_, v_, {}, p);
        if (r.status == codec::decode_status::ok) {
            buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(r.consumed));
            return p;
        }
        if (r.status == codec::decode_status::error || fd_ < 0 || !readable(fd_, deadline)) return std::nullopt;
        std::uint8_t chunk[4096];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return std::nullopt;
        buf_.insert(buf_.end(), chunk, chunk + n);
    }
}

void scripted_remote::send(const codec::packet& p) {
    std::vector<std::uint8_t> out;
    codec::encode(p, v_, out);
    send_raw(out);
}

void scripted_remote::send_raw(const std::vector<std::uint8_t>& bytes) {
    std::size_t off = 0;
    while (fd_ >= 0 && off < bytes.size()) {
        const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

bool scripted_remote::closed(ms timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (fd_ >= 0 && readable(fd_, deadline)) {
        std::uint8_t chunk[4096];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return true;
        buf_.insert(buf_.end(), chunk, chunk + n);
    }
    return false;
}

std::optional<codec::connect> scripted_remote::handshake(bool session_present, codec::properties props) {
    auto c = expect<codec::connect>();
    if (!c) return std::nullopt;
    send(codec::connack{session_present, codec::reason_code::success, std::move(props)});
    return c;
}

}  // namespace strata::bridges::mqtt::test
