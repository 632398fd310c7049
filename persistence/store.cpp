// The store on RocksDB.
//
// Layout: one column family per kind of record (meta, retained, sessions,
// subscriptions, deliveries, inbound_qos2; "default" exists but stays
// empty), so each kind gets options for its own write pattern, load() reads
// each kind in one sequential pass, and check() can name the kind of a bad
// record. Key and value encodings: encoding.hpp.
//
// Writes: network threads append typed operations to pending_ under a short
// mutex and get a ticket. One writer thread takes everything pending, turns
// it into ONE WriteBatch (group commit), writes it (synced unless the
// policy is none), then advances the durable ticket and runs the callbacks
// in ticket order. A failed write keeps its operations in front of the next
// batch and retries after a backoff, so nothing submitted is dropped while
// the process lives; all operations are idempotent (puts, deletes, range
// deletes), so a retried batch that had partly reached the WAL is harmless.
//
// Settling deliveries: most stored deliveries live for one round trip to
// their receiver, shorter than a batch interval. Every ticket counts the
// operations it still waits for (open_); a commit settles what it wrote,
// and an erase_delivery settles the puts of its record that came before it
// (unsettled_ finds them by key), so an acknowledged delivery's publisher
// is acknowledged at once instead of after the next commit. A settled put
// the writer has not taken is dropped from pending_ (and with it the erase,
// when the put was the record's first): the queue pattern of put, then
// delete a moment later, costs no disk write at all. The durable ticket is
// the last one before the first that still waits; it moves on in submit()
// when an erase settles the front, and in the writer after a commit.
// Crash safety: a publisher is acknowledged once every delivery of its
// message is written (as durable as the policy says) or acknowledged by its
// receiver, which no longer needs the stored copy; what is dropped is only
// ever a put whose delivery is complete, and the erase of a record that
// never reached the writer (so none can be on disk or on its way there).
//
// Failure recovery: a failed write puts RocksDB into a read-only
// "background error" state. Before the next attempt the writer closes and
// reopens the database (see recover() for why not DB::Resume()), which
// replays the WAL up to its last intact record and starts a fresh one. Our
// listener switches off RocksDB's own automatic recovery so that the writer
// thread alone decides when to retry.
#include "persistence/store.hpp"

#include "persistence/encoding.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <span>
#include <future>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace strata::persistence {
namespace {

namespace enc = encoding;
using clock_type = std::chrono::steady_clock;

// Bump when the layout or an encoding changes incompatibly; a store with a
// higher number is refused (never rewritten by an older build).
constexpr std::uint32_t current_format_version = 1;
constexpr std::string_view format_version_key = "format_version";
// Unix ms of the last clean close(); 8 bytes big-endian. For diagnosis,
// and see close() for why it is written at all.
constexpr std::string_view closed_at_key = "closed_at_ms";

enum cf_index : std::size_t {
    cf_meta,
    cf_retained,
    cf_sessions,
    cf_subscriptions,
    cf_deliveries,
    cf_inbound_qos2,
    cf_count
};
constexpr std::array<const char*, cf_count> cf_names = {"meta",          "retained",   "sessions",
                                                        "subscriptions", "deliveries", "inbound_qos2"};

constexpr std::size_t commit_latency_samples = 256;
constexpr auto first_backoff = std::chrono::milliseconds(10);
constexpr auto max_backoff = std::chrono::milliseconds(1000);
// close() gives a refusing disk this many more attempts before it gives up.
constexpr int close_attempts = 4;
// load() writes its deletions in chunks of this many operations.
constexpr std::size_t purge_chunk = 16384;

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// ---- fault injection -------------------------------------------------------
// A FileSystem wrapper that can make WAL appends and syncs fail with ENOSPC,
// as a full disk does. It wraps the real file system always (one virtual
// call per file operation); only inject_write_failures() arms it.

class fault_wal_file final : public rocksdb::FSWritableFileOwnerWrapper {
public:
    fault_wal_file(std::unique_ptr<rocksdb::FSWritableFile> f, const std::atomic<bool>& fail)
        : FSWritableFileOwnerWrapper(std::move(f)), fail_(fail) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                                       const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       const rocksdb::DataVerificationInfo& info,
                                       rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
        if (fail_.load()) return injected();
        return FSWritableFileOwnerWrapper::Fsync(o, dbg);
    }

private:
    static rocksdb::IOStatus injected() {
        return rocksdb::IOStatus::NoSpace("injected write failure", "No space left on device");
    }
    const std::atomic<bool>& fail_;
};

class fault_fs final : public rocksdb::FileSystemWrapper {
public:
    explicit fault_fs(const std::shared_ptr<rocksdb::FileSystem>& base) : FileSystemWrapper(base) {}

    const char* Name() const override { return "StrataFaultInjectionFS"; }

    rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
        auto s = FileSystemWrapper::NewWritableFile(f, o, r, dbg);
        wrap(f, s, r);
        return s;
    }
    rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                         std::unique_ptr<rocksdb::FSWritableFile>* r,
                                         rocksdb::IODebugContext* dbg) override {
        auto s = FileSystemWrapper::ReopenWritableFile(f, o, r, dbg);
        wrap(f, s, r);
        return s;
    }
    rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                        const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSWritableFile>* r,
                                        rocksdb::IODebugContext* dbg) override {
        auto s = FileSystemWrapper::ReuseWritableFile(f, old, o, r, dbg);
        wrap(f, s, r);
        return s;
    }

    std::atomic<bool> fail_wal{false};

private:
    void wrap(const std::string& f, const rocksdb::IOStatus& s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
        // WAL files are "<number>.log"; the info log is "LOG" (not touched).
        if (s.ok() && f.size() > 4 && f.compare(f.size() - 4, 4, ".log") == 0) {
            *r = std::make_unique<fault_wal_file>(std::move(*r), fail_wal);
        }
    }
};

// The writer thread decides when to retry after a write error (see top).
class manual_recovery_listener final : public rocksdb::EventListener {
public:
    const char* Name() const override { return "StrataManualRecovery"; }
    void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                              bool* auto_recovery) override {
        bg_error.PermitUncheckedError();
        *auto_recovery = false;
    }
};

// ---- info log ----------------------------------------------------------------
// RocksDB's own info LOG writer goes through WritableFileWriter, which after
// one failed append (a full disk) trips an assertion on the next log line in
// Debian's librocksdb (built with assertions): a full disk would abort the
// broker. So the LOG in the data directory is written by this plain stdio
// logger instead: errors are ignored (the log is for post-mortems, never
// worth a crash), and it rotates once past a size (LOG -> LOG.old).
class file_logger final : public rocksdb::Logger {
public:
    explicit file_logger(std::string path)
        : Logger(rocksdb::InfoLogLevel::INFO_LEVEL), path_(std::move(path)) {
        reopen();
    }
    ~file_logger() override {
        if (f_) std::fclose(f_);
    }

    using Logger::Logv;
    void Logv(const char* format, va_list ap) override {
        char line[2048];
        int n = std::vsnprintf(line, sizeof line, format, ap);
        if (n < 0) return;
        auto now = std::chrono::system_clock::now();
        auto t = std::chrono::system_clock::to_time_t(now);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
        std::tm tm{};
        ::localtime_r(&t, &tm);
        std::lock_guard lk(mutex_);
        if (!f_) return;
        int w = std::fprintf(f_, "%04d/%02d/%02d-%02d:%02d:%02d.%06lld %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
                             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us), line);
        std::fflush(f_);
        std::clearerr(f_);  // a full disk now must not silence the log for good
        if (w > 0) written_ += static_cast<std::uint64_t>(w);
        if (written_ > max_size) {
            std::fclose(f_);
            std::rename(path_.c_str(), (path_ + ".old").c_str());
            reopen();
        }
    }
    void Flush() override {
        std::lock_guard lk(mutex_);
        if (f_) std::fflush(f_);
    }

private:
    static constexpr std::uint64_t max_size = 8u << 20;
    void reopen() {
        f_ = std::fopen(path_.c_str(), "a");
        written_ = 0;
        if (f_) {
            std::fseek(f_, 0, SEEK_END);
            auto at = std::ftell(f_);
            written_ = at > 0 ? static_cast<std::uint64_t>(at) : 0;
        }
    }
    std::string path_;
    std::mutex mutex_;
    std::FILE* f_ = nullptr;
    std::uint64_t written_ = 0;
};

// ---- options ---------------------------------------------------------------

rocksdb::DBOptions make_db_options(rocksdb::Env* env) {
    rocksdb::DBOptions o;
    o.env = env;
    // Flushes and compactions share the machine with the network threads:
    // two background jobs are enough for our write rate (small records).
    o.max_background_jobs = 2;
    // A WAL file can only be deleted once every column family with data in
    // it was flushed. Rarely written families (sessions, meta) would pin
    // old WALs forever; past this total RocksDB flushes them. It also
    // bounds the log replayed after a crash (start-up time).
    o.max_total_wal_size = 64u << 20;
    // All memtables together (the per-family sizes below are the common
    // case, this is the ceiling when everything is busy).
    o.db_write_buffer_size = 96u << 20;
    // Smooth SST write-back instead of one big writeback at file close.
    o.bytes_per_sync = 1u << 20;
    // A torn last WAL record after a crash is cut off, everything before it
    // recovered (the default, stated because the guarantees rest on it).
    o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    o.listeners.push_back(std::make_shared<manual_recovery_listener>());
    return o;
}

rocksdb::CompressionType pick_compression() {
    // LZ4: cheap to decompress during the start-up scan and good on the
    // repetitive ISA-95 topics and small JSON payloads. Debian's build has
    // it; fall back to Snappy, else none.
    auto supported = rocksdb::GetSupportedCompressions();
    for (auto c : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
        if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
    }
    return rocksdb::kNoCompression;
}

rocksdb::ColumnFamilyOptions make_cf_options(std::size_t which, const std::shared_ptr<rocksdb::Cache>& cache,
                                             bool auto_compactions) {
    rocksdb::ColumnFamilyOptions o;
    // Off from open until load() has read everything (see
    // enable_compactions()), so that a compaction due after a crash does
    // not compete with the start-up scan for the CPU.
    o.disable_auto_compactions = !auto_compactions;
    // Level compaction: our data is mostly overwritten (retained per topic,
    // sessions) or inserted and deleted soon after (queues); level style
    // keeps space amplification low and drops tombstones at the bottom.
    o.compaction_style = rocksdb::kCompactionStyleLevel;
    o.level_compaction_dynamic_level_bytes = true;
    // Modest memtables: many small writes, and a short WAL replay after a
    // crash. Retained state and queues take most of the traffic.
    bool busy = which == cf_retained || which == cf_deliveries;
    o.write_buffer_size = busy ? (16u << 20) : (4u << 20);
    o.max_write_buffer_number = 3;  // one filling, one flushing, one spare: no write stall on a flush
    o.target_file_size_base = 32u << 20;
    o.max_bytes_for_level_base = 128u << 20;
    o.compression = pick_compression();

    rocksdb::BlockBasedTableOptions t;
    // Every read is a full sequential scan (load/check); there are no point
    // lookups on the data path (all writes are blind), so bloom filters
    // would cost memory and CPU for nothing: none. Larger blocks compress
    // better and mean fewer block reads in the scan.
    t.block_size = 16u << 10;
    t.block_cache = cache;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));

    if (which == cf_deliveries || which == cf_inbound_qos2) {
        // Queue pattern: each entry is deleted soon after insert. Put and
        // delete in the same memtable vanish at flush, but the tombstone is
        // written; files dense with tombstones are marked for compaction
        // early (64 deletes in any 128 consecutive entries) so scans at
        // start-up do not wade through them.
        o.table_properties_collector_factories.push_back(
            rocksdb::NewCompactOnDeletionCollectorFactory(128, 64));
    }
    return o;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// A RocksDB failure at open, as the operator should read it.
std::string describe_open_failure(const std::string& path, const rocksdb::Status& s) {
    std::string msg = s.ToString();
    std::string l = lower(msg);
    if (s.IsIOError() && l.find("lock") != std::string::npos) {
        if (l.find("current process") != std::string::npos) {
            return "strata data directory " + path +
                   " is in use by another store in this process (RocksDB LOCK held: " + msg + ")";
        }
        return "strata data directory " + path + " is in use by another process (RocksDB LOCK held: " + msg +
               "); stop the other broker or use another directory";
    }
    if (s.IsCorruption()) {
        return "strata data directory " + path + " is corrupt: " + msg +
               "; refusing to start, nothing was reset (restore a backup or move the directory away)";
    }
    return "cannot open strata data directory " + path + ": " + msg;
}

}  // namespace

// ============================================================================

struct store::impl {
    explicit impl(const options& o) : opts_(o) {}
    ~impl() { close(); }

    // ---- open / close ------------------------------------------------------

    void open();
    void open_rocksdb(const std::vector<std::string>& names, bool create);
    void enable_compactions();
    void close_rocksdb() noexcept;
    void close();

    // ---- writer ------------------------------------------------------------

    using waiter_map = std::multimap<ticket, std::function<void(bool)>>;

    // An operation waiting for the writer (pending_) or taken by it.
    struct queued {
        operation op;
        std::uint64_t bytes = 0;  // estimate_bytes(op)
        bool dropped = false;     // settled before the writer took it: not written
    };
    // A put_delivery not settled yet: waiting in pending_ (at `pos`) while
    // `gen` is take_gen_, else taken by the writer and not committed yet.
    struct put_ref {
        ticket t = 0;
        std::size_t pos = 0;
        std::uint64_t gen = 0;
    };
    // The unsettled puts of one delivery record, in submission order.
    struct record_puts {
        put_ref first;
        std::vector<put_ref> more;  // rare: sent marks, QoS 2 PUBREC marks
        bool fresh = false;         // `first` was the record's first write
    };
    struct key_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view k) const noexcept { return std::hash<std::string_view>{}(k); }
    };

    // What the writer thread carries from one group commit to the next.
    struct writer_state {
        std::vector<queued> batch;     // kept across failed attempts
        std::size_t ops = 0;           // operations in batch to write (not dropped)
        ticket through = 0;            // the last ticket whose operations are in batch
        std::uint64_t bytes = 0;       // estimate_bytes() of batch
        std::chrono::milliseconds backoff = first_backoff;
        clock_type::time_point retry_at{};
        // durability batch and none: at most one group commit per
        // interval, and none later than an interval after its first operation. A commit an
        // interval after the previous one goes at once, so a lightly loaded
        // broker acknowledges after one sync, not after a fixed wait; under
        // load commits (and syncs) come once per interval with everything
        // gathered meanwhile.
        clock_type::time_point last_commit = clock_type::now();
        int failures_while_stopping = 0;
        // Callbacks taken from waiting_, run with mutex_ released. Kept here
        // so that its memory serves every commit.
        std::vector<std::function<void(bool)>> fns;
    };
    struct commit_attempt {
        rocksdb::Status status;
        std::uint64_t written = 0;  // bytes in the WriteBatch
        double seconds = 0;
    };

    // Moves the operations out of `ops`.
    ticket submit(std::span<operation> ops);
    // submit()'s steps, with mutex_ held.
    void enqueue_locked(operation&& op, bool waited_for);
    void remember_put_locked(const put_delivery& p, ticket t, std::size_t pos);
    bool settle_locked(const erase_delivery& e);
    void settle_put_locked(const put_ref& p);
    void forget_committed_puts_locked();
    void advance_locked(std::vector<std::function<void(bool)>>& fns);
    void when_durable(ticket t, std::function<void(bool)>&& fn);
    void writer_loop();

    // ---- reading back deliveries (read_deliveries) -------------------------
    struct read_request {
        std::string client_id;
        std::uint64_t from_seq = 0;
        std::size_t max_count = 0;
        std::uint64_t max_bytes = 0;
        ticket after = 0;  // the last ticket submitted before the request
        std::function<void(std::vector<stored_delivery>&&, bool)> fn;
    };
    void reader_loop();
    // Whatever was submitted up to `after` is written (mutex_ held).
    [[nodiscard]] bool written_locked(ticket after) const noexcept;
    // Reads one request's records (db_mutex_ taken here); false: failed.
    bool read_range(const read_request& r, std::vector<stored_delivery>& out);
    // The writer loop's steps, in order; all but attempt_commit() with
    // mutex_ held.
    bool wait_for_work(std::unique_lock<std::mutex>& lk, const writer_state& w);
    void take_pending(writer_state& w);
    commit_attempt attempt_commit(writer_state& w);
    void committed(writer_state& w, const commit_attempt& a);
    void count_commit(std::size_t ops, const commit_attempt& a);
    bool commit_failed(writer_state& w, const rocksdb::Status& s);
    void take_waiters(waiter_map::iterator end, std::vector<std::function<void(bool)>>& fns);
    rocksdb::Status commit(const std::vector<queued>& ops, std::uint64_t& bytes);
    rocksdb::Status recover();

    // ---- reading -----------------------------------------------------------

    load_result load(const recovery_visitor& v, std::int64_t now_ms);
    store_counts check();
    std::unique_ptr<rocksdb::Iterator> scan(std::size_t cf) const;
    [[noreturn]] void bad_record(std::size_t cf, std::string_view key, const std::string& why) const;
    void require_db() const;

    // ---- state -------------------------------------------------------------

    const options opts_;

    std::shared_ptr<fault_fs> fs_;
    std::unique_ptr<rocksdb::Env> env_;
    std::shared_ptr<rocksdb::Cache> cache_;
    rocksdb::DBOptions db_options_;
    std::vector<std::string> cf_opened_;  // names as opened (for a reopen)
    // Replaced only by the writer thread (recover()) and open/close; load()
    // and check() hold db_mutex_ so a reopen cannot pull the DB from under
    // their iterators. Writes need no lock (RocksDB is thread-safe).
    std::mutex db_mutex_;
    rocksdb::DB* db_ = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    std::array<rocksdb::ColumnFamilyHandle*, cf_count> cf_{};
    bool needs_recovery_ = false;  // writer thread only
    rocksdb::WriteBatch write_batch_;  // writer thread only: reused, keeps its memory
    stored_message read_scratch_;      // writer thread only: shared messages are read into it
    std::atomic<bool> compactions_enabled_{false};

    // Guarded by mutex_.
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<queued> pending_;
    std::uint64_t pending_ops_ = 0;     // in pending_, not dropped
    std::uint64_t pending_bytes_ = 0;
    // Per ticket after durable_, in order: how many of its operations are
    // neither committed nor settled (0: it waits for nothing more).
    std::deque<std::uint32_t> open_;
    // Unsettled put_delivery operations by delivery key (encoding.hpp).
    std::unordered_map<std::string, record_puts, key_hash, std::equal_to<>> unsettled_;
    std::uint64_t take_gen_ = 0;        // how many times the writer took pending_
    std::string key_scratch_;
    std::uint64_t cancelled_ = 0;
    clock_type::time_point first_pending_at_{};
    std::uint64_t inflight_ops_ = 0;    // taken by the writer, not yet committed
    std::uint64_t inflight_bytes_ = 0;
    ticket last_ticket_ = 0;
    waiter_map waiting_;
    bool stop_ = false;
    bool writer_done_ = false;
    bool closed_ = false;
    std::uint64_t commits_ = 0, operations_ = 0, bytes_ = 0, write_errors_ = 0;
    std::string last_error_;
    std::vector<double> latencies_;
    std::array<std::uint64_t, store_stats::commit_bucket_bounds.size()> commits_under_{};
    double commit_seconds_sum_ = 0;
    std::size_t latency_next_ = 0;

    std::atomic<ticket> durable_{0};
    std::atomic<bool> healthy_{true};
    // pending_bytes_ + inflight_bytes_, written under mutex_, read lock-free.
    std::atomic<std::uint64_t> backlog_bytes_{0};
    std::atomic<int> inject_failures_{0};
    std::thread writer_;

    // Guarded by mutex_: read_deliveries() requests in order, and the last
    // ticket a commit wrote.
    std::deque<read_request> reads_;
    std::condition_variable read_wake_;
    ticket written_ = 0;
    bool reader_stop_ = false;
    std::thread reader_;
};

// ---- open -------------------------------------------------------------------

void store::impl::open() {
    namespace fs = std::filesystem;
    const std::string& path = opts_.path;
    if (path.empty()) throw store_error("strata data directory: empty path");

    fs_ = std::make_shared<fault_fs>(rocksdb::FileSystem::Default());
    env_ = rocksdb::NewCompositeEnv(fs_);
    // Reads happen in scans with fill_cache=false; the cache holds index
    // blocks and what compaction touches. Small on purpose.
    cache_ = rocksdb::NewLRUCache(16u << 20);
    db_options_ = make_db_options(env_.get());

    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) {
        throw store_error("strata data directory " + path + ": " + ec.message());
    }
    bool exists = fs::exists(st);
    if (exists && !fs::is_directory(st)) throw store_error("strata data directory " + path + " is not a directory");
    bool empty = true;
    if (exists) {
        empty = fs::is_empty(path, ec);
        if (ec) throw store_error("strata data directory " + path + ": " + ec.message());
    }

    std::vector<std::string> names;
    if (empty) {
        if (!opts_.create_if_missing) throw store_error("no strata store at " + path + " (directory missing or empty)");
        fs::create_directories(path, ec);
        if (ec) throw store_error("cannot create strata data directory " + path + ": " + ec.message());
    } else if (!fs::exists(fs::path(path) / "CURRENT", ec)) {
        // Never open (and so write to) a directory that is not ours.
        throw store_error("strata data directory " + path +
                          " is not empty and holds no RocksDB store (no CURRENT file): not a strata "
                          "store, refusing to use it (point persistence.path at a new or empty directory)");
    }
    auto log = [&] { db_options_.info_log = std::make_shared<file_logger>((fs::path(path) / "LOG").string()); };
    if (empty) {
        log();
        names.push_back(rocksdb::kDefaultColumnFamilyName);
        for (auto n : cf_names) names.emplace_back(n);
        open_rocksdb(names, /*create=*/true);
    } else {
        // Check what it is before opening it for writing.
        auto s = rocksdb::DB::ListColumnFamilies(db_options_, path, &names);
        if (!s.ok()) throw store_error(describe_open_failure(path, s));
        if (std::find(names.begin(), names.end(), cf_names[cf_meta]) == names.end()) {
            throw store_error("strata data directory " + path +
                              " holds a RocksDB database that is not a strata store (no \"meta\" column "
                              "family); refusing to use it");
        }
        log();  // only now: never write into a directory that is not ours
        open_rocksdb(names, /*create=*/false);
    }

    // Format version.
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), cf_[cf_meta], slice(format_version_key), &value);
    if (s.IsNotFound()) {
        // Fresh, or a first start that died between creating the database
        // and writing the version: only then is it ours to stamp.
        bool all_empty = true;
        for (auto* h : handles_) {
            std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
            it->SeekToFirst();
            if (it->Valid() || !it->status().ok()) all_empty = false;
        }
        bool complete = std::all_of(cf_.begin(), cf_.end(), [](auto* h) { return h != nullptr; });
        if (!all_empty || !complete) {
            close_rocksdb();
            throw store_error("strata data directory " + path +
                              " holds a RocksDB database without a strata format version: not a strata "
                              "store, refusing to use it");
        }
        value.clear();
        enc::encode_format_version(value, current_format_version);
        rocksdb::WriteOptions wo;
        wo.sync = true;
        s = db_->Put(wo, cf_[cf_meta], slice(format_version_key), value);
        if (!s.ok()) {
            close_rocksdb();
            throw store_error("cannot initialise strata data directory " + path + ": " + s.ToString());
        }
    } else if (!s.ok()) {
        close_rocksdb();
        throw store_error(describe_open_failure(path, s));
    } else {
        std::uint32_t version = 0;
        if (auto e = enc::decode_format_version(value, version)) {
            close_rocksdb();
            throw store_error("strata data directory " + path + " has a corrupt format version (" + e + ")");
        }
        if (version != current_format_version) {
            close_rocksdb();
            if (version > current_format_version) {
                throw store_error("strata data directory " + path + " has format version " +
                                  std::to_string(version) + ", newer than this build supports (" +
                                  std::to_string(current_format_version) +
                                  "); upgrade strata (the data was left untouched)");
            }
            throw store_error("strata data directory " + path + " has unknown format version " +
                              std::to_string(version) + " (this build reads " +
                              std::to_string(current_format_version) + ")");
        }
        for (std::size_t i = 0; i < cf_count; ++i) {
            if (!cf_[i]) {
                close_rocksdb();
                throw store_error("strata data directory " + path + " lacks the \"" + cf_names[i] +
                                  "\" column family (corrupt?); refusing to start");
            }
        }
    }

    writer_ = std::thread([this] { writer_loop(); });
    reader_ = std::thread([this] { reader_loop(); });
}

void store::impl::open_rocksdb(const std::vector<std::string>& names, bool create) {
    db_options_.create_if_missing = create;
    db_options_.create_missing_column_families = create;
    std::vector<rocksdb::ColumnFamilyDescriptor> desc;
    for (const auto& n : names) {
        auto ours = std::find(cf_names.begin(), cf_names.end(), n);
        // Families we do not know (only possible in a foreign or newer store,
        // refused right after) are opened with defaults: RocksDB insists that
        // every family is opened.
        desc.emplace_back(n, ours == cf_names.end()
                                 ? rocksdb::ColumnFamilyOptions()
                                 : make_cf_options(static_cast<std::size_t>(ours - cf_names.begin()), cache_,
                                                   compactions_enabled_.load()));
    }
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    auto s = rocksdb::DB::Open(db_options_, opts_.path, desc, &handles, &db);
    if (!s.ok()) throw store_error(describe_open_failure(opts_.path, s));
    db_ = db;
    handles_ = std::move(handles);
    cf_opened_ = names;
    cf_.fill(nullptr);
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto ours = std::find(cf_names.begin(), cf_names.end(), names[i]);
        if (ours != cf_names.end()) cf_[static_cast<std::size_t>(ours - cf_names.begin())] = handles_[i];
    }
}

// Called at the end of load() and before the first commit, whichever
// comes first (a store that is never loaded still compacts).
void store::impl::enable_compactions() {
    if (compactions_enabled_.exchange(true) || !db_) return;
    for (auto* h : cf_) {
        // Failure leaves compaction off for that family until the next
        // start: space grows, nothing breaks. Deliberately not fatal.
        db_->SetOptions(h, {{"disable_auto_compactions", "false"}}).PermitUncheckedError();
    }
}

void store::impl::close_rocksdb() noexcept {
    if (!db_) return;
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    handles_.clear();
    cf_.fill(nullptr);
    db_->Close().PermitUncheckedError();  // errors here leave nothing we could fix
    delete db_;
    db_ = nullptr;
}

void store::impl::close() {
    {
        std::lock_guard lk(mutex_);
        if (closed_) return;
        closed_ = true;
        stop_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
    {
        std::lock_guard lk(mutex_);
        reader_stop_ = true;
    }
    read_wake_.notify_all();
    if (reader_.joinable()) reader_.join();

    std::lock_guard db_lk(db_mutex_);
    if (db_ && !needs_recovery_) {
        // A synced write: durability none wrote without sync, this makes
        // the last writes durable too. It also keeps the meta memtable from
        // being empty, so the flush below switches to a new WAL and every
        // family's log number moves past the old ones: without that,
        // RocksDB 7.8 keeps one empty WAL file per start that wrote
        // nothing, forever. Then flush the memtables so the next start
        // replays no WAL.
        std::string stamp;
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        for (int i = 7; i >= 0; --i) stamp.push_back(static_cast<char>((static_cast<std::uint64_t>(now) >> (8 * i)) & 0xff));
        rocksdb::WriteOptions wo;
        wo.sync = true;
        db_->Put(wo, cf_[cf_meta], slice(closed_at_key), stamp).PermitUncheckedError();
        rocksdb::FlushOptions fo;
        fo.wait = true;
        std::vector<rocksdb::ColumnFamilyHandle*> ours(cf_.begin(), cf_.end());
        db_->Flush(fo, ours).PermitUncheckedError();  // best effort: the WAL has it all anyway
    }
    close_rocksdb();
}

// ---- writer -----------------------------------------------------------------

namespace {
std::uint64_t estimate_bytes(const operation& op) {
    return std::visit(
        [](const auto& o) -> std::uint64_t {
            using T = std::decay_t<decltype(o)>;
            constexpr std::uint64_t overhead = 24;
            if constexpr (std::is_same_v<T, put_retained>) {
                return overhead + o.msg.topic.size() + o.msg.payload.size() + o.msg.properties.size();
            } else if constexpr (std::is_same_v<T, put_delivery>) {
                const std::uint64_t msg = o.msg ? o.msg->stored_size()
                                                : o.d.msg.topic.size() + o.d.msg.payload.size() + o.d.msg.properties.size();
                return overhead + o.d.client_id.size() + msg + 4 * o.d.subscription_ids.size();
            } else if constexpr (std::is_same_v<T, put_session>) {
                std::uint64_t n = overhead + o.s.client_id.size();
                if (o.s.will) n += o.s.will->topic.size() + o.s.will->payload.size() + o.s.will->properties.size();
                return n;
            } else if constexpr (std::is_same_v<T, put_subscription>) {
                return overhead + o.client_id.size() + o.sub.filter.size();
            } else if constexpr (std::is_same_v<T, erase_retained>) {
                return overhead + o.topic.size();
            } else if constexpr (std::is_same_v<T, erase_subscription>) {
                return overhead + o.client_id.size() + o.filter.size();
            } else {
                return overhead + o.client_id.size();
            }
        },
        op);
}

// Turns operations into WriteBatch entries.
struct batch_builder {
    rocksdb::WriteBatch& wb;
    const std::array<rocksdb::ColumnFamilyHandle*, cf_count>& cf;
    stored_message& scratch;  // a shared message is read into it
    std::string key;
    std::string value;

    rocksdb::Status operator()(const put_retained& o) {
        value.clear();
        enc::encode_retained(value, o.msg);
        return wb.Put(cf[cf_retained], slice(o.msg.topic), value);
    }
    rocksdb::Status operator()(const erase_retained& o) { return wb.Delete(cf[cf_retained], slice(o.topic)); }
    rocksdb::Status operator()(const put_session& o) {
        value.clear();
        enc::encode_session(value, o.s);
        return wb.Put(cf[cf_sessions], slice(o.s.client_id), value);
    }
    rocksdb::Status operator()(const erase_session& o) {
        auto s = wb.Delete(cf[cf_sessions], slice(o.client_id));
        // Everything the client owns is one key range per family (see
        // encoding.hpp): one range tombstone each, which also covers puts
        // earlier in this same batch.
        auto begin = enc::client_range_begin(o.client_id);
        auto end = enc::client_range_end(o.client_id);
        for (auto c : {cf_subscriptions, cf_deliveries, cf_inbound_qos2}) {
            if (s.ok()) s = wb.DeleteRange(cf[c], begin, end);
        }
        return s;
    }
    rocksdb::Status operator()(const put_subscription& o) {
        key.clear();
        enc::subscription_key(key, o.client_id, o.sub.filter);
        value.clear();
        enc::encode_subscription(value, o.sub);
        return wb.Put(cf[cf_subscriptions], key, value);
    }
    rocksdb::Status operator()(const erase_subscription& o) {
        key.clear();
        enc::subscription_key(key, o.client_id, o.filter);
        return wb.Delete(cf[cf_subscriptions], key);
    }
    rocksdb::Status operator()(const put_delivery& o) {
        key.clear();
        enc::delivery_key(key, o.d.client_id, o.d.seq);
        value.clear();
        if (o.msg) {
            o.msg->read(scratch);
            enc::encode_delivery(value, o.d, scratch);
        } else {
            enc::encode_delivery(value, o.d);
        }
        return wb.Put(cf[cf_deliveries], key, value);
    }
    rocksdb::Status operator()(const erase_delivery& o) {
        key.clear();
        enc::delivery_key(key, o.client_id, o.seq);
        return wb.Delete(cf[cf_deliveries], key);
    }
    rocksdb::Status operator()(const put_inbound_qos2& o) {
        key.clear();
        enc::inbound_qos2_key(key, o.client_id, o.packet_id);
        value.clear();
        enc::encode_inbound_qos2(value);
        return wb.Put(cf[cf_inbound_qos2], key, value);
    }
    rocksdb::Status operator()(const erase_inbound_qos2& o) {
        key.clear();
        enc::inbound_qos2_key(key, o.client_id, o.packet_id);
        return wb.Delete(cf[cf_inbound_qos2], key);
    }
};

void run_callbacks(std::vector<std::function<void(bool)>>& fns, bool ok) {
    for (auto& fn : fns) {
        try {
            fn(ok);
        } catch (...) {
            // A callback must not throw (header); the writer thread must
            // survive one that does.
        }
    }
    fns.clear();
}
}  // namespace

ticket store::impl::submit(std::span<operation> ops) {
    std::vector<std::function<void(bool)>> fns;
    bool notify = false;
    bool read_ready = false;
    ticket t;
    {
        std::lock_guard lk(mutex_);
        // Closed: dropped, and a ticket past every real one, so it never
        // becomes durable (header).
        if (stop_) return last_ticket_ + 1;
        t = ++last_ticket_;
        open_.push_back(0);
        const bool was_empty = pending_ops_ == 0;
        const bool was_below = pending_bytes_ < opts_.max_batch_bytes;
        for (auto& op : ops) {
            if (const auto* e = std::get_if<erase_delivery>(&op)) {
                if (settle_locked(*e)) {
                    ++cancelled_;  // its record never reached the writer
                    continue;
                }
                enqueue_locked(std::move(op), /*waited_for=*/false);
            } else if (std::holds_alternative<put_delivery>(op)) {
                const std::size_t pos = pending_.size();
                enqueue_locked(std::move(op), /*waited_for=*/true);
                remember_put_locked(std::get<put_delivery>(pending_.back().op), t, pos);
            } else {
                enqueue_locked(std::move(op), /*waited_for=*/true);
            }
        }
        backlog_bytes_.store(pending_bytes_ + inflight_bytes_);
        if (was_empty && pending_ops_ > 0) first_pending_at_ = clock_type::now();
        notify = (was_empty && pending_ops_ > 0) || (was_below && pending_bytes_ >= opts_.max_batch_bytes);
        // none: acknowledged at submit (lossy on a crash, documented) while
        // the backlog is small and every earlier ticket was acknowledged;
        // past max_pending_bytes the ticket waits until it is written, so
        // the broker's flow control (unacknowledged publishes) bounds the
        // memory instead of a list that grows without limit.
        if (opts_.mode == durability::none && pending_bytes_ + inflight_bytes_ <= opts_.max_pending_bytes) {
            open_.back() = 0;
        }
        advance_locked(fns);
        // A read waiting for puts this submit dropped (settled) has nothing
        // left to wait for, and no commit may come to tell it.
        read_ready = !reads_.empty() && written_locked(reads_.front().after);
    }
    if (notify) wake_.notify_one();
    if (read_ready) read_wake_.notify_one();
    run_callbacks(fns, true);
    return t;
}

// Appends one operation to pending_; `waited_for`: its ticket waits for it.
void store::impl::enqueue_locked(operation&& op, bool waited_for) {
    const std::uint64_t bytes = estimate_bytes(op);
    pending_.push_back(queued{std::move(op), bytes, false});
    ++pending_ops_;
    pending_bytes_ += bytes;
    if (waited_for) ++open_.back();
}

void store::impl::remember_put_locked(const put_delivery& p, ticket t, std::size_t pos) {
    key_scratch_.clear();
    enc::delivery_key(key_scratch_, p.d.client_id, p.d.seq);
    const put_ref ref{t, pos, take_gen_};
    auto it = unsettled_.find(std::string_view(key_scratch_));
    if (it == unsettled_.end()) {
        unsettled_.emplace(key_scratch_, record_puts{ref, {}, p.fresh});
    } else {
        it->second.more.push_back(ref);
    }
}

// An erase settles the puts of its record submitted before it. True: the
// erase itself is not needed (its record never went to the writer).
bool store::impl::settle_locked(const erase_delivery& e) {
    key_scratch_.clear();
    enc::delivery_key(key_scratch_, e.client_id, e.seq);
    auto it = unsettled_.find(std::string_view(key_scratch_));
    if (it == unsettled_.end()) return false;
    const record_puts& r = it->second;
    // Puts are in submission order: if the first is still pending, all are.
    const bool never_taken = r.fresh && r.first.gen == take_gen_;
    settle_put_locked(r.first);
    for (const auto& p : r.more) settle_put_locked(p);
    unsettled_.erase(it);
    return never_taken;
}

void store::impl::settle_put_locked(const put_ref& p) {
    const ticket d = durable_.load();
    if (p.t > d) {
        // 0 already when its ticket was settled as a whole (durability none).
        auto& n = open_[static_cast<std::size_t>(p.t - d - 1)];
        if (n > 0) --n;
    }
    if (p.gen != take_gen_) return;  // the writer has it: written all the same, then erased
    auto& q = pending_[p.pos];
    q.dropped = true;
    q.op = operation{};  // releases the record now: it is never written
    --pending_ops_;
    pending_bytes_ -= q.bytes;
    ++cancelled_;
}

// After a commit: the puts it wrote are settled, and the next erase of
// their records must be written.
void store::impl::forget_committed_puts_locked() {
    for (auto it = unsettled_.begin(); it != unsettled_.end();) {
        auto& r = it->second;
        if (r.first.gen == take_gen_) {  // still pending, and so are the later ones
            ++it;
            continue;
        }
        std::erase_if(r.more, [&](const put_ref& p) { return p.gen != take_gen_; });
        if (r.more.empty()) {
            it = unsettled_.erase(it);
            continue;
        }
        r.first = r.more.front();
        r.more.erase(r.more.begin());
        r.fresh = false;  // an earlier put of it is written
        ++it;
    }
}

// Moves durable_ past the tickets at the front that wait for nothing more,
// and takes their waiters.
void store::impl::advance_locked(std::vector<std::function<void(bool)>>& fns) {
    std::size_t n = 0;
    while (n < open_.size() && open_[n] == 0) ++n;
    if (n == 0) return;
    open_.erase(open_.begin(), open_.begin() + static_cast<std::ptrdiff_t>(n));
    const ticket d = durable_.load() + n;
    durable_.store(d);
    if (!waiting_.empty()) take_waiters(waiting_.upper_bound(d), fns);
}

void store::impl::when_durable(ticket t, std::function<void(bool)>&& fn) {
    {
        std::unique_lock lk(mutex_);
        if (t > durable_.load() && !writer_done_) {
            waiting_.emplace_hint(waiting_.end(), t, std::move(fn));
            return;
        }
    }
    fn(t <= durable_.load());
}

void store::impl::writer_loop() {
    writer_state w;
    std::unique_lock lk(mutex_);
    while (wait_for_work(lk, w)) {
        take_pending(w);
        lk.unlock();
        const commit_attempt a = attempt_commit(w);
        lk.lock();
        bool give_up = false;
        if (a.status.ok()) {
            committed(w, a);
        } else {
            give_up = commit_failed(w, a.status);
        }
        lk.unlock();
        if (a.status.ok()) w.batch.clear();  // frees the records outside mutex_
        run_callbacks(w.fns, a.status.ok());
        lk.lock();
        if (give_up) break;
    }
    writer_done_ = true;
    // Waiters registered for tickets that will never commit (e.g. submitted
    // after close began) learn it now.
    take_waiters(waiting_.end(), w.fns);
    lk.unlock();
    run_callbacks(w.fns, false);
}

// Waits until there is something to commit and it is time to. False: stop,
// nothing is left to write.
bool store::impl::wait_for_work(std::unique_lock<std::mutex>& lk, const writer_state& w) {
    for (;;) {
        bool have_new = pending_ops_ > 0;
        bool have_kept = !w.batch.empty();
        if (stop_ && !have_new && !have_kept) return false;
        auto deadline = clock_type::time_point::max();
        if (have_kept) {
            deadline = w.retry_at;
        } else if (have_new) {
            // none gathers like batch (it only skips the sync): a delivery
            // acknowledged within the interval is then never written.
            bool wait_for_batch = opts_.mode != durability::always && !stop_ &&
                                  pending_bytes_ < opts_.max_batch_bytes;
            deadline = wait_for_batch ? std::max(first_pending_at_, w.last_commit + opts_.batch_interval)
                                      : clock_type::time_point::min();
        }
        if (clock_type::now() >= deadline) return true;
        if (deadline == clock_type::time_point::max()) {
            wake_.wait(lk);
        } else {
            wake_.wait_until(lk, deadline);
        }
    }
}

// Takes everything pending, behind what a failed attempt left.
void store::impl::take_pending(writer_state& w) {
    if (w.batch.empty()) {
        w.batch.swap(pending_);  // pending_ gets the last batch's (cleared) memory
    } else {
        for (auto& q : pending_) {
            if (!q.dropped) w.batch.push_back(std::move(q));
        }
        pending_.clear();
    }
    ++take_gen_;  // what unsettled_ points into pending_ is the writer's now
    w.ops += pending_ops_;
    w.through = last_ticket_;
    w.bytes += pending_bytes_;
    inflight_ops_ = w.ops;
    inflight_bytes_ = w.bytes;
    pending_ops_ = 0;
    pending_bytes_ = 0;
    backlog_bytes_.store(inflight_bytes_);
}

// One group commit of the batch (synced as the durability mode says, see
// commit()), timed. Runs without mutex_: submit() goes on meanwhile.
store::impl::commit_attempt store::impl::attempt_commit(writer_state& w) {
    commit_attempt a;
    auto started = clock_type::now();
    w.last_commit = started;
    try {
        a.status = w.ops == 0 ? rocksdb::Status::OK() : commit(w.batch, a.written);
    } catch (const std::exception& e) {
        // Out of memory while encoding the batch, or anything else
        // thrown: a failed commit like a disk error (kept, retried after
        // the backoff), never the end of the writer thread.
        a.status = rocksdb::Status::Aborted("group commit", e.what());
    }
    a.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
    return a;
}

// The batch is written: its tickets are durable, their waiters are told ok.
void store::impl::committed(writer_state& w, const commit_attempt& a) {
    if (w.ops > 0) count_commit(w.ops, a);
    // w.batch is cleared by the caller, without mutex_.
    w.ops = 0;
    w.bytes = 0;
    inflight_ops_ = inflight_bytes_ = 0;
    backlog_bytes_.store(pending_bytes_);
    const ticket d = durable_.load();
    for (ticket t = d + 1; t <= w.through; ++t) open_[static_cast<std::size_t>(t - d - 1)] = 0;
    written_ = std::max(written_, w.through);
    if (!reads_.empty()) read_wake_.notify_one();
    forget_committed_puts_locked();
    healthy_.store(true);
    w.backoff = first_backoff;
    advance_locked(w.fns);
}

void store::impl::count_commit(std::size_t ops, const commit_attempt& a) {
    ++commits_;
    operations_ += ops;
    bytes_ += a.written;
    if (latencies_.size() < commit_latency_samples) {
        latencies_.push_back(a.seconds);
    } else {
        latencies_[latency_next_] = a.seconds;
    }
    latency_next_ = (latency_next_ + 1) % commit_latency_samples;
    for (std::size_t i = 0; i < store_stats::commit_bucket_bounds.size(); ++i) {
        if (a.seconds <= store_stats::commit_bucket_bounds[i]) ++commits_under_[i];
    }
    commit_seconds_sum_ += a.seconds;
}

// Failed: tell the waiters of these tickets (no acknowledgement), keep the
// operations, retry after a backoff. True: give up (closing, and the disk
// refused close_attempts times).
bool store::impl::commit_failed(writer_state& w, const rocksdb::Status& s) {
    ++write_errors_;
    last_error_ = s.ToString();
    healthy_.store(false);
    w.retry_at = clock_type::now() + w.backoff;
    w.backoff = std::min(w.backoff * 2, max_backoff);
    bool give_up = stop_ && ++w.failures_while_stopping >= close_attempts;
    take_waiters(give_up ? waiting_.end() : waiting_.upper_bound(w.through), w.fns);
    if (give_up) {
        // Closing and the disk still refuses: what is left cannot be
        // written by this process (its waiters got ok = false).
        w.batch.clear();
        w.ops = 0;
        w.bytes = 0;
        inflight_ops_ = inflight_bytes_ = 0;
        pending_.clear();
        pending_ops_ = pending_bytes_ = 0;
        unsettled_.clear();
        open_.clear();
        backlog_bytes_.store(0);
    }
    return give_up;
}

bool store::impl::written_locked(ticket after) const noexcept {
    // A ticket whose operations were all settled is never committed: with
    // nothing waiting to be written, everything submitted is on disk.
    return written_ >= after || (pending_ops_ == 0 && inflight_ops_ == 0);
}

void store::impl::reader_loop() {
    std::unique_lock lk(mutex_);
    for (;;) {
        read_wake_.wait(lk, [&] { return reader_stop_ || (!reads_.empty() && written_locked(reads_.front().after)); });
        if (reader_stop_) break;
        read_request r = std::move(reads_.front());
        reads_.pop_front();
        lk.unlock();
        std::vector<stored_delivery> out;
        bool ok = false;
        try {
            ok = read_range(r, out);
        } catch (const std::exception&) {
            ok = false;  // out of memory: the caller asks again later
        }
        if (!ok) out.clear();
        try {
            r.fn(std::move(out), ok);
        } catch (...) {
        }
        lk.lock();
        // A failing disk is not asked again at once (callers retry).
        if (!ok) read_wake_.wait_for(lk, std::chrono::milliseconds(200), [&] { return reader_stop_; });
    }
    // Closing: what is still asked for is not read.
    auto left = std::move(reads_);
    reads_.clear();
    lk.unlock();
    for (auto& r : left) {
        try {
            r.fn({}, false);
        } catch (...) {
        }
    }
}

bool store::impl::read_range(const read_request& r, std::vector<stored_delivery>& out) {
    std::lock_guard db_lk(db_mutex_);
    if (!db_) return false;
    const std::string end = enc::client_range_end(r.client_id);
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    ro.readahead_size = 1u << 20;  // a backlog is read front to back
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_[cf_deliveries]));
    std::string key;
    enc::delivery_key(key, r.client_id, r.from_seq);
    std::uint64_t bytes = 0;
    for (it->Seek(key); it->Valid() && out.size() < r.max_count && (out.empty() || bytes < r.max_bytes); it->Next()) {
        stored_delivery d;
        const auto k = view(it->key());
        const auto v = view(it->value());
        // A record that does not decode is left where it is (load() and
        // check() name it): the queue goes on after it.
        if (enc::parse_delivery_key(k, d.client_id, d.seq) != nullptr || enc::decode_delivery(v, d) != nullptr) continue;
        bytes += k.size() + v.size();
        out.push_back(std::move(d));
    }
    return it->status().ok();
}

// Moves the callbacks of the waiters before `end` to `fns`.
void store::impl::take_waiters(waiter_map::iterator end, std::vector<std::function<void(bool)>>& fns) {
    for (auto it = waiting_.begin(); it != end; ++it) fns.push_back(std::move(it->second));
    waiting_.erase(waiting_.begin(), end);
}

rocksdb::Status store::impl::commit(const std::vector<queued>& ops, std::uint64_t& bytes) {
    if (needs_recovery_ || !db_) {
        auto s = recover();
        if (!s.ok()) return s;
    }
    if (!compactions_enabled_.load()) {
        std::lock_guard db_lk(db_mutex_);
        enable_compactions();
    }
    rocksdb::WriteBatch& wb = write_batch_;
    wb.Clear();
    batch_builder b{wb, cf_, read_scratch_, {}, {}};
    for (const auto& q : ops) {
        if (q.dropped) continue;
        auto s = std::visit(b, q.op);
        if (!s.ok()) return s;
    }
    rocksdb::WriteOptions wo;
    wo.sync = opts_.mode != durability::none;

    bool inject = false;
    for (int n = inject_failures_.load(); n > 0;) {
        if (inject_failures_.compare_exchange_weak(n, n - 1)) {
            inject = true;
            break;
        }
    }
    if (inject) fs_->fail_wal.store(true);
    auto s = db_->Write(wo, &wb);
    if (inject) fs_->fail_wal.store(false);
    if (!s.ok()) needs_recovery_ = true;
    bytes = wb.GetDataSize();
    return s;
}

rocksdb::Status store::impl::recover() {
    // Not DB::Resume(): after a failed WAL append RocksDB 7.8 goes on
    // writing to the same broken WAL file when there was nothing to flush,
    // and Debian's librocksdb (built with assertions) aborts on that. A
    // reopen always starts a fresh WAL, replaying the old one up to its
    // last intact record; the kept operations are then written again
    // (idempotent).
    std::lock_guard db_lk(db_mutex_);
    close_rocksdb();
    try {
        open_rocksdb(cf_opened_, /*create=*/false);
    } catch (const store_error& e) {
        return rocksdb::Status::IOError("reopen after write failure", e.what());
    }
    needs_recovery_ = false;
    return rocksdb::Status::OK();
}

// ---- reading ------------------------------------------------------------------

void store::impl::require_db() const {
    if (!db_) throw store_error("strata data directory " + opts_.path + " is not open");
}

std::unique_ptr<rocksdb::Iterator> store::impl::scan(std::size_t cf) const {
    rocksdb::ReadOptions ro;
    // One sequential pass over everything: large readahead, and do not
    // evict the (small) block cache with blocks read once.
    ro.fill_cache = false;
    ro.readahead_size = 4u << 20;
    ro.verify_checksums = true;
    return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(ro, cf_[cf]));
}

void store::impl::bad_record(std::size_t cf, std::string_view key, const std::string& why) const {
    throw store_error("strata data directory " + opts_.path + ": corrupt record in \"" + cf_names[cf] +
                      "\", key \"" + enc::printable(key) + "\": " + why);
}

namespace {
void check_iterator(const rocksdb::Iterator& it, const std::string& path, std::size_t cf) {
    if (!it.status().ok()) {
        throw store_error("strata data directory " + path + ": cannot read \"" + cf_names[cf] +
                          "\": " + it.status().ToString());
    }
}

bool session_expired(const stored_session& s, std::int64_t now_ms) {
    if (s.disconnected_at_ms == 0 || s.expiry_interval == 0xFFFFFFFFu) return false;
    return s.disconnected_at_ms + static_cast<std::int64_t>(s.expiry_interval) * 1000 <= now_ms;
}

// Deletions found by load(), written in synced chunks.
class purger {
public:
    purger(rocksdb::DB* db, const std::string& path) : db_(db), path_(path) {}
    void erase(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
        check(wb_.Delete(cf, slice(key)));
        maybe_flush();
    }
    void erase_range(rocksdb::ColumnFamilyHandle* cf, const std::string& begin, const std::string& end) {
        check(wb_.DeleteRange(cf, begin, end));
        maybe_flush();
    }
    void flush() {
        if (wb_.Count() == 0) return;
        rocksdb::WriteOptions wo;
        wo.sync = true;
        check(db_->Write(wo, &wb_));
        wb_.Clear();
    }

private:
    void maybe_flush() {
        if (wb_.Count() >= purge_chunk) flush();
    }
    void check(const rocksdb::Status& s) {
        if (!s.ok()) throw store_error("strata data directory " + path_ + ": deleting expired records: " + s.ToString());
    }
    rocksdb::DB* db_;
    const std::string& path_;
    rocksdb::WriteBatch wb_;
};
}  // namespace

load_result store::impl::load(const recovery_visitor& v, std::int64_t now_ms) {
    std::lock_guard db_lk(db_mutex_);
    require_db();
    load_result r;
    purger purge(db_, opts_.path);

    // The retained messages: counted into `loaded` and `purged`, expired
    // ones deleted through `to_purge`.
    const auto load_retained = [&](purger& to_purge, std::uint64_t& loaded, std::uint64_t& purged) {
        auto it = scan(cf_retained);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto key = view(it->key());
            stored_message m;
            if (auto e = enc::decode_retained(view(it->value()), m)) bad_record(cf_retained, key, e);
            if (key.empty()) bad_record(cf_retained, key, "empty topic");
            if (m.expires_at_ms != 0 && m.expires_at_ms <= now_ms) {
                to_purge.erase(cf_[cf_retained], key);
                ++purged;
                continue;
            }
            ++loaded;
            if (v.retained) {
                m.topic.assign(key);
                v.retained(std::move(m));
            }
        }
        check_iterator(*it, opts_.path, cf_retained);
        to_purge.flush();
    };
    // Concurrently with the rest, on a thread of its own, when the visitor
    // allows it (its own deletions, its own counts; joined below, or by the
    // future's destructor when the rest throws).
    purger retained_purge(db_, opts_.path);
    std::uint64_t retained_loaded = 0, retained_purged = 0;
    std::future<void> retained;
    if (v.retained_concurrently && v.retained) {
        retained = std::async(std::launch::async,
                              [&] { load_retained(retained_purge, retained_loaded, retained_purged); });
    } else {
        load_retained(purge, retained_loaded, retained_purged);
    }

    // Live sessions, by escaped key prefix: their records are visited, the
    // rest (expired, orphans) deleted.
    std::unordered_set<std::string> live;
    std::unordered_set<std::string> expired;
    {
        auto it = scan(cf_sessions);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto key = view(it->key());
            stored_session s;
            if (auto e = enc::decode_session(view(it->value()), s)) bad_record(cf_sessions, key, e);
            s.client_id.assign(key);
            if (session_expired(s, now_ms)) {
                purge.erase(cf_[cf_sessions], key);
                auto begin = enc::client_range_begin(s.client_id);
                auto end = enc::client_range_end(s.client_id);
                for (auto c : {cf_subscriptions, cf_deliveries, cf_inbound_qos2}) purge.erase_range(cf_[c], begin, end);
                expired.insert(std::move(begin));
                ++r.purged.sessions;
                if (v.expired_session) v.expired_session(std::move(s));
                continue;
            }
            live.insert(enc::client_range_begin(s.client_id));
            ++r.loaded.sessions;
            if (v.session) v.session(std::move(s));
        }
        check_iterator(*it, opts_.path, cf_sessions);
    }

    // The client-owned families, sorted by client: remember the last
    // client prefix seen so each client is looked up once.
    auto owned = [&](std::size_t cf, std::uint64_t& loaded, std::uint64_t& purged, auto&& visit) {
        auto it = scan(cf);
        std::string prefix;       // escaped client id + 0x00 of the current client
        bool prefix_live = false;
        std::string client;
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto key = view(it->key());
            if (prefix.empty() || key.substr(0, prefix.size()) != prefix) {
                std::string_view rest = key;
                if (auto e = enc::parse_client_prefix(rest, client)) bad_record(cf, key, e);
                prefix.assign(key.substr(0, key.size() - rest.size()));
                prefix_live = live.count(prefix) != 0;
                if (!prefix_live && !expired.count(prefix)) {
                    // Orphan: no session record (e.g. a crash between the
                    // submits that created them). Nobody can use it.
                    auto end = prefix;
                    end.back() = '\x01';
                    purge.erase_range(cf_[cf], prefix, end);
                }
            }
            if (!prefix_live) {
                ++purged;
                continue;
            }
            ++loaded;
            visit(key, view(it->value()));
        }
        check_iterator(*it, opts_.path, cf);
    };

    owned(cf_subscriptions, r.loaded.subscriptions, r.purged.subscriptions,
          [&](std::string_view key, std::string_view value) {
              std::string client_id;
              stored_subscription s;
              if (auto e = enc::parse_subscription_key(key, client_id, s.filter)) bad_record(cf_subscriptions, key, e);
              if (auto e = enc::decode_subscription(value, s)) bad_record(cf_subscriptions, key, e);
              if (v.subscription) v.subscription(client_id, std::move(s));
          });
    // Past a client's delivery_window the records are only counted.
    std::string window_client;
    std::uint64_t window_left = 0;
    delivery_range left;
    const auto report_left = [&] {
        if (left.count > 0 && v.deliveries_left) v.deliveries_left(window_client, left);
        left = {};
    };
    owned(cf_deliveries, r.loaded.deliveries, r.purged.deliveries, [&](std::string_view key, std::string_view value) {
        stored_delivery d;
        if (auto e = enc::parse_delivery_key(key, d.client_id, d.seq)) bad_record(cf_deliveries, key, e);
        if (d.client_id != window_client) {
            report_left();
            window_client = d.client_id;
            window_left = v.delivery_window ? v.delivery_window(d.client_id) : std::numeric_limits<std::uint64_t>::max();
        }
        if (window_left == 0) {
            if (left.count++ == 0) left.first_seq = d.seq;
            left.last_seq = d.seq;
            left.bytes += key.size() + value.size();
            return;
        }
        --window_left;
        if (auto e = enc::decode_delivery(value, d)) bad_record(cf_deliveries, key, e);
        if (v.delivery) v.delivery(std::move(d));
    });
    report_left();
    owned(cf_inbound_qos2, r.loaded.inbound_qos2, r.purged.inbound_qos2,
          [&](std::string_view key, std::string_view value) {
              std::string client_id;
              std::uint16_t packet_id = 0;
              if (auto e = enc::parse_inbound_qos2_key(key, client_id, packet_id)) bad_record(cf_inbound_qos2, key, e);
              if (auto e = enc::decode_inbound_qos2(value)) bad_record(cf_inbound_qos2, key, e);
              if (v.inbound_qos2) v.inbound_qos2(client_id, packet_id);
          });

    if (retained.valid()) retained.get();  // rethrows what the retained scan threw
    r.loaded.retained = retained_loaded;
    r.purged.retained = retained_purged;
    purge.flush();
    enable_compactions();
    return r;
}

store_counts store::impl::check() {
    std::lock_guard db_lk(db_mutex_);
    require_db();
    store_counts c;
    std::string client, filter;
    {
        auto it = scan(cf_meta);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto key = view(it->key());
            if (key == closed_at_key) {
                if (it->value().size() != 8) bad_record(cf_meta, key, "closed_at_ms is not 8 bytes");
                continue;
            }
            if (key != format_version_key) bad_record(cf_meta, key, "unknown meta key");
            std::uint32_t version = 0;
            if (auto e = enc::decode_format_version(view(it->value()), version)) bad_record(cf_meta, key, e);
        }
        check_iterator(*it, opts_.path, cf_meta);
    }
    auto each = [&](std::size_t cf, std::uint64_t& count, auto&& verify) {
        auto it = scan(cf);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            auto key = view(it->key());
            if (auto e = verify(key, view(it->value()))) bad_record(cf, key, e);
            ++count;
        }
        check_iterator(*it, opts_.path, cf);
    };
    each(cf_retained, c.retained, [&](std::string_view key, std::string_view value) -> const char* {
        if (key.empty()) return "empty topic";
        stored_message m;
        return enc::decode_retained(value, m);
    });
    each(cf_sessions, c.sessions, [&](std::string_view key, std::string_view value) -> const char* {
        stored_session s;
        return enc::decode_session(value, s);
    });
    each(cf_subscriptions, c.subscriptions, [&](std::string_view key, std::string_view value) -> const char* {
        if (auto e = enc::parse_subscription_key(key, client, filter)) return e;
        stored_subscription s;
        return enc::decode_subscription(value, s);
    });
    each(cf_deliveries, c.deliveries, [&](std::string_view key, std::string_view value) -> const char* {
        stored_delivery d;
        if (auto e = enc::parse_delivery_key(key, d.client_id, d.seq)) return e;
        return enc::decode_delivery(value, d);
    });
    each(cf_inbound_qos2, c.inbound_qos2, [&](std::string_view key, std::string_view value) -> const char* {
        std::uint16_t packet_id = 0;
        if (auto e = enc::parse_inbound_qos2_key(key, client, packet_id)) return e;
        return enc::decode_inbound_qos2(value);
    });
    return c;
}

// ============================================================================

std::unique_ptr<store> store::open(const options& opts) {
    auto p = std::make_unique<impl>(opts);
    p->open();
    return std::unique_ptr<store>(new store(std::move(p)));
}

store::store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
store::~store() { close(); }

load_result store::load(const recovery_visitor& v, std::int64_t now_ms) { return impl_->load(v, now_ms); }

ticket store::submit(std::vector<operation> ops) { return impl_->submit(ops); }

ticket store::submit(operation op) { return impl_->submit(std::span<operation>(&op, 1)); }

void store::when_durable(ticket t, std::function<void(bool ok)> fn) { impl_->when_durable(t, std::move(fn)); }

void store::read_deliveries(std::string client_id, std::uint64_t from_seq, std::size_t max_count,
                            std::uint64_t max_bytes, std::function<void(std::vector<stored_delivery>&&, bool ok)> fn) {
    {
        std::lock_guard lk(impl_->mutex_);
        if (!impl_->reader_stop_) {
            impl_->reads_.push_back(impl::read_request{std::move(client_id), from_seq, std::max<std::size_t>(max_count, 1),
                                                       max_bytes, impl_->last_ticket_, std::move(fn)});
            impl_->read_wake_.notify_one();
        }
    }
    // After close() the request is dropped unanswered: calling fn here
    // could take a lock its caller holds.
}

ticket store::durable_ticket() const noexcept { return impl_->durable_.load(); }

bool store::healthy() const noexcept { return impl_->healthy_.load(); }

std::uint64_t store::pending_bytes() const noexcept { return impl_->backlog_bytes_.load(); }

void store::close() { impl_->close(); }

store_counts store::check() { return impl_->check(); }

store_stats store::stats() const {
    std::lock_guard lk(impl_->mutex_);
    store_stats s;
    s.commits = impl_->commits_;
    s.operations = impl_->operations_;
    s.cancelled = impl_->cancelled_;
    s.bytes = impl_->bytes_;
    s.pending_operations = impl_->pending_ops_ + impl_->inflight_ops_;
    s.pending_bytes = impl_->pending_bytes_ + impl_->inflight_bytes_;
    s.write_errors = impl_->write_errors_;
    s.healthy = impl_->healthy_.load();
    s.last_error = impl_->last_error_;
    s.commits_under = impl_->commits_under_;
    s.commit_seconds_sum = impl_->commit_seconds_sum_;
    // Oldest first.
    const auto& l = impl_->latencies_;
    if (l.size() < commit_latency_samples) {
        s.commit_seconds = l;
    } else {
        s.commit_seconds.assign(l.begin() + static_cast<std::ptrdiff_t>(impl_->latency_next_), l.end());
        s.commit_seconds.insert(s.commit_seconds.end(), l.begin(),
                                l.begin() + static_cast<std::ptrdiff_t>(impl_->latency_next_));
    }
    return s;
}

const options& store::opts() const noexcept { return impl_->opts_; }

void store::inject_write_failures(int n) { impl_->inject_failures_.store(n); }

}  // namespace strata::persistence
