#include "auth/fair_queue.hpp"

#include <algorithm>
#include <exception>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace strata::auth {

fair_queue::fair_queue(options o)
    : per_key_(std::max<std::size_t>(o.per_key, 1)), total_(std::max<std::size_t>(o.total, 1)) {
    const std::size_t n = std::max<std::size_t>(o.threads, 1);
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        threads_.emplace_back([this, nice = o.nice] {
            if (nice != 0) {
                // On Linux a thread has a niceness of its own. Failing to
                // change it leaves the worker as it was: ignored on purpose.
                const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
                const int now = ::getpriority(PRIO_PROCESS, tid);
                (void)::setpriority(PRIO_PROCESS, tid, std::min(now + nice, 19));
            }
            run();
        });
    }
}

fair_queue::~fair_queue() { stop(); }

bool fair_queue::post(const std::string& key, std::function<void()>&& job) {
    std::function<void()> nothing;
    return post(key, std::move(job), std::move(nothing));
}

bool fair_queue::post(const std::string& key, std::function<void()>&& job, std::function<void()>&& then) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        const auto found = keys_.find(key);
        if (outstanding_ >= total_ || (found != keys_.end() && found->second.outstanding >= per_key_)) {
            ++refused_;
            return false;
        }
        auto& k = found != keys_.end() ? found->second : keys_[key];
        ++k.outstanding;
        ++outstanding_;
        ++queued_;
        if (k.waiting.empty()) turn_.push_back(key);
        k.waiting.emplace_back(std::move(job), std::move(then));
    }
    wake_.notify_one();
    return true;
}

void fair_queue::stop() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
        threads.swap(threads_);
    }
    wake_.notify_all();
    for (auto& t : threads) t.join();
    // The queued jobs are dropped unrun: their completions would post to
    // io_contexts that are about to stop. Destroyed outside the lock (what
    // they hold may have destructors of its own).
    std::unordered_map<std::string, per_key> dropped;
    {
        std::lock_guard lock(mutex_);
        dropped.swap(keys_);
        turn_.clear();
        queued_ = 0;
        outstanding_ = 0;
    }
}

std::size_t fair_queue::queued() const {
    std::lock_guard lock(mutex_);
    return queued_;
}

std::uint64_t fair_queue::refused() const noexcept {
    std::lock_guard lock(mutex_);
    return refused_;
}

void fair_queue::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !turn_.empty(); });
        if (stopping_) return;
        std::string key = std::move(turn_.front());
        turn_.pop_front();
        // keys_ is node-based: `k` stays valid while its job counts as
        // outstanding, whatever other keys come and go meanwhile.
        auto& k = keys_.at(key);
        auto [job, then] = std::move(k.waiting.front());
        k.waiting.pop_front();
        --queued_;
        // Back of the line: every other key with a job waiting goes first.
        if (!k.waiting.empty()) turn_.push_back(key);
        lock.unlock();
        try {
            job();
        } catch (...) {
            // A job reports its own errors; one that throws must not take
            // the worker down with it.
        }
        job = nullptr;  // whatever it holds goes before the slot is freed
        lock.lock();
        --outstanding_;
        if (--k.outstanding == 0 && k.waiting.empty()) keys_.erase(key);
        if (then) {
            lock.unlock();
            try {
                then();
            } catch (...) {
                // As for the job.
            }
            then = nullptr;
            lock.lock();
        }
    }
}

}  // namespace strata::auth
