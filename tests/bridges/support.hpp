// Test support for the bridge link: temporary directories, child processes
// stopped by PID (mosquitto, openssl, mosquitto_sub), free loopback ports,
// a recording link owner with an outbox, the link on its own io_context
// thread, and a scripted remote (a TCP listener that speaks MQTT through the
// codec, one packet at a time, driven by the test).
//
// Thread-safety: test_owner may be used from the test thread and the link's
// thread (one mutex); everything else belongs to the test thread.
#pragma once

#include "bridges/mqtt/link.hpp"
#include "broker/codec/codec.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace strata::bridges::mqtt::test {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

[[nodiscard]] std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// A child process with stdout and stderr appended to `log`. The destructor
// kills it (SIGKILL) and reaps it.
class child_process {
public:
    child_process(const std::vector<std::string>& argv, const std::string& log);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    // Sends `sig` (SIGCONT after SIGSTOP keeps it alive); for SIGKILL and
    // SIGTERM also waits for the exit.
    void signal(int sig);
    // Waits up to `timeout` for the exit; its status, or nullopt.
    std::optional<int> wait_exit(ms timeout);

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// Runs a command to completion (openssl); throws with its output on failure.
void run_command(const std::vector<std::string>& argv, const temp_dir& dir);

// A loopback port nobody listens on at the moment.
[[nodiscard]] std::uint16_t free_port();
// Whether something accepts TCP connections on 127.0.0.1:port.
[[nodiscard]] bool port_open(std::uint16_t port);

// Polls `pred` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& pred, ms timeout = 10s);

// A broker process on 127.0.0.1 with a free port, started from a config
// file written here; start() waits until it accepts connections (and can be
// called again after kill(), on the same port and config).
class broker_process {
public:
    // mosquitto with `extra_config` after its listener line; log_type all
    // (connections, subscriptions, every packet) unless `quiet`.
    static std::unique_ptr<broker_process> mosquitto(const temp_dir& dir, const std::string& extra_config = "",
                                                     bool quiet = false);
    // strata (the binary built with the tests) with persistence in `dir`.
    static std::unique_ptr<broker_process> strata(const temp_dir& dir, const std::string& binary);

    void start();
    void kill();  // SIGKILL, as a crash
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] child_process& process() { return *proc_; }
    [[nodiscard]] std::string log() const;

private:
    broker_process(std::uint16_t port, std::vector<std::string> argv, std::string log);
    std::uint16_t port_;
    std::vector<std::string> argv_;
    std::string log_;
    std::unique_ptr<child_process> proc_;
};

// mosquitto_sub (3.1.1 or 5.0) taking `count` messages on `filter`;
// returns once the broker has acknowledged the subscription. messages()
// gives "topic payload" per message received so far.
class observer {
public:
    observer(const broker_process& broker, const temp_dir& dir, const std::string& id, const std::string& filter,
             int count, codec::protocol_version v);
    // Waits for the exit after `count` messages.
    bool finished(ms timeout = 10s) { return proc_.wait_exit(timeout) == 0; }
    [[nodiscard]] std::vector<std::string> messages() const;

private:
    std::string out_;
    child_process proc_;
};

[[nodiscard]] const char* cli_version(codec::protocol_version v);

// A CA, a server certificate for localhost/127.0.0.1 and a client
// certificate, made with openssl in `dir` (keys never leave it).
struct pki {
    std::string ca, ca_key, server_cert, server_key, client_cert, client_key;
};
[[nodiscard]] pki make_pki(const temp_dir& dir, const std::string& prefix);

// A link owner that records every callback and keeps an outbox the way a
// bridge's outbox does: collected QoS 1 messages stay in flight until their
// PUBACK; after on_down they are handed out again, with dup set.
class test_owner : public link_owner {
public:
    void on_up(bool session_present) override;
    void on_down(const std::string& why) override;
    void collect(std::vector<outbound>& out, std::size_t window) override;
    void on_ack(std::uint16_t packet_id, codec::reason_code rc) override;
    void on_message(codec::publish&& p, std::function<void(codec::reason_code)> done) override;

    void enqueue(outbound m);
    // While held, collect() gives nothing (a test orders events with it).
    void hold(bool on);
    // When false, on_message keeps done() for the test to call.
    void auto_done(bool on);

    // Whether some on_down reason contains `text` (call under the lock).
    [[nodiscard]] bool down_with(std::string_view text) const;
    // Waits (up to `timeout`) until pred(*this) holds, under the lock.
    bool wait(const std::function<bool(const test_owner&)>& pred, ms timeout = 10s);

    // Recorded, read under wait() or after the link stopped.
    std::vector<bool> ups;
    std::vector<std::string> downs;
    std::vector<std::pair<std::uint16_t, codec::reason_code>> acks;
    std::vector<codec::publish> messages;
    std::vector<std::function<void(codec::reason_code)>> dones;
    std::vector<std::size_t> windows;      // the window of every collect()
    std::size_t max_in_flight = 0;         // most QoS 1 messages collected and not yet acknowledged
    std::deque<outbound> queue;
    std::vector<outbound> in_flight;
    // Called at the end of on_down, outside the lock (set before the link starts).
    std::function<void()> down_hook;

    mutable std::mutex mutex;

private:
    std::condition_variable cv_;
    bool hold_ = false;
    bool auto_done_ = true;
};

// A link on its own io_context thread. The destructor stops the link and
// joins the thread.
class link_runner {
public:
    // `before_start` sees the link before its thread runs.
    link_runner(link_options opts, test_owner& owner, const std::function<void(link&)>& before_start = {});
    ~link_runner();
    link& get() { return link_; }
    void enqueue(outbound m);

private:
    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    test_owner& owner_;
    link link_;
    std::thread thread_;
};

// Options for a link to 127.0.0.1:port with short timeouts.
[[nodiscard]] link_options local_options(std::uint16_t port, codec::protocol_version v, std::string client_id);

[[nodiscard]] outbound message(std::uint16_t id, std::string topic, std::string payload, std::uint8_t qos = 1);

// A TCP listener on 127.0.0.1 that the test drives packet by packet.
class scripted_remote {
public:
    explicit scripted_remote(codec::protocol_version v);
    ~scripted_remote();
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

    // Accepts the next connection (dropping the current one).
    bool accept(ms timeout = 10s);
    // The next packet, or nullopt after `timeout`, a closed connection or
    // a decode error.
    std::optional<codec::packet> read(ms timeout = 10s);
    template <class T>
    std::optional<T> expect(ms timeout = 10s) {
        auto p = read(timeout);
        if (!p || !std::holds_alternative<T>(*p)) return std::nullopt;
        return std::get<T>(std::move(*p));
    }
    void send(const codec::packet& p);
    void send_raw(const std::vector<std::uint8_t>& bytes);
    // Whether the peer closed the connection within `timeout` (what it sent
    // before closing stays for read()).
    bool closed(ms timeout = 10s);
    void drop();
    // CONNECT, then CONNACK (with `props`, `session_present`).
    std::optional<codec::connect> handshake(bool session_present = false, codec::properties props = {});

private:
    codec::protocol_version v_;
    int listen_fd_ = -1, fd_ = -1;
    std::uint16_t port_ = 0;
    std::vector<std::uint8_t> buf_;
};

}  // namespace strata::bridges::mqtt::test
