// Start-up recovery of retained messages: open the store and load() every
// record, as the broker does before it accepts connections.
//
//   bench_recovery [--count N] [--sessions S] [--queued Q] [--dir D] [--warm] [--rebuild]
//                  [--crashed] [--create-only]
//
// The store (default 1,000,000 retained messages on ISA-95-like topics with
// ~20-byte JSON payloads) is created in D (default $TMPDIR/strata-bench-
// recovery-<N>) the first time and reused afterwards. Before timing, the
// store's files are dropped from the page cache (posix_fadvise DONTNEED on
// our files only, nothing global), so the figure includes reading from
// disk; --warm skips that. Prints one line.
//
// --sessions S adds S persistent sessions (never expiring, disconnected),
// each with one subscription and Q (default 2) queued QoS 1 messages, as
// plant devices that went offline leave them. --create-only builds the
// store and exits (benchmarks/recovery then times the broker itself on it).
//
// --crashed builds the store as a kill -9 leaves it (written, synced, never
// closed: the memtables' content only in the WAL) and exits; run again
// without it to time the recovery including the WAL replay.
#include "persistence/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace sp = strata::persistence;
using clock_type = std::chrono::steady_clock;

namespace {

// enterprise/site/area/line/cell/equipment/<data>: 4 sites x 5 areas x
// 10 lines x 10 cells x 10 machines = 20,000 machines, 50 data points each.
const char* const data_points[] = {
    "temperature", "pressure",        "vibration",  "speed",         "torque",     "current",
    "voltage",     "power",           "energy",     "flow",          "level",      "humidity",
    "state",       "mode",            "alarm",      "fault-code",    "cycle-time", "cycle-count",
    "good-count",  "reject-count",    "scrap-rate", "oee",           "availability",
    "performance", "quality",         "setpoint",   "feed-rate",     "spindle-load",
    "tool-wear",   "tool-id",         "program",    "operator",      "shift",      "batch",
    "order",       "material",        "recipe",     "door-open",     "e-stop",     "heartbeat",
    "firmware",    "ip-address",      "uptime",     "downtime",      "mtbf",       "mttr",
    "coolant-temp", "oil-pressure",   "belt-speed", "position"};
constexpr std::size_t points = sizeof(data_points) / sizeof(data_points[0]);

std::string topic_of(std::uint64_t i) {
    auto point = i % points;
    auto machine = i / points;
    auto eq = machine % 10, cell = machine / 10 % 10, line = machine / 100 % 10, area = machine / 1000 % 5,
         site = machine / 5000;
    static const char* const areas[] = {"press-shop", "body-shop", "paint-shop", "assembly", "logistics"};
    return "acme/site-" + std::to_string(site) + "/" + areas[area] + "/line-" + std::to_string(line) + "/cell-" +
           std::to_string(cell) + "/machine-" + std::to_string(eq) + "/" + data_points[point];
}

// Persistent sessions of offline devices with queued messages.
void add_sessions(sp::store& s, std::uint64_t sessions, std::uint64_t queued) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    constexpr std::uint64_t chunk = 1000;
    for (std::uint64_t i = 0; i < sessions;) {
        std::vector<sp::operation> ops;
        for (std::uint64_t end = std::min(sessions, i + chunk); i < end; ++i) {
            char id[32];
            std::snprintf(id, sizeof id, "plc-%06llu", static_cast<unsigned long long>(i));
            sp::stored_session ss;
            ss.client_id = id;
            ss.expiry_interval = 0xFFFFFFFF;
            ss.disconnected_at_ms = now_ms;
            ops.push_back(sp::put_session{ss});
            ops.push_back(sp::put_subscription{id, sp::stored_subscription{topic_of(i * points) + "/cmd/#", 1, 0}});
            for (std::uint64_t q = 1; q <= queued; ++q) {
                sp::stored_delivery d;
                d.client_id = id;
                d.seq = q;
                d.msg.topic = topic_of(i * points) + "/cmd/setpoint";
                d.msg.payload = "{\"value\":42.5}";
                d.msg.qos = 1;
                d.msg.properties.assign(1, '\0');
                d.qos = 1;
                ops.push_back(sp::put_delivery{std::move(d)});
            }
        }
        s.submit(std::move(ops));
        while (s.stats().pending_operations > 200000) usleep(1000);
    }
}

void create(const std::string& dir, std::uint64_t count, std::uint64_t sessions, std::uint64_t queued, bool crashed) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    sp::options o;
    o.path = dir;
    o.mode = sp::durability::none;  // bulk load; close() syncs and flushes
    auto s = sp::store::open(o);
    constexpr std::uint64_t chunk = 10000;
    for (std::uint64_t i = 0; i < count;) {
        std::vector<sp::operation> ops;
        ops.reserve(chunk);
        for (std::uint64_t end = std::min(count, i + chunk); i < end; ++i) {
            sp::stored_message m;
            m.topic = topic_of(i);
            char payload[64];
            std::snprintf(payload, sizeof payload, "{\"v\":%llu.%02llu,\"q\":192}",
                          static_cast<unsigned long long>(i % 1000), static_cast<unsigned long long>(i % 97));
            m.payload = payload;
            m.qos = 1;
            m.retain = true;
            m.properties.assign(1, '\0');  // an empty MQTT 5 property block, as the broker stores one
            ops.push_back(sp::put_retained{std::move(m)});
        }
        s->submit(std::move(ops));
        // Keep the pending list bounded (durability none acknowledges at once).
        while (s->stats().pending_operations > 200000) usleep(1000);
    }
    add_sessions(*s, sessions, queued);
    if (crashed) {
        // Wait until everything is written, sync the WAL with one synced
        // write, and die without closing.
        while (s->stats().pending_operations > 0) usleep(1000);
        std::FILE* f = std::fopen((fs::path(dir) / "BENCH_COMPLETE").c_str(), "w");
        if (f) std::fclose(f);
        std::fprintf(stderr, "bench_recovery: store left as after a crash in %s; run again to time recovery\n",
                     dir.c_str());
        std::fflush(nullptr);
        ::_exit(0);
    }
    s->close();
    // Marks a complete store, so an interrupted build is redone.
    std::FILE* f = std::fopen((fs::path(dir) / "BENCH_COMPLETE").c_str(), "w");
    if (f) {
        std::fprintf(f, "%llu\n", static_cast<unsigned long long>(count));
        std::fclose(f);
    }
}

void drop_from_page_cache(const std::string& dir) {
    for (auto& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        int fd = ::open(e.path().c_str(), O_RDONLY);
        if (fd < 0) continue;
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t count = 1'000'000, sessions = 0, queued = 2;
    std::string dir;
    bool warm = false, rebuild = false, crashed = false, create_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--count" && i + 1 < argc) {
            count = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--sessions" && i + 1 < argc) {
            sessions = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--queued" && i + 1 < argc) {
            queued = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--create-only") {
            create_only = true;
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else if (a == "--warm") {
            warm = true;
        } else if (a == "--rebuild") {
            rebuild = true;
        } else if (a == "--crashed") {
            crashed = rebuild = true;
        } else {
            std::fprintf(stderr, "usage: bench_recovery [--count N] [--sessions S] [--queued Q] [--dir D] [--warm] "
                                 "[--rebuild] [--crashed] [--create-only]\n");
            return 64;
        }
    }
    if (dir.empty()) {
        dir = (fs::temp_directory_path() / ("strata-bench-recovery-" + std::to_string(count) +
                                            (sessions > 0 ? "-" + std::to_string(sessions) + "x" + std::to_string(queued) : "")))
                  .string();
    }

    try {
        if (rebuild || !fs::exists(fs::path(dir) / "BENCH_COMPLETE")) {
            auto t0 = clock_type::now();
            create(dir, count, sessions, queued, crashed);
            std::fprintf(stderr, "bench_recovery: created %llu retained messages in %s (%.1f s)\n",
                         static_cast<unsigned long long>(count), dir.c_str(),
                         std::chrono::duration<double>(clock_type::now() - t0).count());
        }
        if (create_only) {
            std::printf("%s\n", dir.c_str());
            return 0;
        }
        if (!warm) drop_from_page_cache(dir);

        std::vector<sp::stored_message> retained;
        retained.reserve(count);
        auto t0 = clock_type::now();
        sp::options o;
        o.path = dir;
        o.create_if_missing = false;
        auto s = sp::store::open(o);
        auto t1 = clock_type::now();
        sp::recovery_visitor v;
        v.retained = [&](sp::stored_message&& m) { retained.push_back(std::move(m)); };
        auto r = s->load(v, 0);
        auto t2 = clock_type::now();
        auto open_s = std::chrono::duration<double>(t1 - t0).count();
        auto load_s = std::chrono::duration<double>(t2 - t1).count();
        std::printf("bench_recovery: %llu retained messages recovered in %.3f s (open %.3f s + load %.3f s, %s page cache)\n",
                    static_cast<unsigned long long>(r.loaded.retained), open_s + load_s, open_s, load_s,
                    warm ? "warm" : "cold");
        return r.loaded.retained == count ? 0 : 1;
    } catch (const sp::store_error& e) {
        std::fprintf(stderr, "bench_recovery: %s\n", e.what());
        return 2;
    }
}
