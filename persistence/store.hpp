// The durable store (RocksDB): retained messages, persistent sessions with
// their subscriptions, queued and in-flight messages, inbound QoS 2 state,
// bridge buffers later.
//
// Writes are submitted from network threads as small batches of typed
// operations and return at once with a ticket; one writer thread gathers
// everything submitted into one RocksDB WriteBatch per group commit and
// makes it durable as the policy says. `when_durable(ticket, fn)` runs `fn`
// (on the writer thread, or on a thread submitting an erase_delivery that
// settles the ticket: keep it short, e.g. post to an executor) once the
// batch holding that ticket is as durable as the policy promises, which is
// when the broker may acknowledge. A delivery record whose erase comes
// before the writer took its put is never written (submit()). Nothing here
// knows about MQTT sessions or sockets: records are plain structs,
// properties are opaque bytes, a shared message is an interface.
//
// Thread-safety: submit(), when_durable(), durable_ticket(), healthy(),
// stats() and inject_write_failures() are safe from any thread and never do
// I/O (a short mutex at most); open()/load()/check() run before the network
// starts, close() after it stopped (not from a when_durable callback).
//
// Expiry: load() deletes what expired while the broker was down. While
// running, the broker owns expiry (it holds the state in memory and must
// end sessions and publish wills anyway) and submits erase_retained /
// erase_session when it expires something; the store never deletes on its
// own behind the broker's back.
//
// Preconditions: client ids, topics and filters are MQTT UTF-8 strings
// (no U+0000); keys stay unambiguous even if one held a NUL byte.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace strata::persistence {

// A store that cannot be opened or is not ours; what() names the path.
class store_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class durability : std::uint8_t {
    always,  // each group commit is fsynced (WAL sync) before acknowledging
    batch,   // group commit at most every batch_interval (at once when the last one is that
             // old), synced; acknowledged after its batch
    none,    // group commits as with batch, not synced; lossy on crash, acknowledged at once
             // (while the backlog is below options::max_pending_bytes)
};

struct options {
    std::string path = "./data";                       // directory; created if missing
    durability mode = durability::batch;               // default: batch
    std::chrono::milliseconds batch_interval{5};       // batch and none: shortest time between group
                                                       // commits, and longest wait before one
    std::uint64_t max_batch_bytes = 4u << 20;          // a group commit closes early past this size
    std::uint64_t max_pending_bytes = 64u << 20;       // none: acknowledged at submit only while
                                                       // less than this waits to be written
    bool create_if_missing = true;                     // false: a missing or empty directory is a
                                                       // store_error (e.g. for --check-data)
};

// A message as stored (retained, queued, in flight, a will).
struct stored_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    std::string properties;           // MQTT 5 properties, encoded by the broker (opaque here)
    std::int64_t expires_at_ms = 0;   // absolute, Unix epoch milliseconds; 0: never
    bool operator==(const stored_message&) const = default;
};

struct stored_subscription {
    std::string filter;               // as subscribed, including "$share/group/"
    std::uint8_t options = 0;         // MQTT 5 subscription options byte
    std::uint32_t identifier = 0;     // 0: none
    bool operator==(const stored_subscription&) const = default;
};

struct stored_session {
    std::string client_id;
    std::uint32_t expiry_interval = 0;          // seconds; 0xFFFFFFFF never
    std::int64_t disconnected_at_ms = 0;        // 0 while connected (counted from restart then)
    std::optional<stored_message> will;
    std::uint32_t will_delay = 0;               // seconds
    std::string identity;                       // who owns it (authenticated user); empty: anonymous
    bool operator==(const stored_session&) const = default;
};

// One message waiting for (or in flight to) a persistent session's client,
// in per-session order `seq`.
struct stored_delivery {
    std::string client_id;
    std::uint64_t seq = 0;            // per session, increasing
    stored_message msg;
    std::uint8_t qos = 0;             // granted QoS of this delivery
    bool retain = false;              // retain flag as delivered
    std::vector<std::uint32_t> subscription_ids;
    std::uint16_t packet_id = 0;      // 0: queued, not sent yet
    bool awaiting_comp = false;       // QoS 2: PUBREC received, PUBREL sent
    std::int64_t queued_at_ms = 0;    // when it was queued (Unix epoch ms); 0: not recorded
    bool operator==(const stored_delivery&) const = default;
};

// A message the caller keeps in memory, immutable and shared (a delivery to
// many sessions, or one waiting in a queue): a put_delivery can refer to it
// instead of carrying a copy, and the store reads it only when it writes
// the record, on the writer thread, at the same time as the caller's own
// readers. A delivery completed before its write is taken (see
// put_delivery) is never read at all. The store keeps the shared_ptr until
// the record is written or dropped.
class shared_message {
public:
    // Fills `out` with the message as stored. `out`'s strings are reused
    // from record to record: assign, do not allocate anew.
    virtual void read(stored_message& out) const = 0;
    // About the bytes it takes in a record (topic, payload, properties):
    // for the pending-bytes estimates (max_batch_bytes, max_pending_bytes).
    [[nodiscard]] virtual std::size_t stored_size() const noexcept = 0;

protected:
    // Owned through the caller's own type (a shared_ptr to it converted to
    // this interface), never deleted through this one.
    ~shared_message() = default;
};

// Operations a batch may hold. Puts replace.
struct put_retained { stored_message msg; };
struct erase_retained { std::string topic; };
struct put_session { stored_session s; };
struct erase_session { std::string client_id; };  // and everything it owns (subs, deliveries, qos2 ids)
struct put_subscription { std::string client_id; stored_subscription sub; };
struct erase_subscription { std::string client_id; std::string filter; };
struct put_delivery {
    stored_delivery d;
    // Set: the record's message is read from here when it is written, and
    // d.msg is not used (no copy per delivery). Default: d.msg.
    std::shared_ptr<const shared_message> msg = nullptr;
    // A new record: nothing was submitted for this client id and seq
    // before, or an erase_session of the client came after it (a new
    // sequence number). Then an erase_delivery that finds this put still
    // waiting for the writer drops both: neither reaches the disk (see
    // submit()). False (default) is always safe.
    bool fresh = false;
};
// A delivery completed (acknowledged by its receiver) or given up. See
// submit() for what it does to puts of the same record not yet written.
struct erase_delivery { std::string client_id; std::uint64_t seq = 0; };
struct put_inbound_qos2 { std::string client_id; std::uint16_t packet_id = 0; };
struct erase_inbound_qos2 { std::string client_id; std::uint16_t packet_id = 0; };

using operation = std::variant<put_retained, erase_retained, put_session, erase_session,
                               put_subscription, erase_subscription, put_delivery, erase_delivery,
                               put_inbound_qos2, erase_inbound_qos2>;

using ticket = std::uint64_t;  // increasing; 0 is "nothing"

// The deliveries of one client that load() left in the store (past the
// client's delivery_window): read them with store::read_deliveries().
struct delivery_range {
    std::uint64_t first_seq = 0, last_seq = 0;  // the first and the last left
    std::uint64_t count = 0;                    // records left
    std::uint64_t bytes = 0;                    // their encoded size (keys and values)
};

// Everything read back at start-up, handed over in one pass.
struct recovery_visitor {
    std::function<void(stored_message&&)> retained;
    std::function<void(stored_session&&)> session;
    std::function<void(const std::string& client_id, stored_subscription&&)> subscription;
    std::function<void(stored_delivery&&)> delivery;  // per session in seq order
    // Optional: how many of a client's deliveries to hand over (the first
    // ones in seq order); the rest stay in the store, are not decoded and
    // are described to deliveries_left once per client. Default: all.
    std::function<std::uint64_t(const std::string& client_id)> delivery_window;
    std::function<void(const std::string& client_id, const delivery_range&)> deliveries_left;
    std::function<void(const std::string& client_id, std::uint16_t packet_id)> inbound_qos2;
    // Optional: a session deleted at load because its expiry passed while
    // the broker was down (with the will it still held, so the broker can
    // publish a pending will). Its subscriptions/deliveries are not visited.
    std::function<void(stored_session&&)> expired_session;
    // true: `retained` is called on a thread of its own, concurrently with
    // the other members (which stay on the caller's thread, in their
    // order); load() returns when both are done. Start-up on two cores
    // then takes about the longer of the two instead of their sum.
    bool retained_concurrently = false;
};
// Any member may be empty: those records are then read (and checked) but
// not handed over.

struct store_counts {
    std::uint64_t retained = 0, sessions = 0, subscriptions = 0, deliveries = 0, inbound_qos2 = 0;
    bool operator==(const store_counts&) const = default;
};

// What load() did: records handed to the visitor, and records deleted
// (expired retained messages, expired sessions with everything they owned,
// and orphans: subscriptions/deliveries/qos2 ids of a client with no
// session record, e.g. left by a crash between two submits).
struct load_result {
    store_counts loaded;
    store_counts purged;
};

struct store_stats {
    std::uint64_t commits = 0;              // group commits done
    std::uint64_t operations = 0;           // operations written
    std::uint64_t cancelled = 0;            // delivery puts and erases dropped before the writer took
                                            // them (they met while pending): never written
    std::uint64_t bytes = 0;                // bytes written (values + keys)
    std::uint64_t pending_operations = 0;   // submitted, not yet committed (incl. kept after a failure)
    std::uint64_t pending_bytes = 0;        // estimated size of those operations
    std::uint64_t write_errors = 0;         // failed commits (e.g. disk full)
    bool healthy = true;                    // false after a failed commit, until one succeeds
    std::string last_error;                 // RocksDB status of the last failed commit ("" if none)
    std::vector<double> commit_seconds;     // recent commit latencies (last 256, oldest first)
    // Every successful commit's latency since open, as a cumulative
    // histogram: commits_under[i] took at most commit_bucket_bounds[i]
    // seconds (the last bound is +infinity, so it counts them all).
    static constexpr std::array<double, 12> commit_bucket_bounds{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
        std::numeric_limits<double>::infinity()};
    std::array<std::uint64_t, 12> commits_under{};
    double commit_seconds_sum = 0;
};

class store {
public:
    // Opens (or creates) the store at opts.path: takes RocksDB's lock (a
    // second process gets store_error "... is in use by another process"),
    // checks the format version (a newer or unknown format, or a directory
    // that is not a Strata store, is a store_error naming the path; nothing
    // is reset silently) and starts the writer thread.
    static std::unique_ptr<store> open(const options& opts);
    ~store();  // close()

    store(const store&) = delete;
    store& operator=(const store&) = delete;

    // Reads everything back (start-up recovery), one pass per column
    // family. Expired retained messages (0 < expires_at_ms <= now_ms) and
    // expired sessions (disconnected_at_ms != 0, expiry != 0xFFFFFFFF and
    // disconnected_at_ms + expiry * 1000 <= now_ms; a session with
    // disconnected_at_ms 0 counts from now, so it is kept) are deleted with
    // everything they own instead of being visited, and so are orphans.
    // Deliveries come per client in seq order. Throws store_error naming
    // the path and the record on a corrupt record (deletions of expired
    // records found before it may already be written; nothing else is
    // touched). Call once, before submitting; the visitor runs on the
    // calling thread.
    load_result load(const recovery_visitor& v, std::int64_t now_ms);

    // Queues operations for the next group commit; returns their ticket.
    // Never blocks on disk. With durability none the ticket is durable at
    // once, unless max_pending_bytes are waiting to be written (then it is
    // durable when written: back-pressure through the acknowledgements).
    // Operations are applied in submission order, one batch after the
    // other. After close() the operations are dropped and the returned
    // ticket never becomes durable (when_durable gives ok = false).
    //
    // Deliveries: a stored delivery exists so that its message survives
    // until its receiver acknowledges it. So an erase_delivery (the
    // delivery is complete) settles every put of that record submitted
    // before it: their tickets no longer wait for those puts to be
    // written, whether the writer has taken them already or not. Puts the
    // writer has not taken yet are dropped (never written); when the first
    // of them was `fresh`, the erase is dropped too, so a delivery
    // acknowledged before the writer came never reaches RocksDB. An erase
    // itself is never waited for: a lost erase (a crash before it is
    // written) brings the delivery back after a restart, a duplicate that
    // QoS 1 and 2 allow (it goes out with DUP), never a loss. Callbacks of
    // tickets an erase settles run on the thread calling submit(), after
    // the store's own lock is released.
    ticket submit(std::vector<operation> ops);
    ticket submit(operation op);

    // Calls fn(ok) once everything up to `t` is committed as durable as the
    // policy says, or settled by an erase_delivery (see submit()), (ok =
    // true) or its commit failed (ok = false: the caller must not
    // acknowledge, e.g. MQTT 5 0x97 / 0x80). Runs fn at once (on the
    // calling thread) when that already happened. fn runs on the writer
    // thread otherwise, or on a thread in submit(), and must not block nor
    // take locks its submitters may hold (post to an executor) nor throw
    // (exceptions are swallowed). A failed commit's operations are kept
    // and retried with the next commit (backoff 10 ms doubling to 1 s), so
    // a ticket that got ok = false becomes durable later; when_durable for
    // it after the failure waits for the retry. After close(): fn(durable)
    // at once.
    void when_durable(ticket t, std::function<void(bool ok)> fn);
    [[nodiscard]] ticket durable_ticket() const noexcept;

    // Reads back a client's stored deliveries with seq >= from_seq, in seq
    // order, at most max_count of them and about max_bytes (at least one
    // when any is left), on the store's reader thread, once everything
    // submitted before this call is written (a record put just before is
    // found, and one erased just before is not). Then fn(records, ok) runs
    // on the reader thread (keep it short; it may take the caller's locks,
    // the store holds none of its own then), never on the calling thread.
    // ok = false: the read failed (records empty; the reader pauses before
    // the next request) or the store closed while it waited. Asked after
    // close(), fn is never called. For a queue kept mostly on disk (a
    // bridge's backlog), read back a window at a time.
    void read_deliveries(std::string client_id, std::uint64_t from_seq, std::size_t max_count,
                         std::uint64_t max_bytes, std::function<void(std::vector<stored_delivery>&&, bool ok)> fn);

    // False after a failed commit until a commit succeeds (disk full): the
    // broker refuses new QoS 1/2 publishes meanwhile. Lock-free.
    [[nodiscard]] bool healthy() const noexcept;

    // Estimated bytes submitted and not yet committed (kept failed work
    // included). Lock-free: the broker can check it per publish and shed
    // load (e.g. QoS 0 retained updates, which wait for no ticket) when the
    // disk falls behind or refuses writes.
    [[nodiscard]] std::uint64_t pending_bytes() const noexcept;

    // Flushes everything submitted (final commit, WAL synced, memtables
    // flushed so the next start replays no log) and stops the writer
    // thread. Idempotent. If the disk still refuses writes after a few
    // retries, the remaining tickets' callbacks get ok = false.
    void close();

    // Verifies the store (every record decodes, keys well-formed) and counts.
    // Throws store_error naming the path and the first bad record.
    [[nodiscard]] store_counts check();

    [[nodiscard]] store_stats stats() const;
    [[nodiscard]] const options& opts() const noexcept;

    // Test hook: makes the next `n` commit attempts fail as a full disk
    // would (the WAL write gets ENOSPC inside RocksDB, so RocksDB's own
    // error state and our recovery from it are exercised too).
    void inject_write_failures(int n);

private:
    struct impl;
    explicit store(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace strata::persistence
