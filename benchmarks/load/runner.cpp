#include "benchmarks/load/runner.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace strata::bench {
namespace {

std::uint64_t mono_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

constexpr std::uint64_t sec_ns(double s) { return static_cast<std::uint64_t>(s * 1e9); }

struct run_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class role : std::uint8_t { publisher, subscriber, idle };
enum class conn_state : std::uint8_t { unopened, connecting, wait_connack, wait_suback, ready, failed, closed };

struct connection {
    int fd = -1;
    role kind = role::idle;
    conn_state state = conn_state::unopened;
    bool slow = false;         // slow subscriber: read on timer ticks only
    bool out_armed = false;    // EPOLLOUT registered
    bool dirty = false;        // in the flush list
    std::uint32_t index = 0;   // into publishers_ / subscribers_
    std::uint32_t events = 0;  // current epoll interest
    std::size_t out_off = 0;
    bytes out;
    bytes carry;               // a partial packet left from the last read
    double read_budget = 0;    // slow subscriber: bytes it may still read
};

// A QoS 1/2 PUBLISH the broker has not finished acknowledging.
struct exchange {
    std::uint16_t pid = 0;
    bool released = false;  // QoS 2: PUBREC < 0x80 came, PUBREL sent, PUBCOMP awaited
    std::uint32_t seq = 0;
};

struct publisher {
    std::uint32_t conn = 0;
    std::uint32_t id = 0;
    publish_template tpl;
    std::uint64_t published = 0;
    std::uint64_t delivered = 0;  // deliveries of its messages seen by any subscriber
    std::uint32_t receivers = 1;  // subscribers that get each of its messages
    std::uint32_t inflight_limit = 0;
    std::uint16_t next_pid = 1;
    std::vector<std::uint64_t> pid_used;  // 65536-bit set of the open exchanges' ids, QoS 1/2 only
    std::deque<exchange> open;            // QoS 1/2, in send order (brokers acknowledge in that order)
    std::vector<std::uint32_t> refused;   // sequence numbers the broker refused, ascending
    double rate = 0;                      // msg/s, fixed-rate mode
    double phase = 0;                     // stagger, in messages
};

struct seq_range {
    std::uint32_t first = 0;
    std::uint32_t end = 0;  // exclusive
};

// What one subscriber got from one publisher: every sequence number below
// `next` except those in `gaps` (skipped and not arrived since).
struct stream {
    std::uint32_t next = 0;
    std::uint64_t missing = 0;    // sequence numbers in gaps
    std::vector<seq_range> gaps;  // ascending, disjoint
};

struct subscriber {
    std::uint32_t conn = 0;
    std::string filter;
    std::vector<stream> from;  // per publisher id
    std::vector<std::uint64_t> awaiting_pubrel;  // 65536-bit set: QoS 2 packet ids received, PUBREL not yet
    std::uint64_t received = 0;
};

constexpr std::uint32_t retained_publisher_id = 0xfffffff0u;
constexpr std::uint64_t timer_tag = ~0ull;
constexpr std::size_t read_buffer_size = 256 * 1024;

std::string isa95_topic(const std::string& prefix, int i) {
    return prefix + "/plant1/area" + std::to_string(1 + i % 4) + "/line" + std::to_string(1 + i % 8) + "/cell" +
           std::to_string(1 + i % 16) + "/press" + std::to_string(i) + "/temp";
}

std::string retained_topic(const std::string& prefix, int k) {
    return prefix + "/plant" + std::to_string(k / 10000) + "/area" + std::to_string(k / 1000 % 10) + "/line" +
           std::to_string(k / 100 % 10) + "/cell" + std::to_string(k / 10 % 10) + "/dev" + std::to_string(k % 10) +
           "/value";
}

// Skips one MQTT 5 property; returns bytes consumed or 0 when malformed.
std::size_t property_size(std::uint8_t id, const std::uint8_t* p, std::size_t n) {
    switch (id) {
        case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2a:
            return n >= 1 ? 1 : 0;
        case 0x13: case 0x21: case 0x22: case 0x23:
            return n >= 2 ? 2 : 0;
        case 0x02: case 0x11: case 0x18: case 0x27:
            return n >= 4 ? 4 : 0;
        case 0x0b: {
            std::uint32_t v;
            return static_cast<std::size_t>(read_varint(p, n, v));
        }
        case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1a: case 0x1c: case 0x1f: {
            if (n < 2) return 0;
            const std::size_t len = 2 + read_u16(p);
            return len <= n ? len : 0;
        }
        case 0x26: {
            if (n < 2) return 0;
            std::size_t a = 2 + read_u16(p);
            if (a + 2 > n) return 0;
            std::size_t b = 2 + read_u16(p + a);
            return a + b <= n ? a + b : 0;
        }
        default:
            return 0;
    }
}

class engine {
public:
    explicit engine(const options& o) : opts_(o), rbuf_(read_buffer_size) {
        t0_ = mono_ns();
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) throw run_error(std::string("epoll_create1: ") + std::strerror(errno));
        if (::inet_pton(AF_INET, opts_.host.c_str(), &dst_.sin_addr) != 1)
            throw run_error("--host must be an IPv4 address: " + opts_.host);
        dst_.sin_family = AF_INET;
        dst_.sin_port = htons(opts_.port);
        sub_dst_ = dst_;
        if (opts_.sub_port != 0) sub_dst_.sin_port = htons(opts_.sub_port);
    }
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;
    ~engine() {
        for (auto& c : conns_)
            if (c.fd >= 0) ::close(c.fd);
        if (timer_fd_ >= 0) ::close(timer_fd_);
        if (ep_ >= 0) ::close(ep_);
    }

    result run() {
        if (opts_.broker_pid > 0) {
            res_.broker_rss_start_kib = process_rss_kib(opts_.broker_pid);
            broker_cpu_start_ = process_cpu_seconds(opts_.broker_pid);
            next_rss_ns_ = t0_;
        }
        try {
            switch (opts_.kind) {
                case scenario::fanin:
                case scenario::fanout:
                case scenario::pairs: run_traffic(); break;
                case scenario::conns: run_conns(); break;
                case scenario::retained: run_retained(); break;
            }
        } catch (const run_error& e) {
            res_.ok = false;
            res_.error = e.what();
        }
        if (opts_.broker_pid > 0) {
            const double c = process_cpu_seconds(opts_.broker_pid);
            if (c >= 0 && broker_cpu_start_ >= 0) res_.broker_cpu_total_s = c - broker_cpu_start_;
            sample_rss(mono_ns());
        }
        shutdown_all();
        return std::move(res_);
    }

private:
    // ---- connections -------------------------------------------------------

    std::uint32_t add_connection(role r, std::uint32_t index) {
        connection c;
        c.kind = r;
        c.index = index;
        conns_.push_back(std::move(c));
        return static_cast<std::uint32_t>(conns_.size() - 1);
    }

    void open(std::uint32_t id) {
        connection& c = conns_[id];
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw run_error(std::string("socket: ") + std::strerror(errno));
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (source_addrs_ > 1) {
            ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sockaddr_in src{};
            src.sin_family = AF_INET;
            src.sin_addr.s_addr = htonl(0x7f000001u + id % static_cast<std::uint32_t>(source_addrs_));
            if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
                const int e = errno;
                ::close(fd);
                throw run_error(std::string("bind 127.0.0.x: ") + std::strerror(e));
            }
        }
        c.fd = fd;
        c.state = conn_state::connecting;
        ++handshaking_;
        const sockaddr_in& to = c.kind == role::subscriber ? sub_dst_ : dst_;
        const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        if (rc != 0 && errno != EINPROGRESS) {
            fail_connection(id, std::string("connect: ") + std::strerror(errno), false);
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = id;
        c.events = EPOLLOUT;
        c.out_armed = true;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }

    void set_events(connection& c, std::uint32_t id, std::uint32_t events) {
        if (c.events == events || c.fd < 0) return;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        c.events = events;
    }

    std::uint32_t base_events(const connection& c) const {
        return (c.slow && c.state == conn_state::ready) ? 0u : static_cast<std::uint32_t>(EPOLLIN);
    }

    void on_connected(std::uint32_t id) {
        connection& c = conns_[id];
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            fail_connection(id, std::string("connect: ") + std::strerror(err), false);
            return;
        }
        c.state = conn_state::wait_connack;
        c.out_armed = false;
        set_events(c, id, EPOLLIN);
        char cid[64];
        const char* tag = c.kind == role::publisher ? "p" : c.kind == role::subscriber ? "s" : "i";
        std::snprintf(cid, sizeof cid, "sb%d-%s%u", static_cast<int>(::getpid()), tag, c.index);
        const bytes pkt = encode_connect(opts_.level, cid, static_cast<std::uint16_t>(opts_.keepalive),
                                         c.kind == role::subscriber && opts_.sub_session);
        c.out.insert(c.out.end(), pkt.begin(), pkt.end());
        mark_dirty(id);
    }

    // A connection is done with its handshake (ready) or failed: let the next one start.
    void handshake_done() {
        if (handshaking_ > 0) --handshaking_;
    }

    void fail_connection(std::uint32_t id, const std::string& why, bool after_ready) {
        connection& c = conns_[id];
        const conn_state was = c.state;
        if (c.fd >= 0) {
            ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
            ::close(c.fd);
            c.fd = -1;
        }
        c.state = conn_state::failed;
        c.out.clear();
        c.out_off = 0;
        if (was == conn_state::ready || after_ready) {
            ++res_.closed_by_broker;
        } else {
            handshake_done();
            ++res_.connect_errors;
        }
        if (first_error_.empty()) first_error_ = why;
        if (c.kind != role::idle && !tolerate_failures_) throw run_error(why);
    }

    void mark_dirty(std::uint32_t id) {
        connection& c = conns_[id];
        if (!c.dirty) {
            c.dirty = true;
            dirty_.push_back(id);
        }
    }

    void flush(std::uint32_t id) {
        connection& c = conns_[id];
        if (c.fd < 0 || c.state == conn_state::connecting) return;
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n > 0) {
                c.out_off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (!c.out_armed) {
                    c.out_armed = true;
                    set_events(c, id, base_events(c) | EPOLLOUT);
                }
                return;
            }
            fail_connection(id, std::string("send: ") + std::strerror(errno), false);
            return;
        }
        c.out.clear();
        c.out_off = 0;
        if (c.out_armed) {
            c.out_armed = false;
            set_events(c, id, base_events(c));
        }
    }

    void flush_dirty() {
        for (std::size_t i = 0; i < dirty_.size(); ++i) {
            const std::uint32_t id = dirty_[i];
            conns_[id].dirty = false;
            flush(id);
        }
        dirty_.clear();
    }

    // Reads once (at most max_bytes) and handles every whole packet.
    void read_from(std::uint32_t id, std::size_t max_bytes) {
        connection& c = conns_[id];
        if (c.fd < 0) return;
        std::uint8_t* buf = rbuf_.data();
        const std::size_t have = c.carry.size();
        if (have) std::memcpy(buf, c.carry.data(), have);
        const std::size_t room = std::min(read_buffer_size - have, max_bytes);
        if (room == 0) return;
        const ssize_t n = ::recv(c.fd, buf + have, room, 0);
        if (n == 0) {
            fail_connection(id, "connection closed by the broker", false);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            fail_connection(id, std::string("recv: ") + std::strerror(errno), false);
            return;
        }
        if (c.slow) c.read_budget -= static_cast<double>(n);
        now_ = mono_ns();
        const std::size_t total = have + static_cast<std::size_t>(n);
        std::size_t off = 0;
        while (off < total) {
            std::uint32_t rem = 0;
            const int h = parse_fixed_header(buf + off, total - off, rem);
            if (h == 0) break;
            if (h < 0 || h + static_cast<std::size_t>(rem) > read_buffer_size) {
                fail_connection(id, "malformed packet from the broker", false);
                return;
            }
            if (off + h + rem > total) break;
            handle_packet(id, buf[off], buf + off + h, rem);
            if (conns_[id].fd < 0) return;
            off += h + rem;
        }
        connection& c2 = conns_[id];
        c2.carry.assign(buf + off, buf + total);
    }

    void handle_packet(std::uint32_t id, std::uint8_t first, const std::uint8_t* p, std::uint32_t len) {
        connection& c = conns_[id];
        switch (first >> 4) {
            case 3: on_publish(id, first, p, len); break;
            case 4:  // PUBACK
                if (len >= 2 && c.kind == role::publisher)
                    on_puback(publishers_[c.index], read_u16(p), ack_reason(p, len));
                break;
            case 5:  // PUBREC
                if (len >= 2 && c.kind == role::publisher)
                    on_pubrec(publishers_[c.index], read_u16(p), ack_reason(p, len));
                break;
            case 6:  // PUBREL
                if (len >= 2) on_pubrel(id, read_u16(p));
                break;
            case 7:  // PUBCOMP
                if (len >= 2 && c.kind == role::publisher) on_pubcomp(publishers_[c.index], read_u16(p));
                break;
            case 2: on_connack(id, p, len); break;
            case 9: on_suback(id, p, len); break;
            case 13: ++pingresps_; break;
            case 14: {
                char why[96];
                std::snprintf(why, sizeof why, "DISCONNECT from the broker, reason 0x%02x", len ? p[0] : 0);
                fail_connection(id, why, true);
                break;
            }
            default: break;
        }
    }

    void on_connack(std::uint32_t id, const std::uint8_t* p, std::uint32_t len) {
        connection& c = conns_[id];
        if (c.state != conn_state::wait_connack || len < 2) return;
        if (p[1] != 0) {
            char why[64];
            std::snprintf(why, sizeof why, "CONNACK refused, code 0x%02x", p[1]);
            fail_connection(id, why, false);
            return;
        }
        if (opts_.level == mqtt_5 && len > 2) {
            std::uint32_t plen = 0;
            const int vs = read_varint(p + 2, len - 2, plen);
            std::size_t off = 2 + static_cast<std::size_t>(vs);
            const std::size_t end = std::min<std::size_t>(len, off + plen);
            while (vs > 0 && off < end) {
                const std::uint8_t pid = p[off++];
                if (pid == 0x21 && off + 2 <= end) res_.server_receive_maximum = read_u16(p + off);
                const std::size_t sz = property_size(pid, p + off, end - off);
                if (sz == 0) break;
                off += sz;
            }
        }
        if (c.kind == role::subscriber) {
            const subscriber& s = subscribers_[c.index];
            const bytes pkt = encode_subscribe(opts_.level, 1, s.filter, static_cast<std::uint8_t>(opts_.sub_qos));
            c.out.insert(c.out.end(), pkt.begin(), pkt.end());
            mark_dirty(id);
            c.state = conn_state::wait_suback;
            if (sub_started_ns_ == 0) sub_started_ns_ = mono_ns();
        } else {
            become_ready(id);
        }
    }

    void on_suback(std::uint32_t id, const std::uint8_t* p, std::uint32_t len) {
        connection& c = conns_[id];
        if (c.state != conn_state::wait_suback || len < 3) return;
        std::size_t off = 2;
        if (opts_.level == mqtt_5) {
            std::uint32_t plen = 0;
            const int vs = read_varint(p + 2, len - 2, plen);
            off += static_cast<std::size_t>(vs) + plen;
        }
        if (off >= len || p[off] >= 0x80) {
            char why[64];
            std::snprintf(why, sizeof why, "SUBACK refused, code 0x%02x", off < len ? p[off] : 0);
            fail_connection(id, why, false);
            return;
        }
        become_ready(id);
    }

    void become_ready(std::uint32_t id) {
        connection& c = conns_[id];
        c.state = conn_state::ready;
        ++ready_;
        handshake_done();
        if (c.slow) set_events(c, id, base_events(c) | (c.out_armed ? EPOLLOUT : 0u));
        if (c.kind == role::publisher) {
            publisher& pb = publishers_[c.index];
            std::uint32_t lim = static_cast<std::uint32_t>(opts_.inflight);
            if (res_.server_receive_maximum > 0)
                lim = std::min<std::uint32_t>(lim, static_cast<std::uint32_t>(res_.server_receive_maximum));
            pb.inflight_limit = lim;
        }
    }

    // ---- QoS 1/2 exchanges of the publishers --------------------------------
    //
    // QoS 1: PUBLISH -> PUBACK. QoS 2: PUBLISH -> PUBREC -> PUBREL -> PUBCOMP.
    // A message is "acknowledged" when the broker took it (PUBACK < 0x80, or
    // PUBCOMP after a PUBREC < 0x80) and "refused" on a negative PUBACK or
    // PUBREC; either ends the exchange and frees its --inflight slot.

    // The open exchange with this packet id, or open.end(). Brokers
    // acknowledge in the order they received the PUBLISHes, so it is
    // normally among the first.
    std::deque<exchange>::iterator find_open(publisher& pb, std::uint16_t pid) {
        if (pb.pid_used.empty() || !(pb.pid_used[pid >> 6] & (1ull << (pid & 63)))) return pb.open.end();
        return std::find_if(pb.open.begin(), pb.open.end(), [pid](const exchange& e) { return e.pid == pid; });
    }

    void close_exchange(publisher& pb, std::deque<exchange>::iterator it, bool accepted) {
        if (accepted) {
            ++res_.acknowledged;
        } else {
            ++res_.refused;
            pb.refused.insert(std::upper_bound(pb.refused.begin(), pb.refused.end(), it->seq), it->seq);
            // It will not be delivered: settle it for the pacing window with
            // the subscribers that have not skipped past it already.
            for (std::uint32_t i = 0; i < subscribers_.size(); ++i)
                if (receives(i, pb.id) && subscribers_[i].from[pb.id].next <= it->seq) ++pb.delivered;
        }
        pb.pid_used[it->pid >> 6] &= ~(1ull << (it->pid & 63));
        pb.open.erase(it);
    }

    // Whether subscriber i gets publisher p's messages.
    bool receives(std::uint32_t i, std::uint32_t p) const { return opts_.kind != scenario::pairs || i == p; }

    void on_puback(publisher& pb, std::uint16_t pid, std::uint8_t reason) {
        const auto it = opts_.qos == 1 ? find_open(pb, pid) : pb.open.end();
        if (it == pb.open.end()) {
            ++res_.stray_acks;
            return;
        }
        close_exchange(pb, it, reason < 0x80);
    }

    void on_pubrec(publisher& pb, std::uint16_t pid, std::uint8_t reason) {
        const auto it = opts_.qos == 2 ? find_open(pb, pid) : pb.open.end();
        if (it == pb.open.end() || (it->released && reason >= 0x80)) {
            ++res_.stray_acks;
            return;
        }
        if (reason >= 0x80) {
            close_exchange(pb, it, false);
            return;
        }
        // A repeated PUBREC is answered again: the broker may not have the PUBREL.
        it->released = true;
        append_ack(conns_[pb.conn].out, pubrel_byte, pid);
        mark_dirty(pb.conn);
    }

    void on_pubcomp(publisher& pb, std::uint16_t pid) {
        const auto it = opts_.qos == 2 ? find_open(pb, pid) : pb.open.end();
        if (it == pb.open.end() || !it->released) {
            ++res_.stray_acks;
            return;
        }
        // The PUBREC accepted the message; the PUBCOMP's reason code (5.0:
        // 0x92, packet id not found) concerns only the id.
        close_exchange(pb, it, true);
    }

    // Opens an exchange for the message with sequence number `seq`.
    std::uint16_t alloc_pid(publisher& pb, std::uint32_t seq) {
        for (int tries = 0; tries < 65536; ++tries) {
            const std::uint16_t pid = pb.next_pid;
            pb.next_pid = static_cast<std::uint16_t>(pb.next_pid == 65535 ? 1 : pb.next_pid + 1);
            std::uint64_t& w = pb.pid_used[pid >> 6];
            const std::uint64_t bit = 1ull << (pid & 63);
            if (!(w & bit)) {
                w |= bit;
                pb.open.push_back(exchange{pid, false, seq});
                return pid;
            }
        }
        throw run_error("no free packet id");  // cannot happen: inflight < 65535
    }

    // ---- what the subscribers receive -----------------------------------------

    // QoS 2: a PUBREL ends the exchange the subscriber's PUBREC began.
    void on_pubrel(std::uint32_t id, std::uint16_t pid) {
        connection& c = conns_[id];
        if (c.kind == role::subscriber) {
            std::vector<std::uint64_t>& awaiting = subscribers_[c.index].awaiting_pubrel;
            if (!awaiting.empty()) awaiting[pid >> 6] &= ~(1ull << (pid & 63));
        }
        append_ack(c.out, pubcomp_byte, pid);
        mark_dirty(id);
    }

    // QoS 2: remembers a received packet id until its PUBREL; false when it
    // was remembered already.
    static bool await_pubrel(subscriber& s, std::uint16_t pid) {
        if (s.awaiting_pubrel.empty()) s.awaiting_pubrel.assign(1024, 0);
        std::uint64_t& w = s.awaiting_pubrel[pid >> 6];
        const std::uint64_t bit = 1ull << (pid & 63);
        const bool fresh = !(w & bit);
        w |= bit;
        return fresh;
    }

    // The gap holding `seq`, or gaps.end().
    template <class Gaps>
    static auto gap_of(Gaps& gaps, std::uint32_t seq) {
        const auto it = std::upper_bound(gaps.begin(), gaps.end(), seq,
                                         [](std::uint32_t v, const seq_range& r) { return v < r.first; });
        return it != gaps.begin() && seq < (it - 1)->end ? it - 1 : gaps.end();
    }

    // A message that arrived after a later one of its publisher: true when
    // `seq` was in a gap (it is removed from there).
    static bool fill_gap(stream& st, std::uint32_t seq) {
        const auto it = gap_of(st.gaps, seq);
        if (it == st.gaps.end()) return false;
        --st.missing;
        if (seq == it->first) {
            ++it->first;
        } else if (seq + 1 == it->end) {
            --it->end;
        } else {
            const seq_range tail{seq + 1, it->end};
            it->end = seq;
            st.gaps.insert(it + 1, tail);
            return true;
        }
        if (it->first == it->end) st.gaps.erase(it);
        return true;
    }

    void on_publish(std::uint32_t id, std::uint8_t first, const std::uint8_t* p, std::uint32_t len) {
        connection& c = conns_[id];
        if (len < 2) return;
        const std::uint8_t qos = (first >> 1) & 3;
        std::size_t off = 2 + static_cast<std::size_t>(read_u16(p));
        std::uint16_t pid = 0;
        if (qos > 0) {
            if (off + 2 > len) return;
            pid = read_u16(p + off);
            off += 2;
        }
        if (opts_.level == mqtt_5) {
            std::uint32_t plen = 0;
            const int vs = read_varint(p + off, len - off, plen);
            if (vs == 0) return;
            off += static_cast<std::size_t>(vs) + plen;
        }
        if (qos == 1) {
            append_ack(c.out, puback_byte, pid);
            mark_dirty(id);
        } else if (qos == 2) {
            append_ack(c.out, pubrec_byte, pid);
            mark_dirty(id);
            // A resend (DUP) of a message whose PUBREL has not come yet was
            // counted when it first arrived.
            if (c.kind == role::subscriber && !await_pubrel(subscribers_[c.index], pid) && (first & 0x08)) return;
        }
        if (c.kind != role::subscriber) return;
        if (off + payload_header_size > len) {
            ++res_.foreign;
            return;
        }
        const payload_header h = get_payload_header(p + off);
        subscriber& s = subscribers_[c.index];
        ++s.received;
        ++res_.received;
        if (h.publisher == retained_publisher_id) {
            on_retained(h.seq);
            return;
        }
        if (h.publisher >= s.from.size()) {
            ++res_.foreign;
            return;
        }
        stream& st = s.from[h.publisher];
        publisher& pb = publishers_[h.publisher];
        if (h.seq == st.next) {
            ++st.next;
            ++pb.delivered;
        } else if (h.seq > st.next) {
            if (opts_.verbose && res_.gap_events < 20)
                std::fprintf(stderr, "strata-bench: gap: subscriber %u publisher %u expected seq %u got %u (t=%.3f s)\n",
                             c.index, h.publisher, st.next, h.seq, static_cast<double>(now_ - pub_start_ns_) / 1e9);
            ++res_.gap_events;
            st.gaps.push_back(seq_range{st.next, h.seq});
            st.missing += h.seq - st.next;
            // Messages are delivered in order per publisher, so the skipped ones
            // will not come: settle them (refused ones are settled already), or
            // the pacing window would shrink.
            const auto refused_skipped = std::lower_bound(pb.refused.begin(), pb.refused.end(), h.seq) -
                                         std::lower_bound(pb.refused.begin(), pb.refused.end(), st.next);
            pb.delivered += h.seq - st.next - static_cast<std::uint64_t>(refused_skipped) + 1;
            st.next = h.seq + 1;
        } else if (fill_gap(st, h.seq)) {
            ++res_.out_of_order;  // settled for pacing when its gap opened
        } else {
            ++res_.duplicates;
        }
        if (now_ >= window_start_ns_ && now_ < window_end_ns_) {
            ++res_.window_deliveries;
            res_.latency.record(now_ > h.sent_ns ? now_ - h.sent_ns : 0);
        }
    }

    void on_retained(std::uint32_t k) {
        if (k >= retained_seen_.size() * 64) {
            ++res_.foreign;
            return;
        }
        std::uint64_t& w = retained_seen_[k >> 6];
        const std::uint64_t bit = 1ull << (k & 63);
        if (w & bit) {
            ++res_.duplicates;
            return;
        }
        w |= bit;
        ++res_.retained_got;
        retained_last_ns_ = now_;
    }

    // ---- the loop ------------------------------------------------------------

    // Waits for events (at most timeout_ms) and handles them.
    void poll(int timeout_ms) {
        epoll_event evs[512];
        const int n = ::epoll_wait(ep_, evs, 512, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) return;
            throw run_error(std::string("epoll_wait: ") + std::strerror(errno));
        }
        now_ = mono_ns();
        for (int i = 0; i < n; ++i) {
            const std::uint64_t tag = evs[i].data.u64;
            if (tag == timer_tag) {
                std::uint64_t expirations = 0;
                [[maybe_unused]] const ssize_t r = ::read(timer_fd_, &expirations, sizeof expirations);
                ticked_ = true;
                continue;
            }
            const auto id = static_cast<std::uint32_t>(tag);
            connection& c = conns_[id];
            if (c.fd < 0) continue;
            const std::uint32_t e = evs[i].events;
            if (c.state == conn_state::connecting) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(id);
                continue;
            }
            if ((e & EPOLLOUT) && c.out_armed) flush(id);
            if (c.fd >= 0 && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !(c.slow && c.state == conn_state::ready))
                read_from(id, read_buffer_size);
        }
        if (ticked_) {
            ticked_ = false;
            read_slow_subscribers();
        }
        now_ = mono_ns();
        maybe_sample_rss(now_);
        maybe_ping(now_);
    }

    void read_slow_subscribers() {
        if (slow_subs_.empty()) return;
        const std::uint64_t t = mono_ns();
        const double dt = last_slow_ns_ ? static_cast<double>(t - last_slow_ns_) / 1e9 : 0.0;
        last_slow_ns_ = t;
        for (const std::uint32_t id : slow_subs_) {
            connection& c = conns_[id];
            if (c.fd < 0 || c.state != conn_state::ready) continue;
            c.read_budget = std::min(c.read_budget + dt * opts_.sub_rate * delivered_packet_size_,
                                     static_cast<double>(read_buffer_size / 2));
            if (c.read_budget >= 1.0) read_from(id, static_cast<std::size_t>(c.read_budget));
        }
    }

    void sample_rss(std::uint64_t t) {
        if (opts_.broker_pid <= 0) return;
        const long kib = process_rss_kib(opts_.broker_pid);
        if (kib < 0) return;
        res_.broker_rss_max_kib = std::max(res_.broker_rss_max_kib, kib);
        if (opts_.rss_sample_ms > 0) res_.rss_curve.emplace_back(static_cast<double>(t - t0_) / 1e9, kib);
    }

    void maybe_sample_rss(std::uint64_t t) {
        if (opts_.broker_pid <= 0 || opts_.rss_sample_ms <= 0 || t < next_rss_ns_) return;
        sample_rss(t);
        next_rss_ns_ = t + static_cast<std::uint64_t>(opts_.rss_sample_ms) * 1'000'000ull;
    }

    void maybe_ping(std::uint64_t t) {
        if (opts_.keepalive <= 0) return;
        const std::uint64_t every = static_cast<std::uint64_t>(opts_.keepalive) * 500'000'000ull;
        if (next_ping_ns_ == 0) next_ping_ns_ = t0_ + every;
        if (t < next_ping_ns_) return;
        next_ping_ns_ = t + every;
        for (std::uint32_t id = 0; id < conns_.size(); ++id) {
            connection& c = conns_[id];
            if (c.fd < 0 || c.state != conn_state::ready) continue;
            append_pingreq(c.out);
            mark_dirty(id);
        }
    }

    // Epoll timeout in ms until `deadline` (capped, so housekeeping runs).
    int timeout_until(std::uint64_t deadline, int cap_ms = 50) const {
        const std::uint64_t t = mono_ns();
        if (deadline <= t) return 0;
        const std::uint64_t ms = (deadline - t + 999'999) / 1'000'000;
        return static_cast<int>(std::min<std::uint64_t>(ms, static_cast<std::uint64_t>(cap_ms)));
    }

    // Opens connections [first, last) with at most connect_concurrency handshakes
    // in progress, until all are ready (or failed) or the setup timeout.
    void establish(std::uint32_t first, std::uint32_t last) {
        const std::uint64_t deadline = mono_ns() + sec_ns(opts_.setup_timeout);
        std::uint32_t next = first;
        auto settled = [&] {
            std::uint32_t done = 0;
            for (std::uint32_t i = first; i < last; ++i)
                if (conns_[i].state == conn_state::ready || conns_[i].state == conn_state::failed) ++done;
            return done;
        };
        std::uint64_t last_progress = 0;
        for (;;) {
            while (next < last && handshaking_ < opts_.connect_concurrency) open(next++);
            flush_dirty();
            if (next >= last && handshaking_ == 0) break;
            const std::uint64_t t = mono_ns();
            if (t > deadline) {
                throw run_error("setup timeout: " + std::to_string(settled()) + " of " +
                                std::to_string(last - first) + " connections ready" +
                                (first_error_.empty() ? "" : ", first error: " + first_error_));
            }
            if (opts_.verbose && t - last_progress > 1'000'000'000ull) {
                last_progress = t;
                std::fprintf(stderr, "strata-bench: %u/%u connections ready\n", ready_, last);
            }
            poll(timeout_until(deadline, 20));
        }
        flush_dirty();
    }

    void start_timer() {
        if (timer_fd_ >= 0) return;
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd_ < 0) throw run_error(std::string("timerfd_create: ") + std::strerror(errno));
        itimerspec its{};
        its.it_interval.tv_sec = opts_.tick_us / 1'000'000;
        its.it_interval.tv_nsec = (opts_.tick_us % 1'000'000) * 1000L;
        its.it_value = its.it_interval;
        ::timerfd_settime(timer_fd_, 0, &its, nullptr);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = timer_tag;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, timer_fd_, &ev);
    }

    // Appends as many PUBLISHes per publisher as its windows and the rate
    // allow (at most --batch). Returns true when some publisher was limited
    // only by --batch (call again without sleeping).
    bool pump(std::uint64_t now) {
        bool more = false;
        const double elapsed = static_cast<double>(now - pub_start_ns_) / 1e9;
        for (publisher& pb : publishers_) {
            connection& c = conns_[pb.conn];
            if (c.fd < 0 || c.state != conn_state::ready || c.out_off < c.out.size()) continue;
            std::int64_t credit = opts_.batch;
            if (opts_.window > 0) {
                const std::int64_t in_flight =
                    static_cast<std::int64_t>(pb.published) - static_cast<std::int64_t>(pb.delivered / pb.receivers);
                credit = std::min<std::int64_t>(credit, opts_.window - in_flight);
            }
            if (opts_.qos > 0)
                credit = std::min<std::int64_t>(credit, static_cast<std::int64_t>(pb.inflight_limit) -
                                                            static_cast<std::int64_t>(pb.open.size()));
            if (opts_.rate > 0) {
                const double due_total = std::floor(pb.rate * elapsed + pb.phase);
                const std::int64_t due = static_cast<std::int64_t>(due_total) - static_cast<std::int64_t>(pb.published);
                if (due > 1) {  // behind schedule by more than one message
                    const double lag_s = static_cast<double>(due - 1) / pb.rate;
                    res_.max_send_lag_us = std::max<std::uint64_t>(res_.max_send_lag_us,
                                                                   static_cast<std::uint64_t>(lag_s * 1e6));
                }
                credit = std::min<std::int64_t>(credit, due);
            }
            if (credit <= 0) continue;
            if (credit == opts_.batch) more = true;
            append_publishes(pb, c, static_cast<std::size_t>(credit), now);
            mark_dirty(pb.conn);
        }
        return more;
    }

    void append_publishes(publisher& pb, connection& c, std::size_t count, std::uint64_t now) {
        const std::size_t sz = pb.tpl.packet.size();
        const std::size_t base = c.out.size();
        c.out.resize(base + sz * count);
        std::uint8_t* d = c.out.data() + base;
        payload_header h{pb.id, static_cast<std::uint32_t>(pb.published), now};
        for (std::size_t k = 0; k < count; ++k, d += sz) {
            std::memcpy(d, pb.tpl.packet.data(), sz);
            if (pb.tpl.packet_id_offset) {
                const std::uint16_t pid = alloc_pid(pb, h.seq);
                d[pb.tpl.packet_id_offset] = static_cast<std::uint8_t>(pid >> 8);
                d[pb.tpl.packet_id_offset + 1] = static_cast<std::uint8_t>(pid & 0xff);
            }
            put_payload_header(d + pb.tpl.payload_offset, h);
            ++h.seq;
        }
        pb.published += count;
        res_.published += count;
    }

    // ---- scenarios -------------------------------------------------------------

    int auto_source_addrs(std::size_t n) const {
        if (opts_.source_addrs > 0) return opts_.source_addrs;
        return static_cast<int>(1 + n / 15000);
    }

    void run_traffic() {
        const int P = opts_.pubs;
        const int S = opts_.subs;
        source_addrs_ = auto_source_addrs(static_cast<std::size_t>(P + S));
        publishers_.resize(static_cast<std::size_t>(P));
        subscribers_.resize(static_cast<std::size_t>(S));
        const std::string fanout_topic = isa95_topic(opts_.prefix, 0);
        for (int i = 0; i < S; ++i) {
            subscriber& s = subscribers_[static_cast<std::size_t>(i)];
            s.conn = add_connection(role::subscriber, static_cast<std::uint32_t>(i));
            s.from.resize(static_cast<std::size_t>(P));
            switch (opts_.kind) {
                case scenario::fanin: s.filter = opts_.prefix + "/#"; break;
                case scenario::fanout: s.filter = fanout_topic; break;
                default: s.filter = isa95_topic(opts_.prefix, i); break;
            }
            if (opts_.sub_rate > 0) {
                conns_[s.conn].slow = true;
                slow_subs_.push_back(s.conn);
            }
        }
        for (int i = 0; i < P; ++i) {
            publisher& pb = publishers_[static_cast<std::size_t>(i)];
            pb.id = static_cast<std::uint32_t>(i);
            pb.conn = add_connection(role::publisher, static_cast<std::uint32_t>(i));
            const std::string topic = opts_.kind == scenario::fanout ? fanout_topic : isa95_topic(opts_.prefix, i);
            pb.tpl = make_publish(opts_.level, topic, static_cast<std::size_t>(opts_.payload),
                                  static_cast<std::uint8_t>(opts_.qos), opts_.retain);
            // fanin: every subscriber is on PREFIX/#; fanout: all on the one topic; pairs: one each.
            pb.receivers = opts_.kind == scenario::pairs ? 1u : static_cast<std::uint32_t>(S);
            if (opts_.qos > 0) pb.pid_used.assign(1024, 0);
            pb.rate = opts_.rate / P;
            pb.phase = static_cast<double>(i) / P;  // staggered: publisher i is i/P of a period late
        }
        {
            const publish_template& t = publishers_[0].tpl;
            const int own_pid = opts_.qos > 0 ? 2 : 0;
            const int sub_pid = std::min(opts_.qos, opts_.sub_qos) > 0 ? 2 : 0;
            delivered_packet_size_ = static_cast<double>(t.packet.size() - own_pid + sub_pid);
        }
        tolerate_failures_ = false;
        // Subscribers first, so nothing published is missed.
        establish(0, static_cast<std::uint32_t>(S));
        establish(static_cast<std::uint32_t>(S), static_cast<std::uint32_t>(S + P));
        if (opts_.verbose) std::fprintf(stderr, "strata-bench: %d publishers, %d subscribers ready\n", P, S);

        if (opts_.rate > 0 || opts_.sub_rate > 0) start_timer();
        pub_start_ns_ = mono_ns();
        last_slow_ns_ = pub_start_ns_;
        res_.publish_start_s = static_cast<double>(pub_start_ns_ - t0_) / 1e9;
        window_start_ns_ = pub_start_ns_ + sec_ns(opts_.warmup);
        window_end_ns_ = pub_start_ns_ + sec_ns(opts_.duration);
        bool window_open = false;
        double tool_cpu0 = 0, broker_cpu0 = -1;
        machine_jiffies mj0;

        // Publishing phase.
        for (;;) {
            const std::uint64_t t = mono_ns();
            if (!window_open && t >= window_start_ns_) {
                window_open = true;
                tool_cpu0 = self_cpu_seconds();
                if (opts_.broker_pid > 0) broker_cpu0 = process_cpu_seconds(opts_.broker_pid);
                mj0 = read_machine_jiffies();
            }
            if (t >= window_end_ns_) break;
            if (opts_.verbose && t >= next_progress_ns_) {
                if (next_progress_ns_)
                    std::fprintf(stderr, "strata-bench: t=%.1f s published %llu received %llu (%.0f deliveries/s)\n",
                                 static_cast<double>(t - pub_start_ns_) / 1e9,
                                 static_cast<unsigned long long>(res_.published),
                                 static_cast<unsigned long long>(res_.received),
                                 static_cast<double>(res_.received - progress_received_) * 1e9 /
                                     static_cast<double>(t - progress_at_ns_));
                progress_received_ = res_.received;
                progress_at_ns_ = t;
                next_progress_ns_ = t + 1'000'000'000ull;
            }
            const bool more = pump(t);
            flush_dirty();
            const std::uint64_t next_deadline = window_open ? window_end_ns_ : window_start_ns_;
            poll(more ? 0 : timeout_until(next_deadline, 20));
            flush_dirty();
        }
        // Close the measured window.
        const std::uint64_t t_end = mono_ns();
        res_.publish_end_s = static_cast<double>(t_end - t0_) / 1e9;
        res_.window_s = static_cast<double>(t_end - window_start_ns_) / 1e9;
        res_.tool_cpu_s = self_cpu_seconds() - tool_cpu0;
        if (opts_.broker_pid > 0) {
            const double c = process_cpu_seconds(opts_.broker_pid);
            if (c >= 0 && broker_cpu0 >= 0) res_.broker_cpu_s = c - broker_cpu0;
            res_.broker_rss_kib = process_rss_kib(opts_.broker_pid);
        }
        const machine_jiffies mj1 = read_machine_jiffies();
        if (mj1.total > mj0.total)
            res_.machine_busy = static_cast<double>(mj1.busy - mj0.busy) / static_cast<double>(mj1.total - mj0.total);

        // Drain: wait until every QoS 1/2 exchange has ended and every
        // expected message has arrived.
        const std::uint64_t drain_deadline = t_end + sec_ns(opts_.drain_timeout);
        for (;;) {
            const bool settled = std::all_of(publishers_.begin(), publishers_.end(),
                                             [](const publisher& pb) { return pb.open.empty(); });
            if (settled) {
                tally();
                if (res_.lost == 0) break;
            }
            if (mono_ns() >= drain_deadline) break;
            poll(timeout_until(drain_deadline, 20));
            flush_dirty();
        }
        res_.drain_s = static_cast<double>(mono_ns() - t_end) / 1e9;
        tally();
    }

    // Counts what the subscribers received against what they had to: every
    // message of each publisher they subscribe to, except (QoS 1/2) those
    // the broker refused or had not acknowledged when the drain ended.
    void tally() {
        res_.expected = res_.unique = res_.unacknowledged_received = res_.unsettled = 0;
        std::vector<std::uint32_t> excused;  // sequence numbers that need not arrive
        for (std::uint32_t p = 0; p < publishers_.size(); ++p) {
            const publisher& pb = publishers_[p];
            excused = pb.refused;
            for (const exchange& e : pb.open) excused.push_back(e.seq);
            std::inplace_merge(excused.begin(), excused.begin() + static_cast<std::ptrdiff_t>(pb.refused.size()),
                               excused.end());
            res_.unsettled += pb.open.size();
            res_.expected += (pb.published - excused.size()) * pb.receivers;
            for (std::uint32_t i = 0; i < subscribers_.size(); ++i) {
                if (!receives(i, p)) continue;
                const stream& st = subscribers_[i].from[p];
                std::uint64_t got_excused = 0;
                for (const std::uint32_t seq : excused) {
                    if (seq >= st.next) break;
                    if (gap_of(st.gaps, seq) == st.gaps.end()) ++got_excused;
                }
                const std::uint64_t got = st.next - st.missing;
                res_.unique += got - got_excused;
                res_.unacknowledged_received += got_excused;
            }
        }
        res_.lost = res_.expected > res_.unique ? res_.expected - res_.unique : 0;
    }

    void run_conns() {
        const int C = opts_.conns;
        source_addrs_ = auto_source_addrs(static_cast<std::size_t>(C));
        conns_.reserve(static_cast<std::size_t>(C));
        for (int i = 0; i < C; ++i) add_connection(role::idle, static_cast<std::uint32_t>(i));
        tolerate_failures_ = true;
        const std::uint64_t t = mono_ns();
        res_.publish_start_s = static_cast<double>(t - t0_) / 1e9;
        establish(0, static_cast<std::uint32_t>(C));
        res_.connect_s = static_cast<double>(mono_ns() - t) / 1e9;
        res_.connected = static_cast<int>(ready_);
        if (opts_.verbose)
            std::fprintf(stderr, "strata-bench: %d of %d connected in %.2f s\n", res_.connected, C, res_.connect_s);
        // Hold them (at least one second so the broker settles), then read RSS.
        const std::uint64_t hold_end = mono_ns() + sec_ns(std::max(1.0, opts_.duration));
        while (mono_ns() < hold_end) {
            poll(timeout_until(hold_end, 50));
            flush_dirty();
        }
        res_.publish_end_s = static_cast<double>(mono_ns() - t0_) / 1e9;
        if (opts_.broker_pid > 0) res_.broker_rss_kib = process_rss_kib(opts_.broker_pid);
        res_.connected -= res_.closed_by_broker;
    }

    void run_retained() {
        const int R = opts_.retained;
        const int P = std::max(1, opts_.pubs);
        source_addrs_ = 1;
        retained_seen_.assign(static_cast<std::size_t>(R + 63) / 64, 0);
        publishers_.resize(static_cast<std::size_t>(P));
        for (int i = 0; i < P; ++i) {
            publisher& pb = publishers_[static_cast<std::size_t>(i)];
            pb.id = static_cast<std::uint32_t>(i);
            pb.conn = add_connection(role::publisher, static_cast<std::uint32_t>(i));
            if (opts_.qos > 0) pb.pid_used.assign(1024, 0);
        }
        tolerate_failures_ = false;
        establish(0, static_cast<std::uint32_t>(P));

        // Store: publisher i sends topics i, i+P, i+2P, ...; each PUBLISH built
        // on the spot (topics differ), QoS 1 limited by --inflight.
        const std::uint64_t t_pub = mono_ns();
        res_.publish_start_s = static_cast<double>(t_pub - t0_) / 1e9;
        std::vector<int> next_k(static_cast<std::size_t>(P));
        for (int i = 0; i < P; ++i) next_k[static_cast<std::size_t>(i)] = i;
        const std::uint64_t deadline = t_pub + sec_ns(opts_.setup_timeout);
        std::uint64_t sent = 0;
        for (;;) {
            bool more = false;
            for (int i = 0; i < P; ++i) {
                publisher& pb = publishers_[static_cast<std::size_t>(i)];
                connection& c = conns_[pb.conn];
                if (c.fd < 0 || c.out_off < c.out.size()) continue;
                int n = 0;
                int& k = next_k[static_cast<std::size_t>(i)];
                while (k < R && n < opts_.batch && (opts_.qos == 0 || pb.open.size() < pb.inflight_limit)) {
                    publish_template t = make_publish(opts_.level, retained_topic(opts_.prefix, k),
                                                      static_cast<std::size_t>(opts_.payload),
                                                      static_cast<std::uint8_t>(opts_.qos), true);
                    if (t.packet_id_offset) {
                        const std::uint16_t pid = alloc_pid(pb, static_cast<std::uint32_t>(k));
                        t.packet[t.packet_id_offset] = static_cast<std::uint8_t>(pid >> 8);
                        t.packet[t.packet_id_offset + 1] = static_cast<std::uint8_t>(pid & 0xff);
                    }
                    put_payload_header(t.packet.data() + t.payload_offset,
                                       payload_header{retained_publisher_id, static_cast<std::uint32_t>(k), mono_ns()});
                    c.out.insert(c.out.end(), t.packet.begin(), t.packet.end());
                    k += P;
                    ++n;
                    ++sent;
                }
                if (n) {
                    mark_dirty(pb.conn);
                    if (n == opts_.batch) more = true;
                }
            }
            flush_dirty();
            bool all_sent = true, all_acked = true;
            for (int i = 0; i < P; ++i) {
                if (next_k[static_cast<std::size_t>(i)] < R) all_sent = false;
                if (!publishers_[static_cast<std::size_t>(i)].open.empty()) all_acked = false;
            }
            if (all_sent && all_acked) break;
            if (mono_ns() > deadline) throw run_error("retained: timed out storing (" + std::to_string(sent) + " sent)");
            poll(more ? 0 : timeout_until(deadline, 20));
            flush_dirty();
        }
        res_.published = sent;
        if (opts_.qos == 0) {
            // Barrier: a PINGRESP after the last PUBLISH means the broker read them all.
            const std::uint64_t before = pingresps_;
            for (const publisher& pb : publishers_) {
                append_pingreq(conns_[pb.conn].out);
                mark_dirty(pb.conn);
            }
            flush_dirty();
            while (pingresps_ < before + static_cast<std::uint64_t>(P) && mono_ns() < deadline) {
                poll(timeout_until(deadline, 20));
                flush_dirty();
            }
        }
        res_.retained_publish_s = static_cast<double>(mono_ns() - t_pub) / 1e9;
        // Let the broker settle (allocator, persistence queue), then its RSS.
        const std::uint64_t settle_end = mono_ns() + 1'000'000'000ull;
        while (mono_ns() < settle_end) {
            poll(timeout_until(settle_end, 50));
            flush_dirty();
        }
        if (opts_.broker_pid > 0) res_.rss_after_store_kib = process_rss_kib(opts_.broker_pid);

        // Fetch: a fresh subscriber on '#', timed from its SUBSCRIBE. A refused
        // message need not be stored.
        res_.expected = opts_.qos > 0 ? res_.acknowledged : static_cast<std::uint64_t>(R);
        subscribers_.resize(1);
        subscriber& s = subscribers_[0];
        s.filter = "#";
        s.conn = add_connection(role::subscriber, 0);
        const auto sid = s.conn;
        sub_started_ns_ = 0;
        establish(sid, sid + 1);
        const std::uint64_t t_sub = sub_started_ns_ ? sub_started_ns_ : mono_ns();
        const std::uint64_t fetch_deadline = t_sub + sec_ns(std::max(1.0, opts_.drain_timeout));
        // Stops early when nothing new arrives for --stall-timeout (a broker
        // that dropped part of the store will not send it later).
        const std::uint64_t stall = sec_ns(opts_.stall_timeout);
        std::uint64_t last_got = 0, last_change = mono_ns();
        while (res_.retained_got < static_cast<std::uint64_t>(R) && mono_ns() < fetch_deadline) {
            poll(timeout_until(fetch_deadline, 20));
            flush_dirty();
            const std::uint64_t t = mono_ns();
            if (res_.retained_got != last_got) {
                last_got = res_.retained_got;
                last_change = t;
            } else if (t - last_change > stall) {
                res_.stalled = true;
                break;
            }
        }
        const std::uint64_t t_last = res_.retained_got ? retained_last_ns_ : mono_ns();
        res_.retained_receive_s = static_cast<double>(t_last - t_sub) / 1e9;
        res_.window_deliveries = res_.retained_got;
        res_.window_s = res_.retained_receive_s;
        res_.publish_end_s = static_cast<double>(mono_ns() - t0_) / 1e9;
        if (opts_.broker_pid > 0) res_.broker_rss_kib = process_rss_kib(opts_.broker_pid);
    }

    void shutdown_all() {
        for (std::uint32_t id = 0; id < conns_.size(); ++id) {
            connection& c = conns_[id];
            if (c.fd < 0) continue;
            if (c.state == conn_state::ready && c.out_off >= c.out.size()) {
                std::uint8_t d[2] = {0xe0, 0x00};
                [[maybe_unused]] const ssize_t n = ::send(c.fd, d, 2, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            ::close(c.fd);
            c.fd = -1;
        }
    }

    const options& opts_;
    result res_;
    int ep_ = -1;
    int timer_fd_ = -1;
    sockaddr_in dst_{};
    sockaddr_in sub_dst_{};  // subscribers' broker (--sub-port)
    int source_addrs_ = 1;
    std::vector<connection> conns_;
    std::vector<publisher> publishers_;
    std::vector<subscriber> subscribers_;
    std::vector<std::uint32_t> dirty_;
    std::vector<std::uint32_t> slow_subs_;
    std::vector<std::uint8_t> rbuf_;
    std::vector<std::uint64_t> retained_seen_;
    std::uint64_t t0_ = 0;
    std::uint64_t now_ = 0;
    std::uint64_t pub_start_ns_ = 0;
    std::uint64_t window_start_ns_ = ~0ull;
    std::uint64_t window_end_ns_ = 0;
    std::uint64_t next_rss_ns_ = 0;
    std::uint64_t next_ping_ns_ = 0;
    std::uint64_t last_slow_ns_ = 0;
    std::uint64_t sub_started_ns_ = 0;
    std::uint64_t retained_last_ns_ = 0;
    std::uint64_t pingresps_ = 0;
    std::uint64_t next_progress_ns_ = 0;
    std::uint64_t progress_at_ns_ = 0;
    std::uint64_t progress_received_ = 0;
    double broker_cpu_start_ = -1;
    double delivered_packet_size_ = 32;
    int handshaking_ = 0;
    std::uint32_t ready_ = 0;
    bool ticked_ = false;
    bool tolerate_failures_ = false;
    std::string first_error_;
};

// ---- JSON --------------------------------------------------------------------

void json_escape(std::string& out, const std::string& s) {
    out += '"';
    for (const char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", u);
            out += b;
        } else {
            out += ch;
        }
    }
    out += '"';
}

class json_line {
public:
    json_line() { s_ = "{"; }
    json_line& str(const char* k, const std::string& v) {
        key(k);
        json_escape(s_, v);
        return *this;
    }
    json_line& num(const char* k, double v, int prec = 3) {
        key(k);
        if (!std::isfinite(v)) {
            s_ += "null";
            return *this;
        }
        char b[64];
        std::snprintf(b, sizeof b, "%.*f", prec, v);
        s_ += b;
        return *this;
    }
    json_line& integer(const char* k, long long v) {
        key(k);
        s_ += std::to_string(v);
        return *this;
    }
    json_line& boolean(const char* k, bool v) {
        key(k);
        s_ += v ? "true" : "false";
        return *this;
    }
    json_line& raw(const char* k, const std::string& v) {
        key(k);
        s_ += v;
        return *this;
    }
    std::string done() {
        s_ += "}";
        return s_;
    }

private:
    void key(const char* k) {
        if (s_.size() > 1) s_ += ",";
        json_escape(s_, k);
        s_ += ":";
    }
    std::string s_;
};

std::string method_text(const options& o) {
    if (o.kind == scenario::conns) return "idle connections held; rss_per_conn = (RSS after - RSS before) / connected";
    if (o.kind == scenario::retained)
        return "retained stored with QoS " + std::to_string(o.qos) + " (all acknowledged), then one '#' subscriber (QoS " +
               std::to_string(o.sub_qos) + ") timed from SUBSCRIBE to the last retained message";
    std::string m;
    if (o.rate > 0) {
        char b[64];
        std::snprintf(b, sizeof b, "fixed rate %.0f msg/s total", o.rate);
        m = b;
    } else {
        m = "as fast as the windows allow";
    }
    if (o.window > 0)
        m += "; pacing window " + std::to_string(o.window) + " msgs/publisher (published - delivered/receivers)";
    else
        m += "; no pacing window";
    if (o.qos > 0)
        m += "; QoS " + std::to_string(o.qos) + " inflight " + std::to_string(o.inflight) + "/publisher (until " +
             (o.qos == 1 ? "PUBACK" : "PUBCOMP") + ")";
    m += o.qos > 0 ? "; expected = acknowledged x subscribers" : "; expected = published x subscribers";
    if (o.sub_rate > 0) {
        char b[64];
        std::snprintf(b, sizeof b, "; slow subscribers %.0f msg/s", o.sub_rate);
        m += b;
    }
    return m;
}

}  // namespace

result run(const options& opts) {
    raise_nofile_limit();
    engine e(opts);
    return e.run();
}

std::string to_json(const options& o, const result& r) {
    json_line j;
    j.str("tool", "strata-bench").str("scenario", o.scenario_name).str("label", o.label);
    j.str("mqtt", o.level == mqtt_5 ? "5.0" : "3.1.1").integer("qos", o.qos).integer("sub_qos", o.sub_qos);
    const bool traffic = o.kind == scenario::fanin || o.kind == scenario::fanout || o.kind == scenario::pairs;
    if (traffic) {
        j.integer("pubs", o.pubs).integer("subs", o.subs).integer("payload", o.payload);
        j.num("rate_target", o.rate, 0).integer("window", o.window).integer("inflight", o.inflight);
        j.num("duration_s", o.duration, 2).num("warmup_s", o.warmup, 2);
    }
    if (o.kind == scenario::conns) j.integer("conns", o.conns);
    if (o.kind == scenario::retained) j.integer("retained", o.retained).integer("payload", o.payload);
    j.str("method", method_text(o));
    j.boolean("ok", r.ok);
    if (!r.ok) j.str("error", r.error);
    if (traffic) {
        j.integer("published", static_cast<long long>(r.published))
            .integer("acknowledged", static_cast<long long>(r.acknowledged))
            .integer("refused", static_cast<long long>(r.refused))
            .integer("unsettled", static_cast<long long>(r.unsettled))
            .integer("expected", static_cast<long long>(r.expected))
            .integer("received", static_cast<long long>(r.received))
            .integer("unique", static_cast<long long>(r.unique))
            .integer("unacknowledged_received", static_cast<long long>(r.unacknowledged_received))
            .integer("lost", static_cast<long long>(r.lost))
            .integer("duplicates", static_cast<long long>(r.duplicates))
            .integer("gap_events", static_cast<long long>(r.gap_events))
            .integer("out_of_order", static_cast<long long>(r.out_of_order))
            .integer("foreign", static_cast<long long>(r.foreign));
        j.num("window_s", r.window_s).num("drain_s", r.drain_s);
        j.integer("window_deliveries", static_cast<long long>(r.window_deliveries));
        j.num("msgs_per_s", r.window_s > 0 ? static_cast<double>(r.window_deliveries) / r.window_s : 0, 1);
        char lat[256];
        std::snprintf(lat, sizeof lat,
                      "{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"count\":%llu}",
                      r.latency.quantile(0.50) / 1e3, r.latency.quantile(0.90) / 1e3, r.latency.quantile(0.99) / 1e3,
                      r.latency.quantile(0.999) / 1e3, static_cast<double>(r.latency.max()) / 1e3, r.latency.mean() / 1e3,
                      static_cast<unsigned long long>(r.latency.count()));
        j.raw("latency_us", lat);
        if (o.rate > 0) j.integer("max_send_lag_us", static_cast<long long>(r.max_send_lag_us));
        if (r.stray_acks) j.integer("stray_acks", static_cast<long long>(r.stray_acks));
        if (r.server_receive_maximum) j.integer("server_receive_maximum", r.server_receive_maximum);
        j.num("tool_cpu_s", r.tool_cpu_s).num("machine_busy", r.machine_busy);
        if (o.broker_pid > 0) {
            j.num("broker_cpu_s", r.broker_cpu_s);
            j.num("broker_cpu_us_per_msg",
                  r.window_deliveries && r.broker_cpu_s >= 0 ? r.broker_cpu_s * 1e6 / static_cast<double>(r.window_deliveries) : -1,
                  4);
        }
    }
    if (o.kind == scenario::conns) {
        j.integer("connected", r.connected).integer("connect_errors", r.connect_errors);
        j.integer("closed_by_broker", r.closed_by_broker).num("connect_s", r.connect_s);
        if (o.broker_pid > 0 && r.broker_rss_kib >= 0 && r.broker_rss_start_kib >= 0 && r.connected > 0)
            j.num("rss_per_conn_bytes",
                  static_cast<double>(r.broker_rss_kib - r.broker_rss_start_kib) * 1024.0 / r.connected, 1);
    }
    if (o.kind == scenario::retained) {
        j.integer("published", static_cast<long long>(r.published));
        if (o.qos > 0) {
            j.integer("acknowledged", static_cast<long long>(r.acknowledged));
            j.integer("refused", static_cast<long long>(r.refused));
        }
        j.integer("retained_got", static_cast<long long>(r.retained_got));
        j.integer("lost", static_cast<long long>(r.expected > r.retained_got ? r.expected - r.retained_got : 0));
        j.integer("duplicates", static_cast<long long>(r.duplicates)).integer("foreign", static_cast<long long>(r.foreign));
        j.boolean("stalled", r.stalled);
        j.num("retained_publish_s", r.retained_publish_s).num("retained_receive_s", r.retained_receive_s, 4);
        j.num("msgs_per_s", r.retained_receive_s > 0 ? static_cast<double>(r.retained_got) / r.retained_receive_s : 0, 1);
        if (o.broker_pid > 0) j.integer("rss_after_store_kib", r.rss_after_store_kib);
    }
    if (o.broker_pid > 0) {
        j.num("broker_cpu_total_s", r.broker_cpu_total_s);
        j.integer("broker_rss_start_kib", r.broker_rss_start_kib)
            .integer("broker_rss_kib", r.broker_rss_kib)
            .integer("broker_rss_max_kib", r.broker_rss_max_kib);
    }
    if (!r.rss_curve.empty()) {
        std::string c = "[";
        for (std::size_t i = 0; i < r.rss_curve.size(); ++i) {
            char b[48];
            std::snprintf(b, sizeof b, "%s[%.2f,%ld]", i ? "," : "", r.rss_curve[i].first, r.rss_curve[i].second);
            c += b;
        }
        c += "]";
        j.num("publish_start_s", r.publish_start_s, 2).num("publish_end_s", r.publish_end_s, 2);
        j.raw("rss_curve", c);
    }
    return j.done();
}

}  // namespace strata::bench
