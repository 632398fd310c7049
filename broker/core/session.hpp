// A client's session: what survives between network connections of one
// client identifier (subscriptions, messages waiting to be sent, outbound
// QoS 1/2 in flight, inbound QoS 2 awaiting PUBREL, the pending will).
//
// Thread-safety: the router delivers from any network thread, the attached
// connection works on its own thread, timers fire on the thread that armed
// them. All mutable state is guarded by `mutex_`; critical sections are
// short and never span a co_await or any I/O. A session is attached to at
// most one connection at a time; `generation()` changes with every attach so
// that a connection that was taken over can tell it no longer owns it.
//
// Retained messages sent on SUBSCRIBE are paced: the session keeps a list
// of pending replays (one per filter, the first one's matching topics as a
// snapshot of the router's slots, 16 bytes a topic) and moves them into its
// queue only while the queue is below half its limits, topping up whenever
// the writer collects, i.e. as fast as the client reads. A slot is read when
// its turn comes: the topic's newest value is sent; a topic cleared or
// expired meanwhile is skipped and counted.
#pragma once

#include "auth/policy.hpp"
#include "broker/codec/packet.hpp"
#include "broker/core/flow_gate.hpp"
#include "broker/core/message.hpp"
#include "broker/core/router_fwd.hpp"
#include "broker/core/session_owner.hpp"
#include "persistence/store.hpp"

#include <boost/container/deque.hpp>
#include <boost/container/flat_set.hpp>
#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace strata::broker::core {

class broker_core;

using subscription_ids = boost::container::small_vector<std::uint32_t, 2>;

// Client ids of the broker's own sessions (a bridge's outbox, an OPC UA
// source's inbox): no client may use them, and their subscriptions come
// from the config, not from grants.
inline constexpr std::string_view own_client_prefix = "$bridge/";

// What the subscription trie stores per subscription.
struct subscription_entry {
    mqtt::subscribe_options options;
    std::uint32_t identifier = 0;  // Subscription Identifier; 0: none
    // Wider than the subscriber's grants: each message is checked with
    // session::may_receive() before delivery.
    bool filtered = false;
};

// One message on its way to this session's client.
struct delivery {
    message_ptr msg;
    std::uint8_t qos = 0;
    bool retain = false;
    // It may have been sent before (read back from the store after a
    // restart, marked as sent there), so it goes out with DUP set. Set on a
    // delivery in flight once its stored copy says so (store_sent_marks).
    bool maybe_sent = false;
    // QoS 1/2: the session's sequence number of this delivery, which is
    // also its key in the store and gives its packet identifier. A bridge's
    // outbox numbers its QoS 0 deliveries too (to find them again).
    std::uint64_t seq = 0;
    subscription_ids sub_ids;
    // When it was queued (bridge outboxes only: the backlog's age).
    steady_clock::time_point queued_at{};
};

// Operations for the store, gathered while one message is routed and
// submitted together (null: nothing is stored).
using store_ops = std::vector<persistence::operation>;

// A packet the writer must put on the wire, produced by session::collect.
struct outgoing {
    enum class kind : std::uint8_t { publish, pubrel };
    kind what = kind::publish;
    std::uint16_t packet_id = 0;
    bool dup = false;
    delivery d;  // for publish
};

// What a full queue does with one more message.
enum class when_full : std::uint8_t {
    drop_new,     // the new message is dropped and counted (client sessions)
    drop_oldest,  // the oldest queued (not in flight) messages make room, counted
    refuse,       // the new message is refused: the publisher is told (QoS 1/2: 0x97)
};

// Per-session queue limits and policy.
struct queue_limits {
    // (Fields ordered by size: every session holds one.)
    std::uint64_t max_bytes = 16u << 20;
    // Bridge outboxes with a store: at most this many messages and bytes
    // of the backlog are kept in memory (0: no bound but the limits). Past
    // them messages are written to the store only, and read back a window
    // at a time as the queue drains (see "Paging" in session.cpp).
    std::uint64_t memory_bytes = 0;
    std::uint32_t memory_messages = 0;
    std::uint32_t max_messages = 1000;
    when_full policy = when_full::drop_new;
    // Retained messages waiting in the queue keep only the newest value per
    // topic (a bridge's backlog of state topics).
    bool latest_only_retained = false;
    // drop_new only (client sessions): while the client is online, a QoS 1/2
    // message that does not fit is queued anyway and holds its publisher's
    // flow gate (flow_gate.hpp) instead of being dropped.
    bool hold_publishers = false;
    // Bridge outboxes: QoS 0 messages are queued while offline and stored
    // like QoS 1 ones (buffer.qos0: durable). Otherwise QoS 0 is kept in
    // memory only, while the link is up and the backlog fits in memory.
    bool qos0_durable = false;
};

// What the slow-consumer check (session::check_slow) did.
enum class slow_action : std::uint8_t { none, disconnected, dropping };

// What deliver() did with a message.
enum class deliver_result : std::uint8_t { queued, dropped, refused };

class session : public std::enable_shared_from_this<session> {
public:
    session(broker_core& core, std::string client_id);
    ~session();

    session(const session&) = delete;
    session& operator=(const session&) = delete;

    [[nodiscard]] const std::string& client_id() const noexcept { return client_id_; }

    // --- Router side (any thread) ---------------------------------------

    // Queues a message for the client (or for later, when offline).
    // Returns dropped when the queue was full (policy drop_new) or it was a
    // QoS 0 message for an offline client, refused when the queue was full
    // under the refuse policy. Drops are counted (dropped()).
    // A persistent session appends the delivery to `ops` (QoS 1/2 only).
    // `gate`: the publisher's flow gate (null: the broker's own messages,
    // which are dropped when they do not fit): with hold_publishers, a QoS
    // 1/2 message for an online client whose queue is full is queued over
    // the limit and the gate held until the queue drains to its resume mark
    // (three quarters of each limit).
    deliver_result deliver(const message_ptr& m, std::uint8_t qos, bool retain,
                           std::span<const std::uint32_t> sub_ids, store_ops* ops = nullptr,
                           flow_gate* gate = nullptr);

    // --- Slow consumers (flow_gate.hpp) -----------------------------------

    // Called periodically for a session that holds publishers: once it has
    // held them for `after` without draining to its resume mark, it is a
    // slow consumer. `disconnect`: its client is disconnected with 0x97
    // (Quota exceeded); otherwise its messages are dropped while it stays
    // full. Either way the publishers are released. Returns what it did.
    slow_action check_slow(steady_clock::time_point now, steady_clock::duration after, bool disconnect);
    // Whether it holds publishers or drops as a slow consumer now.
    [[nodiscard]] bool pressing() const;
    struct pressure_info {
        std::size_t publishers_held = 0;  // publishers it holds now
        bool slow = false;                // dropping, or disconnected, as a slow consumer
        std::uint64_t slow_dropped = 0;   // messages dropped as a slow consumer since the session began
    };
    [[nodiscard]] pressure_info pressure() const;

    // Sends the retained messages matching `filter` (a subscription's,
    // with its options `e`), paced as the top of this file says. A filter
    // whose replay is still pending starts over. `skip_dollar`: leave out
    // '$' topics (a bridge forwards no broker state). Any thread.
    void replay_retained(const std::string& filter, const subscription_entry& e, bool skip_dollar = false);
    // Retained messages still to be sent by pending replays (of the replay
    // under way; filters waiting behind it are not counted until their turn).
    [[nodiscard]] std::size_t replay_pending() const;

    // --- Persistence ------------------------------------------------------

    // Whether this session's state is kept in the store (session expiry > 0
    // and a store configured). Set by the broker core, which also writes
    // the session record; from then on the session writes its deliveries'
    // progress itself (acknowledged: erased, PUBREC: marked).
    // `store_existing`: when it becomes persistent, write what it already
    // holds (false at recovery, where it came from the store).
    void set_persistent(bool on, bool store_existing = true);
    [[nodiscard]] bool persistent() const;
    // Start-up recovery, before any connection: a stored delivery in seq
    // order (queued, or QoS 2 awaiting PUBCOMP). `maybe_sent`: it may have
    // been sent before the restart (then it goes out with DUP).
    void restore_delivery(message_ptr m, const persistence::stored_delivery& d, bool maybe_sent);
    // Start-up recovery: deliveries after the restored ones that stay in
    // the store (a bridge backlog past its memory window), read back as
    // the queue drains.
    void restore_paged(const persistence::delivery_range& r);
    // Sending writes nothing to the store; which stored deliveries may have
    // been sent is written when the client goes away: the ones in flight
    // get their packet identifier in the store. With `restored` (start-up,
    // after the broker stopped while the client was connected) every
    // restored delivery is marked so too, as nobody knows which were sent.
    // A delivery never marked goes out after a restart without DUP.
    void store_sent_marks(bool restored);
    // The ticket of the last store operation this session submitted
    // (subscriptions, inbound QoS 2 ids, delivery progress): an
    // acknowledgement of those waits for it.
    [[nodiscard]] persistence::ticket last_ticket() const;
    // When the client went away (wall-clock ms; 0 while connected).
    void set_disconnected_at(std::int64_t ms);
    // The record the store keeps for this session.
    [[nodiscard]] persistence::stored_session record() const;

    // --- Connection side ------------------------------------------------

    // Attaches `c` (the new owner); returns the new generation. Re-arms
    // nothing: the caller resends in-flight messages through collect().
    std::uint64_t attach(const std::shared_ptr<session_owner>& c, bool resend_inflight);
    // Detaches `c` if it is still the owner. Returns false when the session
    // was taken over by another connection in the meantime.
    bool detach(const session_owner* c);
    [[nodiscard]] std::shared_ptr<session_owner> owner() const;
    [[nodiscard]] bool connected() const;
    [[nodiscard]] std::uint64_t generation() const;

    // Moves what may be sent now into `out`: in-flight messages to resend
    // (first call after attach), then queued messages while the number of
    // unacknowledged QoS 1/2 messages stays below `window`. Expired
    // messages are dropped. Returns nothing unless `c` is the owner.
    // `max_out` bounds how many are moved in one call.
    void collect(const session_owner* c, std::vector<outgoing>& out, std::size_t window,
                 steady_clock::time_point now, std::size_t max_out = SIZE_MAX);

    // Outbound acknowledgements. Return false for an unknown packet id.
    bool on_puback(std::uint16_t id);                  // QoS 1 done
    bool on_pubrec(std::uint16_t id, bool accepted);   // QoS 2 step 1 (accepted: reason < 0x80)
    bool on_pubcomp(std::uint16_t id);                 // QoS 2 done
    // Forgets an in-flight message that was never sent (too large for the
    // client): it counts as delivered.
    void abandon(std::uint16_t id);

    // Inbound QoS 2: remembers the packet id until PUBREL. Returns false
    // when the id was already known (a resent PUBLISH: do not route again).
    bool begin_inbound_qos2(std::uint16_t id);
    bool end_inbound_qos2(std::uint16_t id);
    [[nodiscard]] std::size_t inbound_qos2_count() const;

    // Subscriptions this session holds (key: the filter as subscribed,
    // including a "$share/group/" prefix). Used to clean the router.
    bool remember_subscription(const std::string& filter, const subscription_entry& e);
    // Also cancels the filter's pending retained replay.
    bool forget_subscription(const std::string& filter);
    [[nodiscard]] std::vector<std::string> subscription_filters() const;
    // A copy of every subscription with its options (admin API).
    [[nodiscard]] std::vector<std::pair<std::string, subscription_entry>> subscriptions() const;
    [[nodiscard]] std::size_t subscription_count() const;

    // The identity of the client attached last and its grants (null: no
    // roles configured). may_receive() decides a `filtered` subscription's
    // messages; without grants (none set yet) it refuses.
    void set_identity(std::string identity, std::shared_ptr<const auth::grants> g);
    [[nodiscard]] std::string identity() const;
    [[nodiscard]] bool may_receive(std::string_view topic) const;
    // The same with the routing walk's reading of the topic by `model`.
    [[nodiscard]] bool may_receive(std::string_view topic, const ns::model* model, const ns::verdict* reading) const;

    // Session Expiry Interval in seconds (0xFFFFFFFF: never).
    void set_expiry_interval(std::uint32_t s);
    [[nodiscard]] std::uint32_t expiry_interval() const;

    // Will message of the attached connection, kept here so that a delayed
    // will outlives the connection.
    void set_will(std::optional<message_ptr> will, std::uint32_t delay_s);
    // Removes and returns the will (if any).
    std::optional<message_ptr> take_will();
    [[nodiscard]] std::uint32_t will_delay() const;

    void set_queue_limits(queue_limits l);
    [[nodiscard]] std::size_t queued_messages() const;
    [[nodiscard]] std::uint64_t queued_bytes() const;
    // A bridge outbox's backlog: messages queued or in flight, their bytes,
    // when the oldest was queued, and what the full-queue policy dropped or
    // refused since start.
    struct backlog_info {
        std::size_t messages = 0;
        std::uint64_t bytes = 0;
        std::optional<steady_clock::time_point> oldest;
        std::uint64_t dropped = 0, refused = 0, superseded = 0;
        std::uint64_t in_store_only = 0;  // of `messages`: past the memory window, in the store only
    };
    [[nodiscard]] backlog_info backlog() const;
    [[nodiscard]] std::size_t inflight_messages() const;
    // Messages for this client that were not delivered since the session
    // began: its queue was full, QoS 0 while it was offline, expired while
    // queued, larger than the client accepts.
    [[nodiscard]] std::uint64_t dropped() const;
    // A message the connection could not send (too large for the client).
    void count_dropped();

    // Called once when the session ends (clean start, expiry): forgets
    // everything queued. The router cleanup is the broker_core's job.
    void clear();

    // A timer handle for expiry / will delay (the core arms it; attach()
    // and clear() cancel it through the generation check).
    struct timer_slot;
    std::shared_ptr<timer_slot> timer;

private:
    struct inflight {
        std::uint16_t packet_id = 0;
        bool awaiting_comp = false;  // QoS 2 after PUBREC: PUBREL sent, awaiting PUBCOMP
        delivery d;
    };

    // The packet identifier of a delivery is derived from its sequence
    // number, so that one restored from the store after a crash goes out
    // with the identifier it may already have been sent with (a QoS 2
    // receiver recognises it) without writing anything per send. False when
    // that identifier is still in flight (65,535 deliveries later): the
    // queue waits.
    [[nodiscard]] bool packet_id_free_locked(std::uint64_t seq) const;
    void notify_locked();
    // Holds `gate` (once); the first hold starts the full period and puts
    // the session on the core's slow-consumer watch.
    void hold_locked(flow_gate& gate);
    // Releases every gate held; `drained`: the queue reached its resume
    // mark, which also ends dropping as a slow consumer.
    void release_gates_locked(bool drained);
    [[nodiscard]] bool at_resume_mark_locked() const noexcept;
    // Completed or dropped: removes it from the store.
    void forget_stored_locked(std::uint64_t seq);
    void submit_locked(persistence::operation op);
    // The put of a delivery's record, sharing its message (no copy).
    // packet_id != 0: stored as sent with that identifier. `fresh`: a new
    // seq, never submitted before (persistence::put_delivery::fresh).
    [[nodiscard]] persistence::put_delivery stored(const delivery& d, std::uint16_t packet_id = 0,
                                                   bool fresh = false) const;
    // Makes room for `w` more bytes under the drop_oldest policy; false
    // when even an empty queue would not hold it.
    bool drop_oldest_locked(std::size_t w);
    // Whether a delivery of this QoS has a stored record (persistent sessions).
    [[nodiscard]] bool stored_qos_locked(std::uint8_t qos) const noexcept {
        return qos > 0 || (outbox_ && limits_.qos0_durable);
    }
    // Paging (bridge outboxes): whether a new message goes to the store
    // only; the backlog's bytes, paged ones included.
    [[nodiscard]] bool paging_locked() const noexcept;
    [[nodiscard]] std::uint64_t backlog_bytes_locked() const noexcept;
    // Writes a new message to the store only (the backlog's tail).
    void page_out_locked(const message_ptr& m, std::uint8_t qos, bool retain, std::span<const std::uint32_t> sub_ids);
    // Asks the store for the next window of the tail when the queue is low.
    void page_in_locked();
    // The store's answer (on its reader thread).
    void paged_in(std::vector<persistence::stored_delivery>&& records, bool ok);
    // latest_only_retained: a queued retained message of the same topic is
    // superseded by `m` (removed from the queue and the store).
    // `compact`: drop the emptied entries once they are most of the queue.
    void supersede_locked(const message_ptr& m, bool compact = true);
    void compact_locked();
    void pop_front_locked();
    // Appends a delivery to the queue (limits already checked).
    void enqueue_locked(const message_ptr& m, std::uint8_t qos, bool retain, std::span<const std::uint32_t> sub_ids,
                        store_ops* ops);
    // Moves pending retained replays into the queue while it has room; may
    // release `lock` while it matches a replay's filter.
    void feed_replay_locked(std::unique_lock<std::mutex>& lock, steady_clock::time_point now);

    broker_core& core_;
    const std::string client_id_;

    mutable std::mutex mutex_;
    std::shared_ptr<session_owner> conn_;
    std::uint64_t generation_ = 0;

    // boost's deque allocates nothing until used (std::deque allocates
    // ~600 bytes up front), which matters for idle sessions.
    boost::container::deque<delivery> queue_;
    std::uint64_t queued_bytes_ = 0;
    queue_limits limits_;
    // A bridge outbox's extra state (null for client sessions, which keep
    // the drop_new policy and no per-topic index).
    struct outbox_state {
        // latest_only_retained: the seq of the queued retained message per topic.
        std::unordered_map<std::string, std::uint64_t> latest;
        std::uint64_t dropped = 0, refused = 0, superseded = 0;
        std::size_t tombstones = 0;  // superseded entries still in queue_
        // Paging: the backlog's tail, seqs [paged_from, paged_last], is in
        // the store only: `paged` messages of about `paged_bytes`.
        std::uint64_t paged = 0, paged_bytes = 0;
        std::uint64_t paged_from = 0, paged_last = 0;
        std::optional<steady_clock::time_point> paged_oldest;  // when the tail's first was queued, if known
        bool reading = false;                                  // a read_deliveries() is under way
        std::uint8_t empty_reads = 0;                          // reads in a row that found nothing
    };
    std::unique_ptr<outbox_state> outbox_;

    // Pending retained replays (null: none), in the order subscribed.
    struct replay_job {
        std::uint64_t id = 0;
        std::string filter;
        std::uint8_t qos = 0;
        std::uint32_t identifier = 0;
        bool filtered = false;
        bool skip_dollar = false;
        bool matched = false;              // `slots` holds the filter's topics
        std::vector<retained_ref> slots;
        std::size_t next = 0;              // the next slot to send
    };
    struct replay_state {
        boost::container::deque<replay_job> jobs;
        std::uint64_t last_id = 0;
        bool matching = false;             // a feed is matching the front job's filter (lock released)
    };
    std::unique_ptr<replay_state> replay_;
    // Back-pressure (null until the queue first filled while online).
    struct pressure_state {
        std::vector<std::shared_ptr<flow_gate>> gates;  // held now
        steady_clock::time_point since{};               // full since (the first hold)
        bool slow = false;                              // the slow-consumer action was taken
        bool dropping = false;                          // action drop: over the limit, messages are dropped
        std::uint64_t slow_dropped = 0;
    };
    std::unique_ptr<pressure_state> pressure_;
    std::uint64_t dropped_ = 0;

    boost::container::deque<inflight> inflight_;  // in send order
    std::uint64_t last_seq_ = 0;
    persistence::ticket last_ticket_ = 0;
    std::int64_t disconnected_at_ms_ = 0;
    // A few ids at most (bounded by Receive Maximum): a sorted vector,
    // nothing allocated while empty.
    boost::container::flat_set<std::uint16_t> inbound_qos2_;

    std::unordered_map<std::string, subscription_entry> subscriptions_;

    std::string identity_;
    std::shared_ptr<const auth::grants> grants_;
    message_ptr will_;  // null: none
    // The small fields together: an idle connection's session is part of
    // its per-connection memory.
    std::uint32_t expiry_interval_ = 0;
    std::uint32_t will_delay_ = 0;
    bool resend_pending_ = false;
    bool persistent_ = false;
};

using session_ptr = std::shared_ptr<session>;

}  // namespace strata::broker::core
