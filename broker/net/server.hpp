// The I/O runtime: one io_context per network thread, the listeners (MQTT
// over TCP and TLS, HTTP with metrics and MQTT over WebSocket), signal
// handling (SIGHUP reloads the config: reload()) and graceful shutdown,
// the $SYS timer, the alerts' once-a-second tick.
//
// Thread-safety: construct, listen() and run() from the main thread.
#pragma once

#include "broker/ops/alerts.hpp"
#include "broker/hosts/bridge_host.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/config.hpp"
#include "broker/config_diff.hpp"
#include "broker/net/http.hpp"
#include "broker/ops/metrics.hpp"
#include "broker/hosts/opcua_host.hpp"
#include "broker/hosts/sparkplug_host.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::broker::net {

// A listener could not be opened; the message names the listener and address.
class listen_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class server {
public:
    explicit server(config cfg);
    ~server();

    // Binds every configured listener, or throws listen_error.
    void listen();
    // Prints "strata listening NAME PROTOCOL HOST:PORT" per listener and
    // "strata ready" to stdout, serves until SIGINT/SIGTERM, shuts down
    // gracefully and returns the process exit code.
    int run();

    [[nodiscard]] core::broker_core& core() noexcept { return core_; }
    // The first network thread's executor (for timers armed before run()).
    [[nodiscard]] asio::io_context::executor_type executor() { return ios_.front()->get_executor(); }
    [[nodiscard]] ops::metrics& exporter() noexcept { return metrics_; }
    [[nodiscard]] const hosts::bridge_host& bridges() const noexcept { return bridges_; }
    [[nodiscard]] const hosts::opcua_host& opcua() const noexcept { return opcua_; }
    [[nodiscard]] const hosts::sparkplug_host& sparkplug() const noexcept { return sparkplug_; }

private:
    struct listener;
    void start_accepting(listener& l);
    // Runs network thread `index`'s io_context until it stops; exceptions
    // that escape a handler are logged and counted, and it runs on.
    void run_network_thread(std::size_t index);
    // Hands an accepted socket to what its listener serves.
    void serve(listener& l, tcp_socket socket, std::size_t thread_index);
    // SIGHUP and POST /api/v1/reload, on the first network thread: the
    // config file read again and every section that can change live put
    // in force (broker_core::reload, then the bridges, the OPC UA sources,
    // the alerts, the TLS files, the log level); what needs a restart is
    // reported and left as it runs (config_diff.hpp). A config that does
    // not load or fit changes nothing. Logs what it did and returns it.
    // `edit` runs first (the admin API writes the sources file; what it
    // throws is the report's error), `undo` after a reload that changed
    // nothing (may be empty).
    [[nodiscard]] reload_report reload(const std::function<void()>& edit, const std::function<void()>& undo);
    [[nodiscard]] reload_report reload_config();
    // The alerts as the config in force says (created when first enabled).
    void reconfigure_alerts(bool were_enabled);
    // New TLS handshakes use the certificate files the config names now;
    // a listener whose files do not load keeps its context (named in `failed`).
    void reload_tls(std::vector<std::string>& failed);
    void begin_shutdown();

    core::broker_core core_;
    ops::metrics metrics_{core_};
    http_server http_{core_, metrics_};
    std::vector<std::unique_ptr<asio::io_context>> ios_;
    std::vector<std::unique_ptr<listener>> listeners_;
    // After ios_: destroyed first (their links' sockets and timers belong
    // to the io_contexts).
    hosts::bridge_host bridges_{core_};
    hosts::opcua_host opcua_{core_};
    hosts::sparkplug_host sparkplug_{core_};
    std::unique_ptr<ops::alerts> alerts_;  // null: alerts.enabled false
    std::size_t next_io_ = 0;
    bool stopping_ = false;
};

}  // namespace strata::broker::net
