// The OPC UA client against the node-opcua test peer (tests/opcua/peer),
// started here as a child process on 127.0.0.1 and stopped by its PID:
// browse, read every type, subscribe, write and read back with None,
// Basic256Sha256 Sign and SignAndEncrypt and Aes128_Sha256_RsaOaep
// SignAndEncrypt, anonymous and UserName; a wrong password and an untrusted
// server certificate refused with their status codes; the server killed and
// restarted on the same port and PKI, values resuming by themselves; the
// server frozen (SIGSTOP): the keep-alive watchdog reconnects; a short
// security token lifetime: the channel renews its token and stays up.
//
// A missing node or tests/opcua/peer/node_modules fails the test (run
// deploy/setup.sh test), it is not skipped.
#include "bridges/opcua/client.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace strata::bridges::opcua;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

const std::string user = "operator";
const std::string password = "s3cret";

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "strata-opcua-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string find_node() {
    const char* env = std::getenv("PATH");
    std::string_view paths = env ? env : "/usr/bin:/bin";
    while (!paths.empty()) {
        const auto colon = paths.find(':');
        const fs::path candidate = fs::path(paths.substr(0, colon)) / "node";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        paths = colon == std::string_view::npos ? std::string_view{} : paths.substr(colon + 1);
    }
    return {};
}

// node server.js as a child process; readiness by its `ready <port>` line.
class peer {
public:
    peer(const fs::path& pki, int port = 0) : pki_(pki) {
        const fs::path dir = STRATA_OPCUA_PEER_DIR;
        const std::string node = find_node();
        if (node.empty()) FAIL("node (Node.js 20) is not on PATH: the OPC UA tests need it (deploy/setup.sh test)");
        if (!fs::exists(dir / "node_modules" / "node-opcua"))
            FAIL((dir / "node_modules").string() + " has no node-opcua: run deploy/setup.sh test (npm ci)");
        std::vector<std::string> args{node,   (dir / "server.js").string(), "--pki", pki.string(), "--port",
                                      std::to_string(port), "--user", user, "--password", password};
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const std::string log = (pki.parent_path() / "peer.log").string();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        posix_spawn_file_actions_addclose(&fa, fds[1]);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            FAIL("posix_spawn node failed");
        }
        out_ = fds[0];
        port_ = wait_ready(log);
    }
    ~peer() { stop(SIGTERM); }
    peer(const peer&) = delete;
    peer& operator=(const peer&) = delete;

    [[nodiscard]] int port() const noexcept { return port_; }
    [[nodiscard]] std::string endpoint() const { return "opc.tcp://127.0.0.1:" + std::to_string(port_); }

    void signal(int sig) { ::kill(pid_, sig); }

    // Signals the server and reaps it (SIGKILL after 10 s).
    void stop(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            ::poll(nullptr, 0, 20);  // waitpid has no timeout: poll the exit
        }
        pid_ = -1;
        if (out_ >= 0) ::close(out_);
        out_ = -1;
    }

private:
    int wait_ready(const std::string& log) {
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        std::string out;
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{out_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1))) <= 0) continue;
            char buf[256];
            const auto n = ::read(out_, buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, static_cast<std::size_t>(n));
            if (const auto nl = out.find('\n'); nl != std::string::npos && out.starts_with("ready "))
                return std::stoi(out.substr(6, nl - 6));
        }
        std::ifstream in(log);
        const std::string err((std::istreambuf_iterator<char>(in)), {});
        stop(SIGKILL);
        FAIL("the OPC UA test peer did not print `ready <port>` within 60 s; stdout: " + out + "\nstderr:\n" + err);
        return 0;
    }

    fs::path pki_;
    pid_t pid_ = -1;
    int out_ = -1;
    int port_ = 0;
};

// What the client's callbacks saw, with waits on conditions.
struct observer {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::pair<connection_state, outcome>> states;
    std::map<std::uint32_t, std::vector<data_value>> values;

    client_callbacks callbacks() {
        return {[this](connection_state s, const outcome& why) {
                    std::lock_guard l(m);
                    states.emplace_back(s, why);
                    cv.notify_all();
                },
                [this](std::uint32_t h, const data_value& v) {
                    std::lock_guard l(m);
                    values[h].push_back(v);
                    cv.notify_all();
                }};
    }
    template <class Pred>
    bool wait(Pred pred, std::chrono::seconds timeout = 30s) {
        std::unique_lock l(m);
        return cv.wait_for(l, timeout, [&] { return pred(); });
    }
    bool connected_since(std::size_t from) {
        for (std::size_t i = from; i < states.size(); ++i)
            if (states[i].first == connection_state::connected) return true;
        return false;
    }
    std::string last_reason() {
        std::lock_guard l(m);
        return states.empty() ? "" : states.back().second.describe();
    }
    std::size_t state_count() {
        std::lock_guard l(m);
        return states.size();
    }
    std::size_t value_count(std::uint32_t h) {
        std::lock_guard l(m);
        return values[h].size();
    }
};

// An io_context on one thread with a client on it.
struct harness {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    observer seen;
    std::unique_ptr<client> c;
    std::thread thread;

    explicit harness(client_options o) {
        c = std::make_unique<client>(io.get_executor(), std::move(o), seen.callbacks());
        thread = std::thread([this] { io.run(); });
        c->start();
    }
    ~harness() {
        c->stop();
        c.reset();
        work.reset();
        // The close (CloseSession, CLO) finishes on its own; bounded by its request timeout.
        thread.join();
    }
    bool wait_connected(std::chrono::seconds timeout = 30s) {
        return seen.wait([&] { return seen.connected_since(0); }, timeout);
    }
};

client_options options_for(const peer& p, const fs::path& pki, crypto::policy_id policy, message_security_mode mode,
                           bool with_user) {
    client_options o;
    o.endpoint = p.endpoint();
    o.security_policy = policy;
    o.security_mode = mode;
    if (with_user) {
        o.username = user;
        o.password = password;
    }
    o.pki_directory = pki;
    o.publish_interval = 200ms;
    o.reconnect_min = 200ms;
    o.reconnect_max = 2000ms;
    o.browse_max_references = 50;  // the Bulk folder (200 tags) needs BrowseNext
    return o;
}

// Trusts the peer's certificate (written by server.js into its PKI).
void trust_peer(const fs::path& server_pki, const fs::path& client_pki) {
    fs::create_directories(client_pki / "trusted");
    fs::copy_file(server_pki / "server_certificate.der", client_pki / "trusted" / "server.der",
                  fs::copy_options::overwrite_existing);
}

node_id plc(std::uint16_t ns, const std::string& name) { return node_id{ns, "PLC1." + name}; }

// The test namespace's index and a monitored item on Line1.Counter.
std::pair<std::uint16_t, std::uint32_t> monitor_counter(client& c) {
    auto nss = c.namespaces(asio::use_future).get();
    REQUIRE(nss.ok());
    const auto ns = nss.value.index("urn:strata:test-plc");
    REQUIRE(ns);
    auto handles = c.monitor({{plc(*ns, "Line1.Counter"), 100ms, 10, 0}}, asio::use_future).get();
    REQUIRE(handles.ok());
    REQUIRE(handles.value.at(0).handle != 0);
    return {*ns, handles.value[0].handle};
}

void exercise(client& c, observer& seen) {
    auto nss = c.namespaces(asio::use_future).get();
    REQUIRE(nss.ok());
    const auto ns = nss.value.index("urn:strata:test-plc");
    REQUIRE(ns);

    // Browse by path, then the folder's references.
    auto line1 = c.resolve_path("Objects/PLC1/Line1", asio::use_future).get();
    INFO(line1.describe());
    REQUIRE(line1.ok());
    CHECK(line1.value == plc(*ns, "Line1"));
    auto refs = c.browse(line1.value, asio::use_future).get();
    REQUIRE(refs.ok());
    std::vector<std::string> names;
    for (const auto& r : refs.value) names.push_back(r.browse_name.name.value_or(""));
    for (const char* n : {"Counter", "Temperature", "Running", "Recipe", "Speeds", "Setpoint", "Axis"})
        CHECK(std::find(names.begin(), names.end(), n) != names.end());
    auto bulk = c.resolve_path("Objects/PLC1/Bulk", asio::use_future).get();
    REQUIRE(bulk.ok());
    auto bulk_refs = c.browse(bulk.value, asio::use_future).get();
    REQUIRE(bulk_refs.ok());
    CHECK(bulk_refs.value.size() == 200);  // 4 Browse/BrowseNext calls of 50

    // Every type.
    auto values = c.read({plc(*ns, "Line1.Counter"), plc(*ns, "Line1.Temperature"), plc(*ns, "Line1.Running"),
                          plc(*ns, "Line1.Recipe"), plc(*ns, "Line1.Speeds"), plc(*ns, "Types.Matrix")},
                         asio::use_future)
                      .get();
    REQUIRE(values.ok());
    REQUIRE(values.value.size() == 6);
    for (const auto& v : values.value) {
        REQUIRE(v.value);
        CHECK(!v.status.value_or(status_code{}).bad());
    }
    CHECK(values.value[0].value->get_if<std::uint32_t>());
    CHECK(values.value[1].value->get_if<double>());
    CHECK(values.value[2].value->get_if<bool>());
    CHECK(values.value[3].value->get_if<ua_string>());
    const auto* speeds = values.value[4].value->get_if<std::vector<double>>();
    REQUIRE(speeds);
    CHECK(speeds->size() == 4);
    const auto* matrix = values.value[5].value->get_if<std::vector<double>>();
    REQUIRE(matrix);
    CHECK(matrix->size() == 6);
    CHECK(values.value[5].value->dimensions == std::vector<std::int32_t>{2, 3});

    // 200 reads in batches of the server's MaxNodesPerRead (50).
    std::vector<node_id> tags;
    for (int i = 0; i < 200; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "Bulk.Tag%03d", i);
        tags.push_back(plc(*ns, name));
    }
    auto bulk_values = c.read(tags, asio::use_future).get();
    REQUIRE(bulk_values.ok());
    REQUIRE(bulk_values.value.size() == 200);
    CHECK(*bulk_values.value[137].value->get_if<std::uint32_t>() == 137);

    // Subscribe: the counter changes every 100 ms.
    auto handles = c.monitor({{plc(*ns, "Line1.Counter"), 100ms, 10, 0}}, asio::use_future).get();
    REQUIRE(handles.ok());
    REQUIRE(handles.value.size() == 1);
    const std::uint32_t h = handles.value[0].handle;
    REQUIRE(h != 0);
    REQUIRE(seen.wait([&] {
        const auto& v = seen.values[h];
        return v.size() >= 3 && v.back().value && v.front().value && !(*v.back().value == *v.front().value);
    }));

    // Write the setpoint and read it back.
    const double setpoint = 40.0 + std::random_device{}() % 1000 / 10.0;
    write_value w;
    w.node_id = plc(*ns, "Line1.Setpoint");
    w.value.value = variant{setpoint};
    auto written = c.write({w}, asio::use_future).get();
    REQUIRE(written.ok());
    REQUIRE(written.value.size() == 1);
    CHECK(!written.value[0].bad());
    auto back = c.read({plc(*ns, "Line1.Setpoint")}, asio::use_future).get();
    REQUIRE(back.ok());
    REQUIRE(back.value[0].value);
    CHECK(*back.value[0].value->get_if<double>() == setpoint);

    CHECK(c.unmonitor({h}, asio::use_future).get().ok());
}

}  // namespace

TEST_CASE("OPC UA client: browse, read, subscribe, write with every policy and mode, anonymous and UserName",
          "[opcua][integration]") {
    temp_dir dir;
    peer server(dir.path / "server");
    struct config {
        crypto::policy_id policy;
        message_security_mode mode;
        bool user;
    };
    const config configs[] = {
        {crypto::policy_id::none, message_security_mode::none, false},
        {crypto::policy_id::none, message_security_mode::none, true},
        {crypto::policy_id::basic256sha256, message_security_mode::sign, false},
        {crypto::policy_id::basic256sha256, message_security_mode::sign_and_encrypt, true},
        {crypto::policy_id::aes128_sha256_rsaoaep, message_security_mode::sign_and_encrypt, false},
        {crypto::policy_id::aes128_sha256_rsaoaep, message_security_mode::sign, true},
    };
    const fs::path pki = dir.path / "client";
    trust_peer(dir.path / "server", pki);
    for (const auto& cfg : configs) {
        INFO(crypto::policy(cfg.policy).name << " " << to_string(cfg.mode) << (cfg.user ? " UserName" : " anonymous"));
        harness h(options_for(server, pki, cfg.policy, cfg.mode, cfg.user));
        REQUIRE(h.wait_connected());
        exercise(*h.c, h.seen);
    }
}

TEST_CASE("OPC UA client: a wrong password and an untrusted server certificate are refused clearly",
          "[opcua][integration]") {
    temp_dir dir;
    peer server(dir.path / "server");
    {
        const fs::path pki = dir.path / "client";
        trust_peer(dir.path / "server", pki);
        auto o = options_for(server, pki, crypto::policy_id::basic256sha256, message_security_mode::sign_and_encrypt, true);
        o.password = "wrong";
        harness h(std::move(o));
        REQUIRE(h.seen.wait([&] { return !h.seen.states.empty(); }));
        const std::string why = h.seen.last_reason();
        INFO(why);
        CHECK((why.find("BadUserAccessDenied") != std::string::npos ||
               why.find("BadIdentityTokenInvalid") != std::string::npos));
        CHECK(h.seen.states.front().first == connection_state::disconnected);
        auto r = h.c->read({node_id{0, 2258}}, asio::use_future).get();
        CHECK(!r.ok());
    }
    {
        const fs::path pki = dir.path / "client-empty-trust";
        auto o = options_for(server, pki, crypto::policy_id::basic256sha256, message_security_mode::sign, false);
        harness h(std::move(o));
        REQUIRE(h.seen.wait([&] { return !h.seen.states.empty(); }));
        const std::string why = h.seen.last_reason();
        INFO(why);
        CHECK_THAT(why, Contains("BadCertificateUntrusted"));
        CHECK(h.seen.states.front().first == connection_state::disconnected);
        CHECK(!fs::is_empty(pki / "rejected"));
    }
}

TEST_CASE("OPC UA client: the server killed and restarted on the same port, values resume",
          "[opcua][integration]") {
    temp_dir dir;
    auto server = std::make_unique<peer>(dir.path / "server");
    const int port = server->port();
    const fs::path pki = dir.path / "client";
    trust_peer(dir.path / "server", pki);
    harness h(options_for(*server, pki, crypto::policy_id::basic256sha256, message_security_mode::sign_and_encrypt, false));
    REQUIRE(h.wait_connected());
    const auto [ns, handle] = monitor_counter(*h.c);
    REQUIRE(h.seen.wait([&] { return h.seen.values[handle].size() >= 2; }));

    server->stop(SIGKILL);
    REQUIRE(h.seen.wait([&] { return h.seen.states.back().first == connection_state::disconnected; }));
    const std::size_t states_before = h.seen.state_count();
    server = std::make_unique<peer>(dir.path / "server", port);
    REQUIRE(h.seen.wait([&] { return h.seen.connected_since(states_before); }, 60s));
    const std::size_t values_after = h.seen.value_count(handle);
    REQUIRE(h.seen.wait([&] { return h.seen.values[handle].size() >= values_after + 3; }));
}

TEST_CASE("OPC UA client: a frozen server is detected by the watchdog; tokens are renewed before they expire",
          "[opcua][integration]") {
    temp_dir dir;
    peer server(dir.path / "server");
    const fs::path pki = dir.path / "client";
    trust_peer(dir.path / "server", pki);
    auto o = options_for(server, pki, crypto::policy_id::aes128_sha256_rsaoaep, message_security_mode::sign_and_encrypt,
                         false);
    o.channel_lifetime = 2000ms;  // renewed every 1.5 s
    o.request_timeout = 2000ms;
    o.connect_timeout = 2000ms;
    o.keep_alive_count = 5;
    harness h(std::move(o));
    REQUIRE(h.wait_connected());
    const auto [ns, handle] = monitor_counter(*h.c);

    // Values over three token lifetimes on one connection.
    const auto spans = [&](std::chrono::seconds span) {
        const auto& v = h.seen.values[handle];
        return v.size() >= 2 && v.front().source_timestamp && v.back().source_timestamp &&
               v.back().source_timestamp->unix_us() - v.front().source_timestamp->unix_us() >
                   std::chrono::duration_cast<std::chrono::microseconds>(span).count();
    };
    REQUIRE(h.seen.wait([&] { return spans(6s); }));
    CHECK(h.seen.state_count() == 1);
    CHECK(h.c->read({plc(ns, "Line1.Counter")}, asio::use_future).get().ok());

    // Frozen: the TCP connection stays, the answers stop.
    server.signal(SIGSTOP);
    REQUIRE(h.seen.wait([&] { return h.seen.states.back().first == connection_state::disconnected; }));
    const std::size_t states_before = h.seen.state_count();
    server.signal(SIGCONT);
    REQUIRE(h.seen.wait([&] { return h.seen.connected_since(states_before); }, 60s));
    const std::size_t values_after = h.seen.value_count(handle);
    REQUIRE(h.seen.wait([&] { return h.seen.values[handle].size() >= values_after + 3; }));
}
