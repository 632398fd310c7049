#include "broker/server.hpp"

#include "broker/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

namespace strata::broker {

struct server::listener {
    listener_config cfg;
    asio::ip::tcp::acceptor acceptor;
    std::uint16_t port = 0;
};

server::server(config cfg) : core_(std::move(cfg)) {
    unsigned n = core_.cfg().threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) ios_.push_back(std::make_unique<asio::io_context>(1));
}

server::~server() { core_.release_io(); }

void server::listen() {
    auto& io = *ios_.front();
    for (std::size_t i = 0; i < core_.cfg().listeners.size(); ++i) {
        const auto& lc = core_.cfg().listeners[i];
        const std::string where = "listener '" + lc.name + "' (listeners[" + std::to_string(i) +
                                  "].bind) on " + lc.bind;
        boost::system::error_code ec;
        const auto addr = asio::ip::make_address(lc.host, ec);
        if (ec) throw listen_error("cannot listen: " + where + ": '" + lc.host + "' is not an IP address");
        const asio::ip::tcp::endpoint ep(addr, lc.port);
        auto l = std::make_unique<listener>(listener{lc, asio::ip::tcp::acceptor(io), 0});
        auto& a = l->acceptor;
        a.open(ep.protocol(), ec);
        if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) a.bind(ep, ec);
        if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw listen_error("cannot listen: " + where + ": " + ec.message());
        l->port = a.local_endpoint().port();
        listeners_.push_back(std::move(l));
    }
}

void server::start_accepting(listener& l) {
    asio::co_spawn(
        *ios_.front(),
        [this, &l]() -> asio::awaitable<void> {
            while (!stopping_) {
                // Connections are spread over the network threads round robin.
                const std::size_t k = next_io_++ % ios_.size();
                auto [ec, socket] = co_await l.acceptor.async_accept(
                    ios_[k]->get_executor(), asio::as_tuple(asio::use_awaitable));
                if (stopping_) co_return;
                if (ec) {
                    if (ec == asio::error::operation_aborted) co_return;
                    // Out of descriptors (EMFILE/ENFILE) or similar: log, back
                    // off briefly, keep accepting.
                    spdlog::warn("listener '{}': accept failed: {}", l.cfg.name, ec.message());
                    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
                    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                    continue;
                }
                auto c = std::make_shared<connection>(core_, std::move(socket), k);
                asio::post(ios_[k]->get_executor(), [c] { c->start(); });
            }
        },
        asio::detached);
}

void server::begin_shutdown() {
    if (stopping_) return;
    stopping_ = true;
    spdlog::info("shutting down");
    for (auto& l : listeners_) {
        boost::system::error_code ec;
        l->acceptor.close(ec);
    }
    core_.kick_all(mqtt::reason_code::server_shutting_down);
    // Bounded wait for the connections to flush and close.
    auto timer = std::make_shared<asio::steady_timer>(*ios_.front());
    const auto deadline = steady_clock::now() + std::chrono::milliseconds(core_.cfg().shutdown_grace_ms);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [this, timer, deadline, poll] {
        if (core_.connection_count() == 0 || steady_clock::now() >= deadline) {
            for (auto& io : ios_) io->stop();
            *poll = nullptr;  // breaks the self-reference
            return;
        }
        timer->expires_after(std::chrono::milliseconds(10));
        timer->async_wait([poll](boost::system::error_code) {
            if (*poll) (*poll)();
        });
    };
    (*poll)();
}

int server::run() {
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& io : ios_) guards.push_back(asio::make_work_guard(*io));

    // SIGINT/SIGTERM: graceful shutdown. SIGHUP: reload the namespace model
    // (connections stay up), then wait for the next signal.
    asio::signal_set signals(*ios_.front(), SIGINT, SIGTERM, SIGHUP);
    std::function<void()> wait_signal;
    wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code ec, int sig) {
            if (ec) return;
            spdlog::info("signal {} received", sig);
            if (sig == SIGHUP) {
                core_.reload_model();
                core_.security().reload_passwords();
                if (!stopping_) wait_signal();
                return;
            }
            begin_shutdown();
        });
    };
    wait_signal();

    // $SYS topics, refreshed every sys_interval seconds.
    asio::steady_timer sys_timer(*ios_.front());
    std::function<void()> sys_tick;
    if (core_.cfg().sys_interval > 0) {
        sys_tick = [&] {
            if (stopping_) return;
            core_.publish_sys();
            sys_timer.expires_after(std::chrono::seconds(core_.cfg().sys_interval));
            sys_timer.async_wait([&](boost::system::error_code ec) {
                if (!ec) sys_tick();
            });
        };
        asio::post(*ios_.front(), [&] { sys_tick(); });
    }

    for (auto& l : listeners_) {
        start_accepting(*l);
        spdlog::info("listening on {} ({}, {})", l->cfg.host + ":" + std::to_string(l->port), l->cfg.name,
                     l->cfg.protocol);
        std::printf("strata listening %s %s %s:%u\n", l->cfg.name.c_str(), l->cfg.protocol.c_str(),
                    l->cfg.host.c_str(), static_cast<unsigned>(l->port));
    }
    std::printf("strata ready\n");
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < ios_.size(); ++i) {
        threads.emplace_back([this, i] {
            core_.counters().bind_thread(i);
            thread_rwlock::bind_thread(i);
            ios_[i]->run();
        });
    }
    core_.counters().bind_thread(0);
    thread_rwlock::bind_thread(0);
    ios_.front()->run();
    for (auto& t : threads) t.join();
    spdlog::info("stopped");
    return 0;
}

}  // namespace strata::broker
