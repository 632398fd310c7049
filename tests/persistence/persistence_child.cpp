// Helper process for test_persistence: what must happen in another process
// (a second open of a locked store; a writer that gets SIGKILLed).
//
//   persistence_child open <path>
//       opens the store; on store_error prints what() and exits 2.
//   persistence_child crash <path> <always|batch>
//       submits records forever; for every ticket reported durable prints
//       "<i>\n" on stdout (a pipe to the test) and waits to be killed.
#include "persistence/store.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <semaphore>
#include <string>

namespace sp = strata::persistence;

namespace {

int open_mode(const std::string& path) {
    try {
        sp::options o;
        o.path = path;
        auto s = sp::store::open(o);
        std::printf("opened\n");
        return 0;
    } catch (const sp::store_error& e) {
        std::printf("%s\n", e.what());
        return 2;
    }
}

void write_all(const std::string& line) {
    std::size_t done = 0;
    while (done < line.size()) {
        auto n = ::write(1, line.data() + done, line.size() - done);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

int crash_mode(const std::string& path, const std::string& mode) {
    sp::options o;
    o.path = path;
    o.mode = mode == "batch" ? sp::durability::batch : sp::durability::always;
    o.batch_interval = std::chrono::milliseconds(5);
    auto s = sp::store::open(o);
    // The offline persistent subscriber the deliveries are queued for.
    sp::stored_session session;
    session.client_id = "offline-subscriber";
    session.expiry_interval = 0xFFFFFFFF;
    session.disconnected_at_ms = 1;
    s->submit(sp::put_session{session});
    // Like a broker with a bounded number of unacknowledged publishes.
    std::counting_semaphore<> window(64);
    for (std::uint64_t i = 1;; ++i) {
        window.acquire();
        std::vector<sp::operation> ops;
        sp::stored_message m;
        m.topic = "acme/dresden/press-shop/line-2/cell-1/press-" + std::to_string(i);
        m.payload = "value-" + std::to_string(i);
        m.qos = 1;
        m.retain = true;
        ops.push_back(sp::put_retained{m});
        sp::stored_delivery d;
        d.client_id = "offline-subscriber";
        d.seq = i;
        d.msg = m;
        d.qos = 1;
        ops.push_back(sp::put_delivery{d});
        auto t = s->submit(std::move(ops));
        s->when_durable(t, [i, &window](bool ok) {
            if (ok) write_all(std::to_string(i) + "\n");
            window.release();
        });
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "open") == 0) return open_mode(argv[2]);
    if (argc >= 4 && std::strcmp(argv[1], "crash") == 0) return crash_mode(argv[2], argv[3]);
    std::fprintf(stderr, "usage: persistence_child open <path> | crash <path> <always|batch>\n");
    return 64;
}
