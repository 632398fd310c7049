#include "auth/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace strata::auth {

std::string format_audit_line(const audit_event& e, std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[40];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    nlohmann::ordered_json j;
    j["time"] = when;
    j["identity"] = e.identity.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.identity);
    j["roles"] = e.roles != nullptr ? nlohmann::ordered_json(*e.roles) : nlohmann::ordered_json::array();
    j["client_id"] = e.client_id;
    j["address"] = e.address;
    j["action"] = e.action;
    if (!e.topic.empty()) j["topic"] = e.topic;
    j["outcome"] = e.outcome;
    if (!e.reason.empty()) j["reason"] = e.reason;
    // Invalid UTF-8 (a client's bytes) is replaced rather than thrown on.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

audit_log::audit_log(const std::string& path, std::size_t max_pending) : max_pending_(max_pending) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw audit_error("cannot open audit log '" + path + "': " + std::strerror(errno));
    file_ = ::fdopen(fd, "a");
    if (file_ == nullptr) {
        const int err = errno;
        ::close(fd);
        throw audit_error("cannot open audit log '" + path + "': " + std::strerror(err));
    }
    writer_ = std::thread([this] { run(); });
}

audit_log::~audit_log() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    std::fclose(file_);
}

void audit_log::write(std::string line) {
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() >= max_pending_) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        pending_.push_back(std::move(line));
        ++queued_total_;
    }
    wake_.notify_one();
}

void audit_log::flush() {
    std::unique_lock lock(mutex_);
    const std::uint64_t target = queued_total_;
    wake_.notify_one();
    done_.wait(lock, [&] { return flushed_total_ >= target; });
}

void audit_log::run() {
    std::vector<std::string> batch;
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (pending_.empty() && stopping_) return;
        batch.swap(pending_);
        lock.unlock();
        for (const auto& line : batch) {
            std::fwrite(line.data(), 1, line.size(), file_);
            std::fputc('\n', file_);
        }
        // Written through to the kernel per batch, so that a crash loses at
        // most what was still queued.
        std::fflush(file_);
        written_.fetch_add(batch.size(), std::memory_order_relaxed);
        const auto n = batch.size();
        batch.clear();
        lock.lock();
        flushed_total_ += n;
        done_.notify_all();
    }
}

}  // namespace strata::auth
