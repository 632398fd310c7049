// A work queue for slow jobs that clients can cause (password hashes),
// shared fairly between the sources that cause them.
//
// Each key (a client's address) has its own FIFO, bounded: a key with
// `per_key` jobs queued or running gets no more (post() says no, and the
// caller refuses the client at once); so does every key while `total`
// jobs are queued or running. The worker threads take one job
// from each key in turn (round robin over the keys that have jobs
// waiting), so a key that posts a thousand jobs delays another key's job
// by at most one of its own per round, not by a thousand.
//
// Thread-safety: every member may be called from any thread. Jobs run on
// the queue's own threads, several at once when there are several; a job
// must not call stop().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::auth {

class fair_queue {
public:
    struct options {
        std::size_t threads = 1;  // worker threads (at least 1)
        std::size_t per_key = 8;  // jobs queued or running per key (at least 1)
        std::size_t total = SIZE_MAX;  // jobs queued or running over all keys (at least 1)
        int nice = 0;  // added to the workers' niceness (Linux, per thread): > 0 yields the CPU to the
                       // process's other threads; 0: as the thread that constructs the queue
    };

    explicit fair_queue(options o);
    // stop()
    ~fair_queue();
    fair_queue(const fair_queue&) = delete;
    fair_queue& operator=(const fair_queue&) = delete;

    // Queues `job` under `key`. Returns false, leaving `job` untouched, when
    // `key` already has per_key jobs queued or running, when `total` jobs
    // are, or after stop().
    [[nodiscard]] bool post(const std::string& key, std::function<void()>&& job);
    // The same, and `then` runs on the worker once the job's slot is free
    // again: a completion that lets its caller post the next job at once
    // (a caller that waits for each job is then never refused by its own
    // last one). Both are left untouched when post() says no.
    [[nodiscard]] bool post(const std::string& key, std::function<void()>&& job, std::function<void()>&& then);

    // Waits for the jobs running now, drops the queued ones (unrun) and
    // joins the threads. Idempotent.
    void stop();

    [[nodiscard]] std::size_t queued() const;             // waiting, not yet running
    [[nodiscard]] std::uint64_t refused() const noexcept;  // post() calls that said no
    [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }

private:
    struct per_key {
        std::deque<std::pair<std::function<void()>, std::function<void()>>> waiting;  // job, then
        std::size_t outstanding = 0;  // waiting + running
    };
    void run();

    const std::size_t per_key_;
    const std::size_t total_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::unordered_map<std::string, per_key> keys_;  // keys with outstanding jobs only
    // Keys with waiting jobs, each once, in the order they are served.
    std::deque<std::string> turn_;
    std::size_t queued_ = 0;
    std::size_t outstanding_ = 0;  // queued or running, over all keys
    std::uint64_t refused_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace strata::auth
