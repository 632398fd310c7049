// strata: the command line. Parses options and config, then wires the
// libraries together; everything else lives in the libraries.
#include "broker/config.hpp"
#include "broker/server.hpp"
#include "namespace/model.hpp"
#include "persistence/store.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr const char* usage = R"(Usage: strata [--config FILE] [--check-data]
       strata namespace check MODEL
       strata namespace explain [--retain] MODEL TOPIC [PAYLOAD_FILE]
       strata --help | --version

A Unified Namespace MQTT broker (MQTT 3.1.1 and 5.0).

Options:
  -c, --config FILE   configuration file (YAML); without it the built-in
                      defaults apply: one listener on 127.0.0.1:1883, data in ./data
      --check-data    verify the data directory of the config (every record
                      decodes), print what it holds and exit (0: sound, 2: not);
                      run it while the broker is stopped
  -h, --help          show this help and exit
  -V, --version       show the version and exit

Namespace model (deploy/namespace/README.md):
  namespace check MODEL
        loads the model file and prints "MODEL: ok" and any warnings (exit 0),
        or the error with file, line and key (exit 2)
  namespace explain [--retain] MODEL TOPIC [PAYLOAD_FILE]
        shows how TOPIC is read level by level, its class, schema, retain rule
        and enforcement mode, and the verdict (the payload is checked when a
        file is given; --retain: as a retained publish). Exit 0: the message
        would pass; 1: it would be refused (rejected, warned or quarantined);
        2: bad model or unreadable payload file

Signals: SIGINT/SIGTERM shut down gracefully; SIGHUP reloads the namespace
model (a model that does not load is logged and the old one stays).

Persistence (persistence: in the config): retained messages and persistent
sessions are read back from the data directory before the listeners open, so
the broker accepts connections only once recovery is complete.

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a bad command
line, a bad config, a namespace model that does not load, a data directory
that cannot be opened (in use by another process, not a Strata store, a newer
format, corrupt) or a listener that cannot be opened.
)";

int fail(const std::string& msg) {
    std::fprintf(stderr, "strata: %s\n", msg.c_str());
    return 2;
}

int namespace_check(const std::string& path) {
    const auto report = strata::ns::model::lint(path);
    if (!report.ok()) return fail(report.error);
    std::printf("%s: ok\n", path.c_str());
    for (const auto& w : report.warnings) std::printf("warning: %s\n", w.c_str());
    return 0;
}

int namespace_explain(int argc, char** argv, int first) {
    bool retain = false;
    std::vector<std::string> args;
    for (int i = first; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--retain") {
            retain = true;
        } else {
            args.push_back(arg);
        }
    }
    if (args.size() < 2 || args.size() > 3)
        return fail("usage: strata namespace explain [--retain] MODEL TOPIC [PAYLOAD_FILE]");
    std::shared_ptr<const strata::ns::model> m;
    try {
        m = strata::ns::model::load(args[0]);
    } catch (const strata::ns::model_error& e) {
        return fail(e.what());
    }
    std::optional<std::string> payload;
    if (args.size() == 3) {
        std::ifstream in(args[2], std::ios::binary);
        if (!in) return fail("cannot read payload file '" + args[2] + "': " + std::strerror(errno));
        payload.emplace(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const std::string& topic = args[1];
    std::fputs(m->explain(topic, payload ? std::optional<std::string_view>(*payload) : std::nullopt, retain).c_str(),
               stdout);
    // Without a payload file only the topic (and retain rule) can fail.
    const auto v = m->evaluate(topic, payload ? std::string_view(*payload) : std::string_view(), retain);
    const bool payload_unchecked = !payload && v.code == strata::ns::reason_code::payload_invalid;
    if (payload_unchecked)
        std::fputs("note      no PAYLOAD_FILE given: the exit code reflects the topic and retain rule only\n", stdout);
    return v.violation() && !payload_unchecked ? 1 : 0;
}

strata::persistence::options store_options(const strata::broker::persistence_config& p) {
    using mode = strata::broker::persistence_config::mode;
    strata::persistence::options o;
    o.path = p.path;
    o.mode = p.durability == mode::always ? strata::persistence::durability::always
             : p.durability == mode::none ? strata::persistence::durability::none
                                          : strata::persistence::durability::batch;
    o.batch_interval = std::chrono::milliseconds(p.batch_interval_ms);
    return o;
}

int check_data(const strata::broker::config& cfg) {
    auto o = store_options(cfg.persistence);
    o.create_if_missing = false;
    try {
        auto st = strata::persistence::store::open(o);
        const auto c = st->check();
        st->close();
        std::printf("%s: ok: %llu retained messages, %llu sessions, %llu subscriptions, %llu queued or in-flight "
                    "messages, %llu inbound QoS 2 ids\n",
                    o.path.c_str(), static_cast<unsigned long long>(c.retained),
                    static_cast<unsigned long long>(c.sessions), static_cast<unsigned long long>(c.subscriptions),
                    static_cast<unsigned long long>(c.deliveries), static_cast<unsigned long long>(c.inbound_qos2));
        return 0;
    } catch (const strata::persistence::store_error& e) {
        return fail(e.what());
    }
}

int namespace_command(int argc, char** argv) {
    const std::string sub = argc > 2 ? argv[2] : "";
    if (sub == "check") {
        if (argc != 4) return fail("usage: strata namespace check MODEL");
        return namespace_check(argv[3]);
    }
    if (sub == "explain") return namespace_explain(argc, argv, 3);
    return fail("unknown namespace command '" + sub + "' (expected check or explain; see --help)");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "namespace") == 0) return namespace_command(argc, argv);

    std::string config_path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage, stdout);
            return 0;
        }
        if (arg == "-V" || arg == "--version") {
            std::printf("strata %s\n", STRATA_VERSION);
            return 0;
        }
        if (arg == "-c" || arg == "--config") {
            if (i + 1 >= argc) return fail(arg + " needs a file name (see --help)");
            config_path = argv[++i];
        } else if (arg == "--check-data") {
            check_only = true;
        } else if (arg.rfind("--config=", 0) == 0) {
            config_path = arg.substr(std::strlen("--config="));
        } else {
            return fail("unknown argument '" + arg + "' (see --help)");
        }
    }

    strata::broker::config cfg;
    try {
        cfg = config_path.empty() ? strata::broker::parse_config("", "<defaults>")
                                  : strata::broker::load_config(config_path);
    } catch (const strata::broker::config_error& e) {
        return fail(e.what());
    }

    if (check_only) {
        if (!cfg.persistence.enabled) return fail("persistence is disabled in the config (persistence.enabled: false)");
        return check_data(cfg);
    }

    auto logger = spdlog::stderr_color_mt("strata");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));

    // A model that does not load stops the broker before it listens: a UNS
    // that runs unchecked because of a typo is worse than one that is down.
    std::shared_ptr<const strata::ns::model> model;
    if (!cfg.namespace_model.empty()) {
        try {
            model = strata::ns::model::load(cfg.namespace_model);
        } catch (const strata::ns::model_error& e) {
            return fail(e.what());
        }
        for (const auto& w : model->warnings()) spdlog::warn("namespace model: {}", w);
        spdlog::info("namespace model loaded from {}", cfg.namespace_model);
    }

    // The store is opened, and read back, before anything listens.
    std::unique_ptr<strata::persistence::store> store;
    if (cfg.persistence.enabled) {
        try {
            store = strata::persistence::store::open(store_options(cfg.persistence));
        } catch (const strata::persistence::store_error& e) {
            return fail(e.what());
        }
    } else {
        spdlog::warn("persistence disabled: retained messages and sessions are lost at restart");
    }

    try {
        strata::broker::server srv(std::move(cfg));
        srv.core().set_model(std::move(model));
        if (store) {
            srv.core().use_store(store.get());
            const auto t0 = std::chrono::steady_clock::now();
            srv.core().set_recovering(true);
            const auto r = srv.core().recover(srv.executor());
            srv.core().set_recovering(false);
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
            spdlog::info("recovered from {} in {} ms: {} retained messages, {} sessions, {} subscriptions, {} "
                         "queued messages, {} inbound QoS 2 ids; removed {} expired retained messages and {} expired "
                         "sessions; {} wills published",
                         store->opts().path, ms, r.loaded.retained, r.loaded.sessions, r.loaded.subscriptions,
                         r.loaded.deliveries, r.loaded.inbound_qos2, r.purged.retained, r.purged.sessions,
                         r.wills_published);
        }
        srv.listen();
        const int rc = srv.run();
        // After the network stopped, before the io_contexts go: what the
        // last connections changed is flushed to disk.
        if (store) store->close();
        return rc;
    } catch (const strata::broker::listen_error& e) {
        return fail(e.what());
    } catch (const strata::persistence::store_error& e) {
        return fail(e.what());
    }
}
