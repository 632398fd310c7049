#include "auth/audit.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace strata::auth {

std::string clip_field(std::string_view s, std::size_t max) {
    if (s.size() <= max) return std::string(s);
    std::size_t cut = max;
    // Back to the start of a UTF-8 sequence, so that the cut does not turn
    // a valid character into a replacement one.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    std::string out(s.substr(0, cut));
    out += "...[truncated, " + std::to_string(s.size()) + " bytes]";
    return out;
}

std::string format_audit_line(const audit_event& e, std::chrono::system_clock::time_point t, std::size_t max_field) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[80];  // room for any int the fields could hold (-Wformat-truncation)
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    nlohmann::ordered_json j;
    j["time"] = when;
    j["identity"] = e.identity.empty() ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(clip_field(e.identity, max_field));
    j["roles"] = e.roles != nullptr ? nlohmann::ordered_json(*e.roles) : nlohmann::ordered_json::array();
    j["client_id"] = clip_field(e.client_id, max_field);
    j["address"] = e.address;
    if (!e.origin_identity.empty() || !e.origin_broker.empty())
        j["origin"] = {{"identity", clip_field(e.origin_identity, max_field)},
                       {"broker", clip_field(e.origin_broker, max_field)}};
    j["action"] = e.action;
    if (!e.topic.empty()) j["topic"] = clip_field(e.topic, max_field);
    j["outcome"] = e.outcome;
    if (!e.reason.empty()) j["reason"] = clip_field(e.reason, max_field);
    if (e.suppressed != 0) j["suppressed"] = e.suppressed;
    // Invalid UTF-8 (a client's bytes) is replaced rather than thrown on.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void audit_limiter::refill(bucket& b, double rate, clock::time_point now) const {
    const double dt = std::chrono::duration<double>(now - b.last).count();
    if (dt > 0) {
        b.tokens = std::min<double>(rate, b.tokens + dt * rate);
        b.last = now;
    }
}

bool audit_limiter::admit(const audit_subject& who, clock::time_point now) {
    const std::uint32_t rate = per_second();
    if (rate == 0) return true;
    std::string key = who.identity.empty() ? "a:" + who.address : "i:" + who.identity;
    std::lock_guard lock(mutex_);
    auto [it, fresh] = buckets_.try_emplace(std::move(key));
    bucket& b = it->second;
    if (fresh) {
        b.who = who;
        b.tokens = rate;
        b.last = now;
    }
    refill(b, rate, now);
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return true;
    }
    ++b.suppressed;
    ++suppressed_total_;
    return false;
}

std::vector<audit_limiter::summary> audit_limiter::take_summaries(clock::time_point now) {
    std::vector<summary> out;
    const double rate = per_second();
    std::lock_guard lock(mutex_);
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        bucket& b = it->second;
        if (b.suppressed != 0) {
            out.push_back({b.who, b.suppressed});
            b.suppressed = 0;
        }
        refill(b, rate, now);
        // A full bucket with nothing to report is what a new one would be.
        if (b.tokens >= rate) it = buckets_.erase(it);
        else ++it;
    }
    return out;
}

std::uint64_t audit_limiter::suppressed_total() const {
    std::lock_guard lock(mutex_);
    return suppressed_total_;
}

audit_log::audit_log(const std::string& path, audit_rotation rotation, std::size_t max_pending,
                     std::size_t max_pending_bytes)
    : path_(path), rotation_(rotation), max_pending_(max_pending), max_pending_bytes_(max_pending_bytes) {
    if (!open_file()) throw audit_error("cannot open audit log '" + path + "': " + std::strerror(errno));
    writer_ = std::thread([this] { run(); });
}

audit_log::~audit_log() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
    if (file_ != nullptr) std::fclose(file_);
}

bool audit_log::open_file() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    struct stat st {};
    size_ = ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    file_ = ::fdopen(fd, "a");
    if (file_ == nullptr) {
        const int err = errno;
        ::close(fd);
        errno = err;
        return false;
    }
    return true;
}

void audit_log::rotate() {
    if (file_ != nullptr) {
        std::fclose(file_);
        file_ = nullptr;
    }
    const auto numbered = [this](std::uint32_t i) { return path_ + "." + std::to_string(i); };
    if (rotation_.keep == 0) {
        ::unlink(path_.c_str());
    } else {
        // rename() replaces the target, so the oldest (PATH.keep) goes first.
        for (std::uint32_t i = rotation_.keep; i > 1; --i) ::rename(numbered(i - 1).c_str(), numbered(i).c_str());
        ::rename(path_.c_str(), numbered(1).c_str());
    }
    rotations_.fetch_add(1, std::memory_order_relaxed);
    (void)open_file();  // failing: lines are dropped (counted) until it opens
}

void audit_log::write(std::string line) {
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() >= max_pending_ || pending_bytes_ + line.size() > max_pending_bytes_) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        pending_bytes_ += line.size();
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
        pending_bytes_ = 0;
        lock.unlock();
        if (file_ == nullptr) (void)open_file();  // a rotation that could not open the new file
        std::uint64_t n_written = 0;
        for (const auto& line : batch) {
            const std::uint64_t bytes = line.size() + 1;
            if (rotation_.max_bytes != 0 && size_ > 0 && size_ + bytes > rotation_.max_bytes) rotate();
            if (file_ == nullptr) {
                dropped_.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            std::fwrite(line.data(), 1, line.size(), file_);
            std::fputc('\n', file_);
            size_ += bytes;
            ++n_written;
        }
        // Written through to the kernel per batch, so that a crash loses at
        // most what was still queued.
        if (file_ != nullptr) std::fflush(file_);
        written_.fetch_add(n_written, std::memory_order_relaxed);
        const auto n = batch.size();
        batch.clear();
        lock.lock();
        flushed_total_ += n;
        done_.notify_all();
    }
}

}  // namespace strata::auth
