#include "broker/net/server.hpp"

#include "broker/hosts/opcua_check.hpp"
#include "broker/hosts/sparkplug_check.hpp"
#include "broker/net/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

namespace strata::broker::net {

struct server::listener {
    listener_config cfg;
    asio::ip::tcp::acceptor acceptor;
    std::uint16_t port = 0;
    std::unique_ptr<tls_context> tls;  // mqtt+tls and https
};

server::server(config cfg) : core_(std::move(cfg)) {
    // POST /api/v1/reload: the reload runs on the first network thread, as
    // SIGHUP's does (one at a time, in step with the alerts' tick and the
    // $SYS timer); the request's coroutine waits for it.
    // (Not a coroutine itself: GCC 12 destroys a coroutine lambda's
    // by-value parameters twice once they were moved from.)
    http_.admin().reload = [this](std::function<void()> edit, std::function<void()> undo) {
        return asio::co_spawn(
            ios_.front()->get_executor(),
            [this, edit = std::move(edit), undo = std::move(undo)]() -> asio::awaitable<reload_report> {
                co_return reload(edit, undo);
            },
            asio::use_awaitable);
    };
    // A model must fit what the OPC UA sources publish (at start and on reload).
    core_.add_model_check([](const config& c, const ns::model* m) {
        if (m != nullptr) hosts::check_opcua_fits_model(c, *m);
    });
    // And what the Sparkplug host publishes and takes as commands.
    core_.add_model_check([](const config& c, const ns::model* m) {
        if (m != nullptr) hosts::check_sparkplug_fits_model(c, *m);
    });
    http_.admin().bridges = &bridges_;
    http_.admin().opcua = &opcua_;
    http_.admin().sparkplug = &sparkplug_;
    // Bridge rules that name classes need them in every model installed.
    core_.add_model_check([](const config& c, const ns::model* m) { hosts::check_bridge_classes(c.bridges, m); });
    // What a reload replaced stays until every network thread has run a
    // handler posted after the swap: a reference a handler took stays
    // valid to its end (live.hpp).
    core_.set_retire([this](std::shared_ptr<const void> old) {
        for (auto& io : ios_) asio::post(*io, [old] {});
    });
    if (core_.cfg().alerts.enabled) alerts_ = std::make_unique<ops::alerts>(core_, core_.cfg().alerts, metrics_.registry());
    if (alerts_) alerts_->watch_sparkplug(&sparkplug_);
    unsigned n = core_.cfg().threads;
    // Default: one per core but one. The store's writer, RocksDB's
    // background work and the kernel's network processing need a core too;
    // measured on two cores, a second network thread there costs more in
    // cross-thread wake-ups (2.4x the CPU per message at 10k msg/s) than it
    // gives.
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency() - 1);
    for (unsigned i = 0; i < n; ++i) ios_.push_back(std::make_unique<asio::io_context>(1));
}

server::~server() {
    // The state reads' completions post to the io_contexts.
    http_.admin().stop();
    core_.release_io();
}

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
        auto l = std::make_unique<listener>(listener{lc, asio::ip::tcp::acceptor(io), 0, nullptr});
        if (lc.tls) {
            try {
                l->tls = std::make_unique<tls_context>(*lc.tls);
            } catch (const std::exception& e) {
                throw listen_error("cannot listen: listener '" + lc.name + "' (listeners[" + std::to_string(i) +
                                   "].tls): " + e.what());
            }
        }
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
                serve(l, std::move(socket), k);
            }
        },
        asio::detached);
}

void server::serve(listener& l, tcp_socket socket, std::size_t thread_index) {
    const auto ex = ios_[thread_index]->get_executor();
    if (l.cfg.is_http()) {
        auto ctx = l.tls ? l.tls->current() : nullptr;
        asio::post(ex, [this, &l, s = std::make_shared<tcp_socket>(std::move(socket)), ctx = std::move(ctx),
                        thread_index]() mutable { http_.serve(std::move(*s), std::move(ctx), l.cfg, thread_index); });
        return;
    }
    std::shared_ptr<connection> c;
    if (l.tls) {
        // No TLS state yet: the transport makes it when the client's first
        // bytes arrive (transport.hpp, tls_start).
        auto t = make_tls_transport(std::move(socket), l.tls->current(), core_.handshakes());
        t->identity = l.cfg.tls->identity;
        c = std::make_shared<connection>(core_, std::move(t), ex);
    } else {
        c = std::make_shared<connection>(core_, std::move(socket));
    }
    asio::post(ex, [c] { c->start(); });
}

reload_report server::reload(const std::function<void()>& edit, const std::function<void()>& undo) {
    // Nothing thrown here may reach the network thread that runs the reload.
    reload_report r;
    if (edit) {
        try {
            edit();
        } catch (const std::exception& e) {
            r.error = e.what();
            spdlog::error("reload: {}", r.error);
            return r;
        }
    }
    r = reload_config();
    if (!r.error.empty() && undo) {
        try {
            undo();
        } catch (const std::exception& e) {
            spdlog::error("reload: undoing the edit failed: {}", e.what());
        }
    }
    return r;
}

reload_report server::reload_config() {
    reload_report r;
    const config& running = core_.cfg();  // valid to the end of this handler (live.hpp)
    const bool alerts_were = running.alerts.enabled;
    try {
        // Without a config file: the built-in defaults again (the files they
        // name, if any, are read again).
        auto next = std::make_shared<config>(running.source_file.empty() ? running : load_config(running.source_file));
        r.changes = reconcile(running, *next);
        core_.reload(std::move(next), r.failed);
    } catch (const std::exception& e) {
        // config_error (file:line: key), or anything a library threw
        r.error = e.what();
        r.changes = {};
        spdlog::error("reload: the config is not reloaded, nothing changed: {}", r.error);
        return r;
    }
    const config& now = core_.cfg();
    const auto pick = [this] { return ios_[next_io_++ % ios_.size()]->get_executor(); };
    const auto step = [&r](const char* what, auto&& f) {
        try {
            f();
        } catch (const std::exception& e) {
            spdlog::error("reload: {} failed: {}", what, e.what());
            r.failed.emplace_back(what);
        }
    };
    step("bridges", [&] { (void)bridges_.apply(now, pick); });
    step("opcua", [&] { (void)opcua_.apply(now, pick); });
    step("sparkplug", [&] { (void)sparkplug_.apply(now, pick); });
    step("alerts", [&] { reconfigure_alerts(alerts_were); });
    reload_tls(r.failed);
    spdlog::set_level(spdlog::level::from_str(now.log_level));
    for (const auto& [section, what] : r.changes.live) spdlog::info("reload: {}: {}", section, what);
    for (const auto& key : r.changes.needs_restart)
        spdlog::warn("reload: needs restart: {} (left as it was)", key);
    if (r.changes.live.empty()) spdlog::info("reload: no section of the config changed");
    return r;
}

void server::reconfigure_alerts(bool were_enabled) {
    const auto& a = core_.cfg().alerts;
    if (!alerts_) {
        if (!a.enabled) return;
        alerts_ = std::make_unique<ops::alerts>(core_, a, metrics_.registry());
        alerts_->watch_sparkplug(&sparkplug_);
        alerts_->activate();
        return;
    }
    if (were_enabled && !a.enabled) {
        alerts_->deactivate();
        alerts_->clear();
    }
    alerts_->reconfigure(a);
    if (!were_enabled && a.enabled) alerts_->activate();
}

void server::run_network_thread(std::size_t index) {
    core_.counters().bind_thread(index);
    core::thread_rwlock::bind_thread(index);
    // The last line of defence: every handler catches what it can at its
    // own boundary (a connection closes itself after an exception); one
    // that still escapes is logged and counted, and the thread runs on
    // (Asio allows run() to be called again after a handler threw), so a
    // bug in one code path never takes the broker down.
    auto& io = *ios_[index];
    for (;;) {
        try {
            io.run();
            return;
        } catch (const std::exception& e) {
            spdlog::critical("network thread {}: an exception escaped a handler (the broker runs on): {}", index,
                             e.what());
        } catch (...) {
            spdlog::critical("network thread {}: an unknown exception escaped a handler (the broker runs on)", index);
        }
        core::bump(core_.counters().local().internal_errors);
    }
}

void server::reload_tls(std::vector<std::string>& failed) {
    const auto& configured = core_.cfg().listeners;
    for (std::size_t i = 0; i < listeners_.size() && i < configured.size(); ++i) {
        auto& l = *listeners_[i];
        if (!l.tls || !configured[i].tls) continue;
        try {
            l.tls->reload(*configured[i].tls);
            spdlog::info("listener '{}': TLS certificate and key reloaded", l.cfg.name);
        } catch (const std::exception& e) {
            spdlog::error("listener '{}': TLS reload failed, keeping the previous certificate: {}", l.cfg.name,
                          e.what());
            failed.push_back("TLS certificate of listener '" + l.cfg.name + "'");
        }
    }
}

void server::begin_shutdown() {
    if (stopping_) return;
    stopping_ = true;
    core_.set_listening(false);
    spdlog::info("shutting down");
    for (auto& l : listeners_) {
        boost::system::error_code ignored;  // shutting down: a listener that fails to close goes with the process
        l->acceptor.close(ignored);
    }
    if (alerts_) alerts_->deactivate();
    core_.audit_summaries(core::steady_clock::now());  // the counts so far, before the log closes
    core_.kick_all(mqtt::reason_code::server_shutting_down);
    bridges_.stop();
    opcua_.stop();
    sparkplug_.stop();
    // Bounded wait for the connections to flush and close.
    auto timer = std::make_shared<asio::steady_timer>(*ios_.front());
    const auto deadline = core::steady_clock::now() + std::chrono::milliseconds(core_.cfg().shutdown_grace_ms);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [this, timer, deadline, poll] {
        if (core_.connection_count() == 0 || core::steady_clock::now() >= deadline) {
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
    // and the TLS certificates (connections stay up), then wait for the
    // next signal.
    asio::signal_set signals(*ios_.front(), SIGINT, SIGTERM, SIGHUP);
    std::function<void()> wait_signal;
    wait_signal = [&] {
        signals.async_wait([&](boost::system::error_code ec, int sig) {
            if (ec) return;
            spdlog::info("signal {} received", sig);
            if (sig == SIGHUP) {
                (void)reload({}, {});  // what changed and what failed is logged
                if (!stopping_) wait_signal();
                return;
            }
            begin_shutdown();
        });
    };
    wait_signal();

    // $SYS topics, refreshed every sys_interval seconds (0: none; a reload
    // may set it, looked at once a second).
    asio::steady_timer sys_timer(*ios_.front());
    std::function<void()> sys_tick;
    sys_tick = [&] {
        if (stopping_) return;
        const std::uint32_t interval = core_.cfg().sys_interval;
        if (interval > 0) {
            core_.publish_sys();
            bridges_.publish_sys();
            opcua_.publish_sys();
            sparkplug_.publish_sys();
        }
        sys_timer.expires_after(std::chrono::seconds(interval > 0 ? interval : 1));
        sys_timer.async_wait([&](boost::system::error_code ec) {
            if (!ec) sys_tick();
        });
    };
    asio::post(*ios_.front(), [&] { sys_tick(); });

    // Housekeeping: expired retained messages leave memory and disk.
    asio::steady_timer housekeeping_timer(*ios_.front());
    std::function<void()> housekeeping;
    housekeeping = [&] {
        housekeeping_timer.expires_after(std::chrono::seconds(5));
        housekeeping_timer.async_wait([&](boost::system::error_code ec) {
            if (ec || stopping_) return;
            if (const auto n = core_.purge_expired()) spdlog::debug("{} expired retained messages removed", n);
            housekeeping();
        });
    };
    housekeeping();

    // Slow consumers: sessions that hold publishers are looked at four times
    // per limits.slow_consumer.after_ms (between 50 ms and 1 s; a reload
    // may change it).
    asio::steady_timer slow_timer(*ios_.front());
    std::function<void()> slow_tick;
    slow_tick = [&] {
        slow_timer.expires_after(std::clamp<std::chrono::milliseconds>(
            std::chrono::milliseconds(core_.cfg().limits.slow_consumer.after_ms / 4), std::chrono::milliseconds(50),
            std::chrono::milliseconds(1000)));
        slow_timer.async_wait([&](boost::system::error_code ec) {
            if (ec || stopping_) return;
            core_.check_slow_consumers(core::steady_clock::now());
            slow_tick();
        });
    };
    slow_tick();

    // Once a second (on this thread, as reloads): the alerts, counted from
    // now on (a reload may enable them), and the audit's summaries of
    // rate-limited refusal lines.
    if (alerts_) alerts_->activate();
    asio::steady_timer second_timer(*ios_.front());
    std::function<void()> second_tick;
    second_tick = [&] {
        second_timer.expires_after(std::chrono::seconds(1));
        second_timer.async_wait([&](boost::system::error_code ec) {
            if (ec || stopping_) return;
            const auto now = core::steady_clock::now();
            if (alerts_ && core_.cfg().alerts.enabled) alerts_->tick(now);
            if (core_.auditing()) core_.audit_summaries(now);
            second_tick();
        });
    };
    second_tick();

    // Bridges start after recovery (their outboxes are sessions in the
    // store), spread over the network threads.
    bridges_.start([this] { return ios_[next_io_++ % ios_.size()]->get_executor(); });
    metrics_.set_bridges(&bridges_);
    // OPC UA sources likewise (their write sessions are the broker's).
    opcua_.start([this] { return ios_[next_io_++ % ios_.size()]->get_executor(); });
    metrics_.set_opcua(&opcua_);
    // The Sparkplug host likewise (its session follows spBv1.0/#, and reads
    // back the certificates recovered from the store).
    sparkplug_.start([this] { return ios_[next_io_++ % ios_.size()]->get_executor(); });
    metrics_.set_sparkplug(&sparkplug_);
    for (auto& l : listeners_) {
        start_accepting(*l);
        spdlog::info("listening on {} ({}, {})", l->cfg.host + ":" + std::to_string(l->port), l->cfg.name,
                     l->cfg.protocol);
        std::printf("strata listening %s %s %s:%u\n", l->cfg.name.c_str(), l->cfg.protocol.c_str(),
                    l->cfg.host.c_str(), static_cast<unsigned>(l->port));
    }
    core_.set_listening(true);
    std::printf("strata ready\n");
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < ios_.size(); ++i) {
        threads.emplace_back([this, i] { run_network_thread(i); });
    }
    run_network_thread(0);
    for (auto& t : threads) t.join();
    spdlog::info("stopped");
    return 0;
}

}  // namespace strata::broker::net
