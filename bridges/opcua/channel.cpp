// The secure channel: see channel.hpp.
#include "bridges/opcua/channel.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace strata::bridges::opcua {

namespace {

using boost::system::error_code;

constexpr std::uint32_t our_buffer_size = 65536;
constexpr std::uint32_t our_max_message_size = 64u << 20;
constexpr std::size_t symmetric_header_size = 16;  // message header, channel id, token id
constexpr std::size_t sequence_header_size = 8;

std::uint32_t le32(const std::uint8_t* p) noexcept {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

void append(std::vector<std::uint8_t>& out, crypto::bytes_view b) { out.insert(out.end(), b.begin(), b.end()); }

}  // namespace

std::optional<endpoint_address> parse_endpoint_url(std::string_view url) {
    constexpr std::string_view scheme = "opc.tcp://";
    if (!url.starts_with(scheme)) return std::nullopt;
    url.remove_prefix(scheme.size());
    url = url.substr(0, url.find('/'));
    endpoint_address a;
    std::size_t colon = url.rfind(':');
    if (url.starts_with('[')) {  // [IPv6]:port
        const std::size_t close = url.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        a.host = std::string(url.substr(1, close - 1));
        colon = close + 1 < url.size() && url[close + 1] == ':' ? close + 1 : std::string_view::npos;
    } else {
        a.host = std::string(url.substr(0, colon));
    }
    a.port = colon == std::string_view::npos ? "4840" : std::string(url.substr(colon + 1));
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(a.port.data(), a.port.data() + a.port.size(), port);
    if (a.host.empty() || ec != std::errc{} || end != a.port.data() + a.port.size() || port == 0 || port > 65535)
        return std::nullopt;
    return a;
}

secure_channel::secure_channel(strand executor, std::string endpoint_url, channel_security security,
                               std::chrono::milliseconds lifetime)
    : executor_(executor), endpoint_url_(std::move(endpoint_url)), sec_(std::move(security)), lifetime_(lifetime),
      socket_(executor), renew_timer_(executor), closed_(executor, asio::steady_timer::time_point::max()) {}

asio::awaitable<outcome> secure_channel::open(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    const auto address = parse_endpoint_url(endpoint_url_);
    if (!address) co_return outcome::failure(uacp::bad::tcp_endpoint_url_invalid, "invalid endpoint URL " + endpoint_url_);

    // The deadline of the whole opening: closing the socket ends every step.
    enum class phase : std::uint8_t { running, finished, timed_out };
    auto state = std::make_shared<phase>(phase::running);
    asio::steady_timer deadline(executor_, timeout);
    deadline.async_wait([self, state](error_code ec) {
        if (ec || *state != phase::running) return;
        *state = phase::timed_out;
        error_code ignored;  // closing to end the steps; nothing to do if it fails
        self->socket_.close(ignored);
    });
    struct finish {
        std::shared_ptr<phase> state;
        asio::steady_timer& t;
        ~finish() {
            if (*state == phase::running) *state = phase::finished;
            t.cancel();
        }
    } guard{state, deadline};
    const auto checked = [&](outcome o, const char* step) {
        if (*state != phase::timed_out) return o;
        return outcome::failure(bad::timeout, std::string(step) + ": no answer from " + endpoint_url_ + " within " +
                                                  std::to_string(timeout.count()) + " ms");
    };

    error_code ec;
    asio::ip::tcp::resolver resolver(executor_);
    const auto endpoints = co_await resolver.async_resolve(address->host, address->port, awaitable_ec(ec));
    if (ec) co_return outcome::failure(uacp::bad::tcp_endpoint_url_invalid, "resolving " + address->host + ": " + ec.message());
    co_await asio::async_connect(socket_, endpoints, awaitable_ec(ec));
    if (ec)
        co_return checked(outcome::failure(bad::not_connected, "connecting to " + endpoint_url_ + ": " + ec.message()),
                          "connecting");
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);

    uacp::hello hello;
    hello.receive_buffer_size = our_buffer_size;
    hello.send_buffer_size = our_buffer_size;
    hello.max_message_size = our_max_message_size;
    hello.endpoint_url = endpoint_url_;
    std::vector<std::uint8_t> buf;
    uacp::append_message(buf, hello);
    co_await asio::async_write(socket_, asio::buffer(buf), awaitable_ec(ec));
    uacp::message_header h;
    limits_.receive_buffer_size = our_buffer_size;
    outcome o = outcome::failure(bad::connection_closed, "sending Hello: " + ec.message());
    if (!ec) o = co_await read_chunk(buf, h);  // (GCC 12 miscompiles co_await inside ?:)
    if (!o.ok()) co_return checked(o, "Hello");
    if (h.type == uacp::message_type::error) co_return handle_chunk(h, buf);
    uacp::acknowledge ack;
    uacp::frame_result fr = h.type == uacp::message_type::acknowledge
                                ? uacp::decode_body(std::span(buf).subspan(uacp::header_size), ack)
                                : uacp::frame_result{uacp::frame_status::error, status_code{uacp::bad::tcp_message_type_invalid},
                                                     "expected Acknowledge"};
    if (fr.status == uacp::frame_status::ok) fr = uacp::negotiate(hello, ack, limits_);
    if (fr.status != uacp::frame_status::ok) co_return outcome::failure(fr.code.value, std::string("Acknowledge: ") + fr.detail);
    reassembler_ = uacp::reassembler(limits_);

    open_ = true;
    asio::co_spawn(executor_, read_loop(), asio::detached);
    o = co_await open_token(security_token_request_type::issue, timeout);
    if (!o.ok()) {
        o = checked(o, "OpenSecureChannel");
        fail(o);
        co_return o;
    }
    asio::co_spawn(executor_, renew_loop(), asio::detached);
    co_return outcome{};
}

asio::awaitable<outcome> secure_channel::open_token(security_token_request_type type,
                                                    std::chrono::milliseconds timeout) {
    client_nonce_ = sec_.secured() ? crypto::random_bytes(sec_.policy->nonce_length) : crypto::bytes{};
    open_secure_channel_request req;
    req.request_type = type;
    req.security_mode = sec_.mode;
    req.client_nonce = client_nonce_;
    req.requested_lifetime = static_cast<std::uint32_t>(lifetime_.count());
    const std::uint32_t id = next_request_id();
    req.request_header.request_handle = id;
    req.request_header.timestamp = date_time::now();
    req.request_header.timeout_hint = static_cast<std::uint32_t>(timeout.count());
    std::vector<std::uint8_t> body;
    encode_message(req, body);
    auto r = co_await exchange(id, std::move(body), timeout, true);
    co_return static_cast<outcome>(take<open_secure_channel_response>(std::move(r)));
}

asio::awaitable<result<decoded_message>> secure_channel::exchange(std::uint32_t id, std::vector<std::uint8_t> body,
                                                                  std::chrono::milliseconds timeout,
                                                                  bool open_request) {
    auto self = shared_from_this();
    if (!open_) co_return result<decoded_message>{failure_.message.empty()
                                                      ? outcome::failure(bad::not_connected, "channel not open")
                                                      : failure_};
    pending p{asio::steady_timer(executor_, timeout), std::nullopt};
    const outcome queued = open_request ? queue_asymmetric(id, body) : queue_symmetric(uacp::message_type::message, id, body);
    if (!queued.ok()) co_return result<decoded_message>{queued};
    pending_[id] = &p;
    error_code ec;
    co_await p.timer.async_wait(awaitable_ec(ec));
    pending_.erase(id);
    if (p.response) co_return std::move(*p.response);
    if (!open_) co_return result<decoded_message>{failure_};
    co_return result<decoded_message>{
        outcome::failure(bad::timeout, "no response within " + std::to_string(timeout.count()) + " ms")};
}

void secure_channel::deliver(std::uint32_t request_id, result<decoded_message> r) {
    const auto it = pending_.find(request_id);
    if (it == pending_.end()) return;  // timed out already
    it->second->response = std::move(r);
    it->second->timer.cancel();
}

asio::awaitable<outcome> secure_channel::read_chunk(std::vector<std::uint8_t>& chunk, uacp::message_header& h) {
    error_code ec;
    chunk.resize(uacp::header_size);
    co_await asio::async_read(socket_, asio::buffer(chunk), awaitable_ec(ec));
    if (ec) co_return outcome::failure(bad::connection_closed, "connection closed: " + ec.message());
    const uacp::frame_result fr = uacp::parse_header(chunk, limits_.receive_buffer_size, h);
    if (fr.status != uacp::frame_status::ok) co_return outcome::failure(fr.code.value, fr.detail);
    chunk.resize(h.size);
    co_await asio::async_read(socket_, asio::buffer(chunk.data() + uacp::header_size, h.size - uacp::header_size),
                              awaitable_ec(ec));
    if (ec) co_return outcome::failure(bad::connection_closed, "connection closed: " + ec.message());
    co_return outcome{};
}

asio::awaitable<void> secure_channel::read_loop() {
    auto self = shared_from_this();
    std::vector<std::uint8_t> chunk;
    while (open_) {
        uacp::message_header h;
        outcome o = co_await read_chunk(chunk, h);
        if (o.ok()) o = handle_chunk(h, chunk);
        if (!o.ok()) {
            fail(std::move(o));
            co_return;
        }
    }
}

outcome secure_channel::handle_chunk(const uacp::message_header& h, std::span<std::uint8_t> chunk) {
    switch (h.type) {
    case uacp::message_type::error: {
        uacp::error_message e;
        if (uacp::decode_body(chunk.subspan(uacp::header_size), e).status != uacp::frame_status::ok)
            return outcome::failure(uacp::bad::decoding_error, "malformed Error message");
        return outcome::failure(e.error.value, "server error " + e.error.name() + ": " + e.reason.value_or(""));
    }
    case uacp::message_type::open: return handle_open_response(chunk);
    case uacp::message_type::message:
    case uacp::message_type::close: return handle_symmetric(h, chunk);
    default: return outcome::failure(uacp::bad::tcp_message_type_invalid, "unexpected message type");
    }
}

outcome secure_channel::check_sequence(std::uint32_t seq) {
    if (receive_sequence_) {
        const std::uint32_t last = *receive_sequence_;
        const bool wrapped = last > 4'294'966'271u && seq < 1024;
        if (seq != last + 1 && !wrapped)
            return outcome::failure(bad::sequence_number_invalid, "sequence number " + std::to_string(seq) +
                                                                      " after " + std::to_string(last));
    }
    receive_sequence_ = seq;
    return {};
}

outcome secure_channel::handle_open_response(std::span<std::uint8_t> chunk) {
    reader r(chunk.subspan(uacp::header_size));
    (void)r.u32();  // channel id
    ua_string policy_uri;
    byte_string sender, thumbprint;
    decode(r, policy_uri);
    decode(r, sender);
    decode(r, thumbprint);
    if (!r.ok()) return outcome::failure(uacp::bad::decoding_error, "malformed OpenSecureChannel security header");
    const std::size_t header = uacp::header_size + r.offset();
    std::span<std::uint8_t> plain = chunk.subspan(header);
    crypto::bytes decrypted;
    if (sec_.secured()) {
        auto d = crypto::rsa_oaep_decrypt(sec_.own_key, chunk.subspan(header));
        const std::size_t sig = sec_.server_key.size_bytes();
        if (!d || d->size() < sig + sequence_header_size)
            return outcome::failure(bad::security_checks_failed, "OpenSecureChannel response does not decrypt");
        crypto::bytes signed_data(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(header));
        append(signed_data, crypto::bytes_view(*d).first(d->size() - sig));
        if (!crypto::rsa_verify_sha256(sec_.server_key, signed_data, crypto::bytes_view(*d).last(sig)))
            return outcome::failure(bad::security_checks_failed, "OpenSecureChannel response signature invalid");
        const auto n = crypto::strip_padding(*d, sig, crypto::needs_extra_padding(sec_.own_key.size_bytes()));
        if (!n || *n < sequence_header_size)
            return outcome::failure(bad::security_checks_failed, "OpenSecureChannel response padding invalid");
        decrypted = std::move(*d);
        plain = std::span(decrypted).first(*n);
    }
    if (plain.size() < sequence_header_size)
        return outcome::failure(uacp::bad::decoding_error, "OpenSecureChannel response truncated");
    if (outcome o = check_sequence(le32(plain.data())); !o.ok()) return o;
    const std::uint32_t request_id = le32(plain.data() + 4);
    decoded_message m = decode_message(plain.subspan(sequence_header_size));
    if (!m.outcome) return outcome::failure(uacp::bad::decoding_error, std::string("OpenSecureChannel response: ") + m.outcome.error);
    if (const auto* resp = m.as<open_secure_channel_response>(); resp && !resp->response_header.service_result.bad()) {
        keys k;
        k.token_id = resp->security_token.token_id;
        if (sec_.secured()) {
            if (!resp->server_nonce || resp->server_nonce->size() != sec_.policy->nonce_length)
                return outcome::failure(bad::security_checks_failed, "server nonce of the wrong length");
            k.k = crypto::derive_channel_keys(*sec_.policy, client_nonce_, *resp->server_nonce);
        }
        spdlog::debug("opcua {}: channel {} token {}, lifetime {} ms", endpoint_url_, resp->security_token.channel_id,
                      k.token_id, resp->security_token.revised_lifetime);
        channel_id_ = resp->security_token.channel_id;
        revised_lifetime_ = std::chrono::milliseconds(resp->security_token.revised_lifetime);
        if (current_.token_id != 0) previous_ = std::move(current_);
        current_ = std::move(k);
    }
    deliver(request_id, result<decoded_message>{{}, std::move(m)});
    return {};
}

outcome secure_channel::handle_symmetric(const uacp::message_header& h, std::span<std::uint8_t> chunk) {
    if (chunk.size() < symmetric_header_size + sequence_header_size)
        return outcome::failure(uacp::bad::decoding_error, "chunk truncated");
    if (le32(chunk.data() + 8) != channel_id_) return outcome::failure(bad::secure_channel_id_invalid, "wrong channel id");
    const std::uint32_t token = le32(chunk.data() + 12);
    const keys* k = nullptr;
    if (token == current_.token_id) {
        k = &current_;
        previous_ = {};  // the server uses the new token: the old one is done
    } else if (previous_.token_id != 0 && token == previous_.token_id) {
        k = &previous_;
    } else {
        return outcome::failure(bad::secure_channel_token_unknown, "unknown token id " + std::to_string(token));
    }
    std::span<std::uint8_t> rest = chunk.subspan(symmetric_header_size);
    const bool encrypted = sec_.mode == message_security_mode::sign_and_encrypt;
    if (encrypted) {
        const auto d = crypto::aes_cbc_decrypt(k->k.server.encrypting_key, k->k.server.iv, rest);
        if (!d) return outcome::failure(bad::security_checks_failed, "chunk does not decrypt");
        std::copy(d->begin(), d->end(), rest.begin());
    }
    const std::size_t sig = sec_.secured() ? sec_.policy->symmetric_signature_size : 0;
    if (rest.size() < sig + sequence_header_size) return outcome::failure(uacp::bad::decoding_error, "chunk truncated");
    if (sig != 0 && !crypto::hmac_sha256_verify(k->k.server.signing_key, chunk.first(chunk.size() - sig),
                                                chunk.last(sig)))
        return outcome::failure(bad::security_checks_failed, "chunk signature invalid");
    std::size_t length = rest.size() - sig;
    if (encrypted) {
        const auto n = crypto::strip_padding(rest, sig, false);
        if (!n || *n < sequence_header_size) return outcome::failure(bad::security_checks_failed, "chunk padding invalid");
        length = *n;
    }
    if (outcome o = check_sequence(le32(rest.data())); !o.ok()) return o;
    const std::uint32_t request_id = le32(rest.data() + 4);
    if (h.type == uacp::message_type::close) return outcome::failure(bad::connection_closed, "the server closed the channel");
    const auto body = rest.subspan(sequence_header_size, length - sequence_header_size);
    const auto added = reassembler_.add(h.chunk, request_id, body);
    switch (added.state) {
    case uacp::reassembler::status::need_more: return {};
    case uacp::reassembler::status::complete: {
        decoded_message m = decode_message(added.message);
        if (!m.outcome)
            deliver(request_id, {outcome::failure(uacp::bad::decoding_error, std::string("response: ") + m.outcome.error)});
        else
            deliver(request_id, result<decoded_message>{{}, std::move(m)});
        return {};
    }
    case uacp::reassembler::status::aborted:
        deliver(request_id, {outcome::failure(added.abort_code.value, "the server aborted the response: " +
                                                                           added.abort_code.name() + " " +
                                                                           added.abort_reason.value_or(""))});
        return {};
    case uacp::reassembler::status::error: return outcome::failure(added.code.value, added.detail);
    }
    return {};
}

uacp::chunk_layout secure_channel::symmetric_layout() const noexcept {
    uacp::chunk_layout l;
    if (sec_.secured()) l.signature_size = static_cast<std::uint32_t>(sec_.policy->symmetric_signature_size);
    if (sec_.mode == message_security_mode::sign_and_encrypt) {
        l.plain_block_size = l.cipher_block_size = static_cast<std::uint32_t>(sec_.policy->block_size);
        l.padding_size_bytes = 1;
    }
    return l;
}

outcome secure_channel::queue_symmetric(uacp::message_type type, std::uint32_t request_id,
                                        std::span<const std::uint8_t> body) {
    const uacp::chunk_plan plan = uacp::plan_chunks(body, limits_, symmetric_layout());
    if (plan.result.status != uacp::frame_status::ok)
        return outcome::failure(plan.result.code.value, std::string("request: ") + plan.result.detail);
    const bool encrypted = sec_.mode == message_security_mode::sign_and_encrypt;
    const std::size_t sig = sec_.secured() ? sec_.policy->symmetric_signature_size : 0;
    const crypto::symmetric_keys& k = current_.k.client;
    std::vector<std::uint8_t> buf;
    writer w(buf);
    for (std::size_t i = 0; i < plan.count; ++i) {
        const std::size_t start = buf.size();
        uacp::write_header(w, {type, plan.type(i), 0});
        w.u32(channel_id_);
        w.u32(current_.token_id);
        w.u32(++send_sequence_);
        w.u32(request_id);
        const auto piece = plan.piece(i);
        w.bytes(piece.data(), piece.size());
        if (encrypted) {
            const auto pad = crypto::make_padding(buf.size() - start - symmetric_header_size, sig, sec_.policy->block_size, false);
            append(buf, pad.data);
        }
        w.patch_u32(start + 4, static_cast<std::uint32_t>(buf.size() - start + sig));
        if (sig != 0) append(buf, crypto::hmac_sha256(k.signing_key, std::span(buf).subspan(start)));
        if (encrypted) {
            const auto plain = std::span(buf).subspan(start + symmetric_header_size);
            const auto e = crypto::aes_cbc_encrypt(k.encrypting_key, k.iv, plain);
            if (!e) return outcome::failure(uacp::bad::tcp_internal_error, "chunk not a whole number of blocks");
            std::copy(e->begin(), e->end(), plain.begin());
        }
    }
    queue(std::move(buf));
    return {};
}

outcome secure_channel::queue_asymmetric(std::uint32_t request_id, std::span<const std::uint8_t> body) {
    std::vector<std::uint8_t> buf;
    writer w(buf);
    uacp::write_header(w, {uacp::message_type::open, uacp::chunk_type::final_chunk, 0});
    w.u32(channel_id_);
    encode(w, ua_string{std::string(sec_.policy->uri)});
    if (sec_.secured()) {
        encode(w, byte_string{sec_.own_certificate});
        const auto tp = crypto::thumbprint(sec_.server_certificate);
        encode(w, byte_string{std::vector<std::uint8_t>(tp.begin(), tp.end())});
    } else {
        encode(w, byte_string{});
        encode(w, byte_string{});
    }
    const std::size_t header = buf.size();
    w.u32(++send_sequence_);
    w.u32(request_id);
    w.bytes(body.data(), body.size());
    if (sec_.secured()) {
        const std::size_t sig = sec_.own_key.size_bytes();
        const std::size_t plain_block = crypto::rsa_oaep_plain_block_size(sec_.server_key);
        const std::size_t cipher_block = sec_.server_key.size_bytes();
        const auto pad = crypto::make_padding(buf.size() - header, sig, plain_block,
                                              crypto::needs_extra_padding(cipher_block));
        append(buf, pad.data);
        const std::size_t blocks = (buf.size() - header + sig) / plain_block;
        w.patch_u32(4, static_cast<std::uint32_t>(header + blocks * cipher_block));
        append(buf, crypto::rsa_sign_sha256(sec_.own_key, buf));
        const auto e = crypto::rsa_oaep_encrypt(sec_.server_key, std::span(buf).subspan(header));
        buf.resize(header);
        append(buf, e);
    } else {
        w.patch_u32(4, static_cast<std::uint32_t>(buf.size()));
    }
    if (buf.size() > limits_.send_buffer_size)
        return outcome::failure(uacp::bad::request_too_large, "OpenSecureChannel request larger than the send buffer");
    queue(std::move(buf));
    return {};
}

void secure_channel::queue(std::vector<std::uint8_t> bytes) {
    out_.push_back(std::move(bytes));
    if (!writing_) {
        writing_ = true;
        asio::co_spawn(executor_, write_loop(), asio::detached);
    }
}

asio::awaitable<void> secure_channel::write_loop() {
    auto self = shared_from_this();
    while (!out_.empty() && open_) {
        error_code ec;
        co_await asio::async_write(socket_, asio::buffer(out_.front()), awaitable_ec(ec));
        if (ec) {
            fail(outcome::failure(bad::connection_closed, "connection closed: " + ec.message()));
            break;
        }
        out_.pop_front();
    }
    out_.clear();
    writing_ = false;
    if (closing_) fail(outcome::failure(bad::connection_closed, "channel closed by the client"));
}

asio::awaitable<void> secure_channel::renew_loop() {
    auto self = shared_from_this();
    while (open_) {
        renew_timer_.expires_after(revised_lifetime_ * 3 / 4);
        error_code ec;
        co_await renew_timer_.async_wait(awaitable_ec(ec));
        if (!open_ || closing_) co_return;
        const outcome o = co_await open_token(security_token_request_type::renew,
                                              std::max(revised_lifetime_ / 4, std::chrono::milliseconds(1000)));
        if (!o.ok()) {
            fail(outcome{o.status, "renewing the security token: " + o.message});
            co_return;
        }
    }
}

void secure_channel::close() {
    if (!open_ || closing_) return;
    closing_ = true;
    std::vector<std::uint8_t> body;
    close_secure_channel_request req;
    req.request_header.authentication_token = authentication_token;
    req.request_header.timestamp = date_time::now();
    encode_message(req, body);
    if (!queue_symmetric(uacp::message_type::close, next_request_id(), body).ok())
        fail(outcome::failure(bad::connection_closed, "channel closed by the client"));
}

void secure_channel::fail(outcome why) {
    if (!open_ && !failure_.message.empty()) return;
    open_ = false;
    failure_ = std::move(why);
    error_code ignored;  // closing anyway
    socket_.close(ignored);
    renew_timer_.cancel();
    for (auto& [id, p] : pending_) p->timer.cancel();
    closed_.cancel();
}

asio::awaitable<void> secure_channel::wait_closed() {
    auto self = shared_from_this();
    if (!open_) co_return;
    error_code ec;
    co_await closed_.async_wait(awaitable_ec(ec));
}

}  // namespace strata::bridges::opcua
