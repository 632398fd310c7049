// Test helpers for the store: temporary directories, a visitor that
// collects everything, waiting for durability with a bound, raw RocksDB
// access to plant bad data.
#pragma once

#include "persistence/store.hpp"

#include <rocksdb/db.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace strata::persistence::test {

namespace fs = std::filesystem;

// A fresh directory under the temp dir, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "strata-persistence-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    [[nodiscard]] const fs::path& path() const { return path_; }
    // The store's directory (not created: open() creates it).
    [[nodiscard]] std::string data() const { return (path_ / "data").string(); }

private:
    fs::path path_;
};

inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline options make_options(const std::string& path, durability mode = durability::always) {
    options o;
    o.path = path;
    o.mode = mode;
    o.batch_interval = std::chrono::milliseconds(5);
    return o;
}

// Everything load() hands over, in the order it came.
struct collected {
    std::vector<stored_message> retained;
    std::vector<stored_session> sessions;
    std::vector<std::pair<std::string, stored_subscription>> subscriptions;
    std::vector<stored_delivery> deliveries;
    std::vector<std::pair<std::string, std::uint16_t>> inbound_qos2;
    std::vector<stored_session> expired_sessions;
    load_result result;
};

// retained_concurrently: the retained messages are handed over on a thread
// of their own (recovery_visitor::retained_concurrently), as the broker loads.
inline collected load_all(store& s, std::int64_t now = now_ms(), bool retained_concurrently = false) {
    collected c;
    recovery_visitor v;
    v.retained_concurrently = retained_concurrently;
    v.retained = [&](stored_message&& m) { c.retained.push_back(std::move(m)); };
    v.session = [&](stored_session&& x) { c.sessions.push_back(std::move(x)); };
    v.subscription = [&](const std::string& id, stored_subscription&& x) {
        c.subscriptions.emplace_back(id, std::move(x));
    };
    v.delivery = [&](stored_delivery&& d) { c.deliveries.push_back(std::move(d)); };
    v.inbound_qos2 = [&](const std::string& id, std::uint16_t p) { c.inbound_qos2.emplace_back(id, p); };
    v.expired_session = [&](stored_session&& x) { c.expired_sessions.push_back(std::move(x)); };
    c.result = s.load(v, now);
    return c;
}

// Reopens the store at `path` and loads everything.
inline collected reopen_and_load(const std::string& path, std::int64_t now = now_ms(),
                                 bool retained_concurrently = false) {
    auto s = store::open(make_options(path));
    return load_all(*s, now, retained_concurrently);
}

// Submits and waits (bounded) for the durability callback; returns ok.
inline bool submit_and_wait(store& s, std::vector<operation> ops,
                            std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto done = std::make_shared<std::promise<bool>>();
    auto f = done->get_future();
    auto t = s.submit(std::move(ops));
    s.when_durable(t, [done](bool ok) { done->set_value(ok); });
    if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("durability callback timed out");
    return f.get();
}

// Bounded poll: true once pred() holds, false after `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

inline stored_message message(std::string topic, std::string payload, std::uint8_t qos = 1) {
    stored_message m;
    m.topic = std::move(topic);
    m.payload = std::move(payload);
    m.qos = qos;
    return m;
}

// Raw RocksDB access to a closed store, to plant what the store never writes.
class raw_db {
public:
    explicit raw_db(const std::string& path) {
        rocksdb::DBOptions o;
        std::vector<std::string> names;
        check(rocksdb::DB::ListColumnFamilies(o, path, &names));
        std::vector<rocksdb::ColumnFamilyDescriptor> desc;
        for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
        rocksdb::DB* db = nullptr;
        check(rocksdb::DB::Open(o, path, desc, &handles_, &db));
        db_.reset(db);
        for (std::size_t i = 0; i < names.size(); ++i) by_name_[names[i]] = handles_[i];
    }
    ~raw_db() {
        for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
        db_->Close().PermitUncheckedError();
    }
    void put(const std::string& cf, const std::string& key, const std::string& value) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        check(db_->Put(wo, by_name_.at(cf), key, value));
    }
    [[nodiscard]] bool has(const std::string& cf, const std::string& key) {
        std::string v;
        return db_->Get(rocksdb::ReadOptions(), by_name_.at(cf), key, &v).ok();
    }

private:
    static void check(const rocksdb::Status& s) {
        if (!s.ok()) throw std::runtime_error(s.ToString());
    }
    std::unique_ptr<rocksdb::DB> db_;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
};

}  // namespace strata::persistence::test
