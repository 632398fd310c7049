// The bridge link: one coroutine per link runs the reconnect loop on the
// link's strand; each connection is a sequence (resolve, TCP connect, TLS
// handshake, CONNECT, CONNACK) and then four coroutines joined with ||:
//   reader   decodes what the remote sends and handles it;
//   writer   the only one that writes: control packets others queued in
//            ctl_ (acknowledgements, PINGREQ, SUBSCRIBE), then what the
//            owner's collect() gives while the outbound window is open; it
//            sleeps on a timer used as a condition variable (wake_pending_
//            + wake_timer_), so a wake before it sleeps is never lost;
//   keeper   the deadlines: SUBACK, PINGREQ every keep-alive, PINGRESP;
//   stop     ends the connection when stop() is called.
// The first to finish gives the reason the connection ends; the others are
// cancelled. Then a DISCONNECT is written (after stop(), or with the reason
// code of a protocol violation in 5.0) unless a write was cut in half.
//
// Everything here runs on the strand: no locks. The statistics are atomics
// so that stats() can be read from any thread.
#include "bridges/mqtt/link.hpp"

#include "bridges/mqtt/backoff.hpp"
#include "broker/codec/codec.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace strata::bridges::mqtt {

namespace ssl = asio::ssl;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using codec::reason_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// The writer hands this much to one write before it looks at the queue again.
constexpr std::size_t write_budget = 64 * 1024;

// Awaits `op` for at most `d`: its result, or nullopt when the time ran out
// (op is then cancelled).
template <class T>
asio::awaitable<std::optional<T>> within(asio::awaitable<T> op, clock_type::duration d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    auto r = co_await (std::move(op) || t.async_wait(use_tuple));
    if (r.index() == 1) co_return std::nullopt;
    co_return std::move(std::get<0>(r));
}

std::string seconds(std::chrono::milliseconds d) {
    return fmt::format("{:g}s", static_cast<double>(d.count()) / 1000.0);
}

bool refused(reason_code rc) { return static_cast<std::uint8_t>(rc) >= 0x80; }

const char* packet_name(codec::packet_type t) {
    static constexpr const char* names[] = {"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
                                            "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
                                            "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
                                            "DISCONNECT", "AUTH"};
    return names[static_cast<unsigned>(t) & 15u];
}

// The byte stream under a connection: TCP, or TLS over TCP.
class byte_stream {
public:
    explicit byte_stream(const asio::any_io_executor& ex) : tcp_(ex) {}

    tcp::socket& socket() { return tls_ ? tls_->next_layer() : tcp_; }
    ssl::stream<tcp::socket>& start_tls(std::shared_ptr<ssl::context> ctx) {
        ctx_ = std::move(ctx);
        return tls_.emplace(std::move(tcp_), *ctx_);
    }
    asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
        if (tls_) co_return co_await tls_->async_read_some(b, use_tuple);
        co_return co_await tcp_.async_read_some(b, use_tuple);
    }
    asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer b) {
        if (tls_) co_return co_await asio::async_write(*tls_, b, use_tuple);
        co_return co_await asio::async_write(tcp_, b, use_tuple);
    }
    void close() {
        error_code ignored;
        socket().close(ignored);
    }

private:
    tcp::socket tcp_;
    std::shared_ptr<ssl::context> ctx_;  // outlives tls_ (declared before it)
    std::optional<ssl::stream<tcp::socket>> tls_;
};

// A TLS client context from the options; throws std::runtime_error naming
// the file that could not be used.
std::shared_ptr<ssl::context> make_tls_context(const link_options& o) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    const auto use = [](const std::string& file, const char* what, auto&& fn) {
        try {
            fn();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error(fmt::format("{} '{}': {}", what, file, e.code().message()));
        }
    };
    if (o.ca_file.empty()) {
        ctx->set_default_verify_paths();
    } else {
        use(o.ca_file, "CA file", [&] { ctx->load_verify_file(o.ca_file); });
    }
    if (!o.cert_file.empty()) {
        use(o.cert_file, "certificate file", [&] { ctx->use_certificate_chain_file(o.cert_file); });
        const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
        use(key, "key file", [&] { ctx->use_private_key_file(key, ssl::context::pem); });
    }
    ctx->set_verify_mode(ssl::verify_peer);
    return ctx;
}

}  // namespace

class link::impl : public std::enable_shared_from_this<link::impl> {
public:
    impl(asio::any_io_executor ex, link_options opts, link_owner& owner)
        : strand_(asio::make_strand(ex)),
          opts_(std::move(opts)),
          owner_(owner),
          backoff_(opts_.reconnect_min, opts_.reconnect_max, std::random_device{}()),
          wake_timer_(strand_),
          stop_timer_(strand_),
          retry_timer_(strand_),
          bridge_flag_(opts_.bridge_flag) {
        if (opts_.name.empty()) opts_.name = fmt::format("{}:{}", opts_.host, opts_.port);
    }

    void start() {
        asio::co_spawn(strand_, run(shared_from_this()), [name = opts_.name](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                spdlog::error("bridge {}: link stopped by an internal error: {}", name, x.what());
            }
        });
    }

    void stop_here() {
        if (stopping_) return;
        stopping_ = true;
        stop_timer_.cancel();
        retry_timer_.cancel();
        // Before the CONNACK there is nothing to say goodbye to: closing the
        // socket ends the step in progress.
        if (!session_active_ && stream_) stream_->close();
    }

    void wake_here() {
        wake_posted_.store(false, std::memory_order_release);
        signal_writer();
    }

    void post_wake() {
        if (wake_posted_.exchange(true, std::memory_order_acq_rel)) return;
        asio::post(strand_, [self = shared_from_this()] { self->wake_here(); });
    }

    const std::vector<codec::user_property>& connack_user_properties() const { return connack_user_properties_; }

    link_stats stats() const {
        link_stats s;
        s.state = state_.load(std::memory_order_relaxed);
        s.connected = connected_.load(std::memory_order_relaxed);
        s.connects = connects_.load(std::memory_order_relaxed);
        s.failures = failures_.load(std::memory_order_relaxed);
        s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
        s.bytes_out = bytes_out_.load(std::memory_order_relaxed);
        s.messages_out = messages_out_.load(std::memory_order_relaxed);
        s.messages_in = messages_in_.load(std::memory_order_relaxed);
        s.acks = acks_.load(std::memory_order_relaxed);
        s.retry_delay = std::chrono::milliseconds(retry_delay_.load(std::memory_order_relaxed));
        s.last_ack = std::chrono::system_clock::time_point(
            std::chrono::system_clock::duration(last_ack_.load(std::memory_order_relaxed)));
        return s;
    }

    const executor_type strand_;

private:
    // --- the reconnect loop --------------------------------------------------

    asio::awaitable<void> run(std::shared_ptr<impl> self) {
        while (!stopping_) {
            set_state(link_state::connecting);
            std::string why;
            try {
                why = co_await connect_and_serve();
            } catch (const std::exception& e) {
                why = std::string("internal error: ") + e.what();
            }
            end_connection();
            if (stopping_) break;
            failures_.fetch_add(1, std::memory_order_relaxed);
            if (went_up_ && clock_type::now() - up_since_ >= opts_.stable_after) backoff_.reset();
            const std::chrono::milliseconds delay = backoff_.next();
            retry_delay_.store(delay.count(), std::memory_order_relaxed);
            spdlog::warn("bridge {}: {}; reconnecting in {}", opts_.name, why, seconds(delay));
            owner_.on_down(why);
            if (stopping_) break;  // stop() from inside on_down
            set_state(link_state::waiting);
            retry_timer_.expires_after(delay);
            co_await retry_timer_.async_wait(use_tuple);
        }
        set_state(link_state::stopped);
        spdlog::info("bridge {}: stopped", opts_.name);
    }

    void set_state(link_state s) { state_.store(s, std::memory_order_relaxed); }

    void end_connection() {
        if (stream_) stream_->close();
        session_active_ = false;
        up_ = false;
        connected_.store(false, std::memory_order_relaxed);
        inflight_.clear();
        inbound_q1_.clear();
        ctl_.clear();
    }

    // One connection from the first packet to its end; returns why it ended.
    asio::awaitable<std::string> connect_and_serve() {
        const auto ex = co_await asio::this_coro::executor;
        stream_ = std::make_unique<byte_stream>(ex);
        went_up_ = false;
        torn_ = false;
        close_code_.reset();
        rpos_ = rlen_ = 0;
        const auto rt = opts_.response_timeout;

        tcp::resolver resolver(ex);
        auto resolved = co_await within(resolver.async_resolve(opts_.host, std::to_string(opts_.port), use_tuple), rt);
        if (!resolved) co_return fmt::format("resolving {}: no answer within {}", opts_.host, seconds(rt));
        if (auto& [ec, results] = *resolved; ec) co_return fmt::format("resolving {}: {}", opts_.host, ec.message());
        if (stopping_) co_return "stopped";

        auto connected = co_await within(asio::async_connect(stream_->socket(), std::get<1>(*resolved), use_tuple), rt);
        if (!connected) co_return fmt::format("TCP connect to {}:{}: no answer within {}", opts_.host, opts_.port, seconds(rt));
        if (auto ec = std::get<0>(*connected))
            co_return fmt::format("TCP connect to {}:{}: {}", opts_.host, opts_.port, ec.message());
        error_code ignored;
        stream_->socket().set_option(tcp::no_delay(true), ignored);

        if (opts_.tls) {
            if (auto err = co_await tls_handshake()) co_return *err;
        }
        if (stopping_) co_return "stopped";

        std::vector<std::uint8_t> out;
        codec::encode(make_connect(), version(), out);
        auto written = co_await within(stream_->write(asio::buffer(out)), rt);
        if (!written) co_return fmt::format("sending CONNECT: no progress within {}", seconds(rt));
        if (auto ec = std::get<0>(*written)) co_return "sending CONNECT: " + ec.message();
        bytes_out_.fetch_add(out.size(), std::memory_order_relaxed);

        codec::packet p;
        auto got = co_await within(read_packet(p), rt);
        if (!got) co_return fmt::format("no CONNACK within {}", seconds(rt));
        if (*got) co_return **got;
        if (stopping_) co_return "stopped";
        if (!std::holds_alternative<codec::connack>(p)) {
            close_code_ = reason_code::protocol_error;
            co_return fmt::format("protocol error: {} before CONNACK", packet_name(codec::type_of(p)));
        }
        if (auto err = accept_connack(std::get<codec::connack>(p))) co_return *err;

        session_active_ = true;
        ++generation_;
        if (!opts_.subscriptions.empty()) {
            send_subscribe();
        } else {
            go_up();
        }
        auto ended = co_await (reader() || writer() || keeper() || stop_watch());
        std::string why = std::visit([](std::string& s) { return std::move(s); }, ended);
        co_await say_goodbye();
        co_return why;
    }

    asio::awaitable<std::optional<std::string>> tls_handshake() {
        std::shared_ptr<ssl::context> ctx;
        try {
            ctx = make_tls_context(opts_);
        } catch (const std::exception& e) {
            co_return std::string("TLS set-up: ") + e.what();
        }
        auto& tls = stream_->start_tls(std::move(ctx));
        const std::string& name = opts_.server_name.empty() ? opts_.host : opts_.server_name;
        error_code ec;
        asio::ip::make_address(name, ec);
        if (ec) SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());  // SNI: names only
        tls.set_verify_callback(ssl::host_name_verification(name));
        auto done = co_await within(tls.async_handshake(ssl::stream_base::client, use_tuple), opts_.response_timeout);
        if (!done) co_return fmt::format("TLS handshake: no answer within {}", seconds(opts_.response_timeout));
        if (auto e = std::get<0>(*done)) {
            std::string why = "TLS handshake: " + e.message();
            const long verify = SSL_get_verify_result(tls.native_handle());
            if (verify != X509_V_OK) why += fmt::format(" ({})", X509_verify_cert_error_string(verify));
            co_return why;
        }
        co_return std::nullopt;
    }

    [[nodiscard]] codec::protocol_version version() const noexcept { return opts_.version; }
    [[nodiscard]] bool v5() const noexcept { return opts_.version == codec::protocol_version::v5; }

    codec::connect make_connect() const {
        codec::connect c;
        c.version = version();
        c.bridge = !v5() && bridge_flag_;
        // 3.1.1: always a persistent session. 5.0: resume the session unless
        // none is wanted (expiry 0).
        c.clean_start = v5() && opts_.session_expiry == 0;
        c.keep_alive = opts_.keep_alive;
        c.client_id = opts_.client_id;
        c.username = opts_.username;
        c.password = opts_.password;
        if (v5()) {
            if (opts_.session_expiry != 0) c.props.session_expiry_interval = opts_.session_expiry;
            if (opts_.receive_maximum != 65535) c.props.receive_maximum = opts_.receive_maximum;
            c.props.maximum_packet_size = opts_.max_packet_size;
            c.props.user_properties = opts_.connect_user_properties;
        }
        return c;
    }

    // Takes the remote's limits from a CONNACK, or says why it refused.
    std::optional<std::string> accept_connack(const codec::connack& c) {
        if (refused(c.code) || (!v5() && c.code != reason_code::success)) {
            std::string why = fmt::format("CONNECT refused by the remote: {}", codec::to_string(c.code));
            if (c.props.reason_string) why += fmt::format(" ({})", *c.props.reason_string);
            if (c.code == reason_code::bad_user_name_or_password || c.code == reason_code::not_authorized) {
                spdlog::error("bridge {}: the remote refused our credentials ({}): check the bridge's "
                              "username, password and client certificate",
                              opts_.name, codec::to_string(c.code));
            }
            if (!v5() && bridge_flag_ && c.code == reason_code::unsupported_protocol_version) {
                bridge_flag_ = false;
                spdlog::warn("bridge {}: the remote does not accept the 3.1.1 bridge flag (protocol level "
                             "0x84); connecting as a plain 3.1.1 client from now on",
                             opts_.name);
            }
            return why;
        }
        session_present_ = c.session_present;
        connack_user_properties_ = c.props.user_properties;
        remote_receive_max_ = c.props.receive_maximum.value_or(65535);
        remote_max_packet_ = c.props.maximum_packet_size.value_or(268'435'460);
        remote_max_qos_ = c.props.maximum_qos.value_or(2);
        remote_retain_ = c.props.retain_available.value_or(1) != 0;
        keep_alive_ = std::chrono::seconds(c.props.server_keep_alive.value_or(opts_.keep_alive));
        // A new session on the remote knows nothing of our QoS 2 exchanges.
        if (!session_present_) q2_.clear();
        return std::nullopt;
    }

    void send_subscribe() {
        codec::subscribe s;
        s.packet_id = 1;  // the only packet id we use towards the remote
        s.subscriptions = opts_.subscriptions;
        if (v5()) {
            for (auto& r : s.subscriptions) {
                r.options.no_local = true;
                r.options.retain_as_published = true;
            }
        }
        awaiting_suback_ = true;
        suback_deadline_ = clock_type::now() + opts_.response_timeout;
        send_control(s);
    }

    void go_up() {
        if (stopping_) return;
        up_ = true;
        set_state(link_state::up);
        went_up_ = true;
        up_since_ = clock_type::now();
        connected_.store(true, std::memory_order_relaxed);
        connects_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("bridge {}: connected to {}:{} (MQTT {}{}, session {})", opts_.name, opts_.host, opts_.port,
                     v5() ? "5.0" : "3.1.1", opts_.tls ? ", TLS" : "",
                     session_present_ ? "resumed" : "new");
        owner_.on_up(session_present_);
        signal_writer();
    }

    // --- reading ---------------------------------------------------------------

    // Reads until one whole packet is decoded into `p`; returns why not.
    asio::awaitable<std::optional<std::string>> read_packet(codec::packet& p) {
        const codec::decode_limits limits{opts_.max_packet_size};
        for (;;) {
            if (rlen_ > rpos_) {
                const auto r = codec::decode(std::span<const std::uint8_t>(rbuf_.data() + rpos_, rlen_ - rpos_),
                                            version(), limits, p);
                if (r.status == codec::decode_status::ok) {
                    rpos_ += r.consumed;
                    if (rpos_ == rlen_) rpos_ = rlen_ = 0;
                    co_return std::nullopt;
                }
                if (r.status == codec::decode_status::error) {
                    close_code_ = r.code;
                    const char* what = r.code == reason_code::packet_too_large ? "packet too large" : "malformed packet";
                    spdlog::error("bridge {}: {} from the remote ({}: {}); closing the connection", opts_.name, what,
                                  codec::to_string(r.code), r.detail);
                    co_return fmt::format("{} from the remote: {}", what, r.detail);
                }
            }
            if (rpos_ > 0 && rbuf_.size() - rlen_ < 4096) {  // make room at the end
                std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rlen_ - rpos_);
                rlen_ -= rpos_;
                rpos_ = 0;
            }
            if (rbuf_.size() - rlen_ < 4096) rbuf_.resize(rlen_ + 16384);
            auto [ec, n] = co_await stream_->read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_));
            if (ec == asio::error::eof || ec == ssl::error::stream_truncated)
                co_return std::string("the remote closed the connection");
            if (ec) co_return "read: " + ec.message();
            rlen_ += n;
            bytes_in_.fetch_add(n, std::memory_order_relaxed);
        }
    }

    asio::awaitable<std::string> reader() {
        codec::packet p;
        for (;;) {
            if (auto err = co_await read_packet(p)) co_return std::move(*err);
            if (stopping_) co_return std::string("stopped");  // no callback after stop()
            if (auto err = std::visit([this](auto& x) { return handle(x); }, p)) co_return std::move(*err);
        }
    }

    std::optional<std::string> protocol_error(reason_code rc, std::string why) {
        close_code_ = rc;
        spdlog::error("bridge {}: protocol error by the remote: {}; closing the connection", opts_.name, why);
        return "protocol error: " + why;
    }

    template <class P>
    std::optional<std::string> handle(const P& x) {
        return protocol_error(reason_code::protocol_error,
                              fmt::format("unexpected {}", packet_name(codec::type_of(codec::packet{x}))));
    }

    std::optional<std::string> handle(codec::publish& p) {
        messages_in_.fetch_add(1, std::memory_order_relaxed);
        if (p.props.topic_alias)
            return protocol_error(reason_code::topic_alias_invalid, "topic alias used (we allow none)");
        if (p.qos == 0) {
            owner_.on_message(std::move(p), [](reason_code) {});
            return std::nullopt;
        }
        const std::uint16_t id = p.packet_id;
        if (p.qos == 1) {
            if (inbound_q1_.contains(id)) return std::nullopt;  // resent while the owner stores it
        } else if (const auto it = q2_.find(id); it != q2_.end()) {
            // Seen before: PUBREC again once the owner has answered.
            if (it->second) send_control(codec::pubrec{id, *it->second, {}});
            return std::nullopt;
        }
        if (v5() && inbound_q1_.size() + q2_.size() >= opts_.receive_maximum)
            return protocol_error(reason_code::receive_maximum_exceeded,
                                  fmt::format("more than {} unacknowledged QoS 1/2 PUBLISHes", opts_.receive_maximum));
        const std::uint8_t qos = p.qos;
        if (qos == 1) {
            inbound_q1_.insert(id);
        } else {
            q2_.emplace(id, std::nullopt);
        }
        owner_.on_message(std::move(p), done_callback(id, qos));
        return std::nullopt;
    }

    std::function<void(reason_code)> done_callback(std::uint16_t id, std::uint8_t qos) {
        return [weak = weak_from_this(), gen = generation_, id, qos](reason_code rc) {
            if (auto self = weak.lock())
                asio::post(self->strand_, [self, gen, id, qos, rc] { self->inbound_done(gen, id, qos, rc); });
        };
    }

    void inbound_done(std::uint64_t gen, std::uint16_t id, std::uint8_t qos, reason_code rc) {
        if (stopping_) return;
        if (!v5()) rc = reason_code::success;  // 3.1.1 cannot refuse
        if (qos == 1) {
            // A PUBACK belongs to the connection that got the PUBLISH: after a
            // reconnection the remote sends it again (the id may be reused).
            if (gen != generation_ || !session_active_ || inbound_q1_.erase(id) == 0) return;
            send_control(codec::puback{id, rc, {}});
            return;
        }
        const auto it = q2_.find(id);
        if (it == q2_.end() || it->second) return;
        it->second = rc;
        if (refused(rc)) q2_.erase(it);  // a refusing PUBREC ends the exchange
        if (session_active_) send_control(codec::pubrec{id, rc, {}});
    }

    std::optional<std::string> handle(const codec::pubrel& r) {
        const bool known = q2_.erase(r.packet_id) != 0;
        send_control(codec::pubcomp{r.packet_id, known ? reason_code::success : reason_code::packet_identifier_not_found, {}});
        return std::nullopt;
    }

    std::optional<std::string> handle(const codec::puback& a) {
        if (inflight_.erase(a.packet_id) == 0) {
            spdlog::debug("bridge {}: PUBACK for packet id {} not in flight", opts_.name, a.packet_id);
            return std::nullopt;
        }
        acks_.fetch_add(1, std::memory_order_relaxed);
        last_ack_.store(std::chrono::system_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        owner_.on_ack(a.packet_id, a.code);
        signal_writer();  // the window opened
        return std::nullopt;
    }

    std::optional<std::string> handle(const codec::suback& s) {
        if (!awaiting_suback_ || s.packet_id != 1)
            return protocol_error(reason_code::protocol_error, "SUBACK for no SUBSCRIBE of ours");
        awaiting_suback_ = false;
        for (std::size_t i = 0; i < s.codes.size() && i < opts_.subscriptions.size(); ++i) {
            if (refused(s.codes[i]))
                spdlog::error("bridge {}: the remote refused the subscription '{}': {}", opts_.name,
                              opts_.subscriptions[i].filter, codec::to_string(s.codes[i]));
        }
        go_up();
        return std::nullopt;
    }

    std::optional<std::string> handle(const codec::unsuback&) { return std::nullopt; }

    std::optional<std::string> handle(const codec::pingresp&) {
        ping_outstanding_ = false;
        return std::nullopt;
    }

    std::optional<std::string> handle(const codec::disconnect& d) {
        std::string why = fmt::format("the remote disconnected: {}", codec::to_string(d.code));
        if (d.props.reason_string) why += fmt::format(" ({})", *d.props.reason_string);
        return why;
    }

    // --- writing ---------------------------------------------------------------

    void send_control(const codec::packet& p) {
        codec::encode(p, version(), ctl_);
        signal_writer();
    }

    void signal_writer() {
        wake_pending_ = true;
        wake_timer_.cancel();
    }

    asio::awaitable<std::string> writer() {
        std::vector<std::uint8_t> buf;
        for (;;) {
            if (!wake_pending_) {
                wake_timer_.expires_at(clock_type::time_point::max());
                co_await wake_timer_.async_wait(use_tuple);
                if (!wake_pending_) co_return std::string("cancelled");  // by ||: another coroutine ended
            }
            wake_pending_ = false;
            buf.clear();
            buf.swap(ctl_);
            if (up_) fill_outbound(buf);
            if (buf.empty()) continue;
            auto [ec, n] = co_await stream_->write(asio::buffer(buf));
            bytes_out_.fetch_add(n, std::memory_order_relaxed);
            if (ec) {
                torn_ = n != buf.size();
                co_return "write: " + ec.message();
            }
        }
    }

    [[nodiscard]] std::size_t window() const noexcept {
        const std::size_t w = v5() ? std::min<std::size_t>(remote_receive_max_, opts_.max_inflight) : opts_.max_inflight;
        return w > inflight_.size() ? w - inflight_.size() : 0;
    }

    // Appends what the owner gives, while the window is open, up to the
    // write budget (then the writer comes back after the write).
    void fill_outbound(std::vector<std::uint8_t>& buf) {
        while (buf.size() < write_budget) {
            const std::size_t w = window();
            if (w == 0 || stopping_) return;
            batch_.clear();
            owner_.collect(batch_, w);
            if (batch_.empty()) return;
            const bool more = batch_.size() >= w;
            for (outbound& m : batch_) encode_outbound(m, buf);
            if (!more) return;
        }
        wake_pending_ = true;
    }

    // A message the remote would answer with a protocol error (and the
    // queue would stall on it, resent after every reconnection): refused
    // here and reported like a PUBACK, so the owner can move on.
    static bool valid_topic(std::string_view t) {
        return !t.empty() && t.size() <= 0xFFFF && t.find_first_of("+#") == std::string_view::npos &&
               codec::valid_utf8(t);  // which also refuses U+0000
    }

    void encode_outbound(outbound& m, std::vector<std::uint8_t>& buf) {
        const std::uint8_t qos = std::min<std::uint8_t>({m.qos, 1, remote_max_qos_});
        if (m.qos > 0 && m.packet_id == 0) {
            spdlog::error("bridge {}: QoS {} message for '{}' without a packet id; not sent", opts_.name, m.qos, m.topic);
            return;
        }
        if (!valid_topic(m.topic)) {
            spdlog::error("bridge {}: message with an invalid topic name '{}' (empty, wildcard, NUL, not UTF-8 or "
                          "too long); not sent",
                          opts_.name, m.topic);
            if (m.qos > 0) owner_.on_ack(m.packet_id, reason_code::topic_name_invalid);
            return;
        }
        if (qos > 0 && inflight_.contains(m.packet_id)) {
            // The owner's mistake; acknowledging it would retire the message
            // that holds the id. It stays with the owner, unsent.
            spdlog::error("bridge {}: packet id {} is already in flight; message for '{}' not sent", opts_.name,
                          m.packet_id, m.topic);
            return;
        }
        // Client to server, a PUBLISH carries neither of these.
        m.props.topic_alias.reset();
        m.props.subscription_identifiers.clear();
        codec::publish_view v;
        v.topic = m.topic;
        v.payload = m.payload;
        v.qos = qos;
        v.retain = m.retain && remote_retain_;
        v.dup = m.dup && qos > 0;
        v.packet_id = qos > 0 ? m.packet_id : 0;
        v.props = &m.props;
        if (const std::size_t size = codec::encoded_size(v, version()); size > remote_max_packet_) {
            spdlog::warn("bridge {}: message for '{}' is {} bytes, more than the remote's maximum packet size {}; "
                         "not sent",
                         opts_.name, m.topic, size, remote_max_packet_);
            if (m.qos > 0) owner_.on_ack(m.packet_id, reason_code::packet_too_large);
            return;
        }
        codec::encode_publish(v, version(), buf);
        messages_out_.fetch_add(1, std::memory_order_relaxed);
        if (qos > 0) {
            inflight_.insert(m.packet_id);
        } else if (m.qos > 0) {
            owner_.on_ack(m.packet_id, reason_code::success);  // the remote takes QoS 0 only
        }
    }

    // --- deadlines and stop ----------------------------------------------------

    asio::awaitable<std::string> keeper() {
        asio::steady_timer t(co_await asio::this_coro::executor);
        const auto rt = opts_.response_timeout;
        const bool pinging = keep_alive_.count() > 0;
        const auto ping_wait = std::min<clock_type::duration>(rt, keep_alive_);
        auto next_ping = clock_type::now() + keep_alive_;
        ping_outstanding_ = false;
        for (;;) {
            auto deadline = clock_type::time_point::max();
            if (pinging) deadline = std::min(deadline, next_ping);
            if (awaiting_suback_) deadline = std::min(deadline, suback_deadline_);
            if (ping_outstanding_) deadline = std::min(deadline, ping_deadline_);
            t.expires_at(deadline);
            auto [ec] = co_await t.async_wait(use_tuple);
            if (ec) co_return std::string("cancelled");
            const auto now = clock_type::now();
            if (awaiting_suback_ && now >= suback_deadline_) co_return fmt::format("no SUBACK within {}", seconds(rt));
            if (ping_outstanding_ && now >= ping_deadline_)
                co_return fmt::format("no PINGRESP within {}: the connection is dead", seconds(
                    std::chrono::duration_cast<std::chrono::milliseconds>(ping_wait)));
            if (pinging && now >= next_ping) {
                send_control(codec::pingreq{});
                if (!ping_outstanding_) {
                    ping_outstanding_ = true;
                    ping_deadline_ = now + ping_wait;
                }
                next_ping = now + keep_alive_;
            }
        }
    }

    asio::awaitable<std::string> stop_watch() {
        if (!stopping_) {
            stop_timer_.expires_at(clock_type::time_point::max());
            co_await stop_timer_.async_wait(use_tuple);
        }
        co_return std::string("stopped");
    }

    // A DISCONNECT after stop() (normal) or a protocol violation (5.0: with
    // its reason code), with the acknowledgements still queued before it.
    asio::awaitable<void> say_goodbye() {
        if (torn_ || !(stopping_ || close_code_)) co_return;
        if (!stopping_ && !v5()) co_return;  // 3.1.1 has no way to say why
        std::vector<std::uint8_t> buf;
        buf.swap(ctl_);
        codec::encode(codec::disconnect{close_code_.value_or(reason_code::success), {}}, version(), buf);
        auto r = co_await within(stream_->write(asio::buffer(buf)), opts_.response_timeout);
        if (r) bytes_out_.fetch_add(std::get<1>(*r), std::memory_order_relaxed);
    }

    link_options opts_;
    link_owner& owner_;
    backoff backoff_;
    asio::steady_timer wake_timer_, stop_timer_, retry_timer_;

    bool stopping_ = false;
    bool bridge_flag_;                  // cleared when the remote refuses it
    std::unique_ptr<byte_stream> stream_;
    std::uint64_t generation_ = 0;      // connections that reached CONNACK
    bool session_active_ = false;       // CONNACK accepted, connection not yet ended
    bool up_ = false;                   // and SUBACK received: outbound may flow
    bool went_up_ = false;
    clock_type::time_point up_since_{};
    bool session_present_ = false;
    bool torn_ = false;                 // a write ended part-way
    std::optional<reason_code> close_code_;

    // The remote's limits from its CONNACK.
    std::uint16_t remote_receive_max_ = 65535;
    std::uint32_t remote_max_packet_ = 268'435'460;
    std::uint8_t remote_max_qos_ = 2;
    bool remote_retain_ = true;
    std::chrono::seconds keep_alive_{0};
    std::vector<codec::user_property> connack_user_properties_;

    bool awaiting_suback_ = false;
    clock_type::time_point suback_deadline_{};
    bool ping_outstanding_ = false;
    clock_type::time_point ping_deadline_{};

    std::vector<std::uint8_t> rbuf_;
    std::size_t rpos_ = 0, rlen_ = 0;
    std::vector<std::uint8_t> ctl_;     // control packets for the writer
    bool wake_pending_ = false;
    std::vector<outbound> batch_;
    std::unordered_set<std::uint16_t> inflight_;     // outbound QoS 1 awaiting PUBACK
    std::unordered_set<std::uint16_t> inbound_q1_;   // inbound QoS 1 awaiting done()
    // Inbound QoS 2 from PUBLISH to PUBREL: nullopt while done() is awaited,
    // then the PUBREC's reason code. Kept across connections.
    std::unordered_map<std::uint16_t, std::optional<reason_code>> q2_;

    std::atomic<bool> wake_posted_{false};
    std::atomic<link_state> state_{link_state::idle};
    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> connects_{0}, failures_{0}, bytes_in_{0}, bytes_out_{0}, messages_out_{0},
        messages_in_{0}, acks_{0};
    std::atomic<std::chrono::system_clock::rep> last_ack_{0};
    std::atomic<std::chrono::milliseconds::rep> retry_delay_{0};
};

link::link(asio::any_io_executor ex, link_options opts, link_owner& owner) {
    if (opts.host.empty()) throw std::invalid_argument("bridge link: no remote host");
    if (opts.client_id.empty()) throw std::invalid_argument("bridge link: no client id");
    if (opts.reconnect_min > opts.reconnect_max)
        throw std::invalid_argument("bridge link: reconnect minimum above the maximum");
    if (opts.max_inflight == 0 || opts.receive_maximum == 0)
        throw std::invalid_argument("bridge link: max_inflight and receive_maximum must be at least 1");
    impl_ = std::make_shared<impl>(std::move(ex), std::move(opts), owner);
}

link::~link() { stop(); }

void link::start() { impl_->start(); }

void link::stop() {
    if (impl_->strand_.running_in_this_thread()) {
        impl_->stop_here();
    } else {
        asio::post(impl_->strand_, [self = impl_] { self->stop_here(); });
    }
}

void link::wake() { impl_->post_wake(); }

link_stats link::stats() const { return impl_->stats(); }

const std::vector<codec::user_property>& link::connack_user_properties() const {
    return impl_->connack_user_properties();
}

link::executor_type link::executor() const { return impl_->strand_; }

const char* to_string(link_state s) noexcept {
    switch (s) {
        case link_state::idle: return "idle";
        case link_state::connecting: return "connecting";
        case link_state::up: return "up";
        case link_state::waiting: return "waiting";
        case link_state::stopped: return "stopped";
    }
    return "unknown";
}

void parse_remote(std::string_view url, link_options& out) {
    std::string_view rest;
    bool tls;
    if (url.starts_with("mqtt://")) {
        rest = url.substr(7);
        tls = false;
    } else if (url.starts_with("mqtts://")) {
        rest = url.substr(8);
        tls = true;
    } else {
        throw std::invalid_argument(fmt::format("remote '{}': expected mqtt://host[:port] or mqtts://host[:port]", url));
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    std::string_view host = rest, port;
    if (rest.starts_with('[')) {  // [v6 address]
        const auto close = rest.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument(fmt::format("remote '{}': no ']'", url));
        host = rest.substr(1, close - 1);
        const std::string_view after = rest.substr(close + 1);
        if (!after.empty() && !after.starts_with(':'))
            throw std::invalid_argument(fmt::format("remote '{}': expected ':' after ']'", url));
        if (!after.empty()) port = after.substr(1);
    } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty() || host.find_first_of("/@?# ") != std::string_view::npos)
        throw std::invalid_argument(fmt::format("remote '{}': expected a host name or address", url));
    unsigned p = tls ? 8883 : 1883;
    if (!port.empty() || rest.ends_with(':')) {
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
            throw std::invalid_argument(fmt::format("remote '{}': port must be 1..65535", url));
    }
    out.host = std::string(host);
    out.port = static_cast<std::uint16_t>(p);
    out.tls = tls;
}

}  // namespace strata::bridges::mqtt
