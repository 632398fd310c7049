// strata: the command line. Parses options and config, then wires the
// libraries together; everything else lives in the libraries.
#include "auth/crypto.hpp"
#include "auth/password_file.hpp"
#include "auth/policy.hpp"
#include "broker/config.hpp"
#include "broker/hosts/bridge_host.hpp"
#include "broker/hosts/opcua_check.hpp"
#include "broker/hosts/sparkplug_check.hpp"
#include "broker/net/server.hpp"
#include "namespace/model.hpp"
#include "persistence/store.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr const char* usage = R"(Usage: strata [--config FILE] [--check-config | --check-data]
       strata namespace check MODEL
       strata namespace explain [--retain] MODEL TOPIC [PAYLOAD_FILE]
       strata passwd [--iterations N] FILE USER
       strata passwd --delete FILE USER
       strata --help | --version

A Unified Namespace MQTT broker (MQTT 3.1.1 and 5.0).

Options:
  -c, --config FILE   configuration file (YAML); without it the built-in
                      defaults apply: one listener on 127.0.0.1:1883, data in ./data
      --check-config  check the config and exit: the file, its namespace model
                      and whether what the OPC UA sources publish fits the model
                      (prints "FILE: ok", exit 0; or the error with file, line
                      and key, exit 2); the broker need not be stopped
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

Password file (docs/security.md):
  passwd [--iterations N] FILE USER
        adds USER to FILE (created when missing) or replaces its password.
        The password is read from the terminal without echo (asked twice),
        or, when standard input is not a terminal, from its first line;
        never from the command line. N: PBKDF2 iterations (default 210000,
        at least 1000)
  passwd --delete FILE USER
        removes USER (exit 1 when USER is not in FILE)

Signals: SIGINT/SIGTERM shut down gracefully; SIGHUP reads the config file
again and applies what can change live, without dropping clients: limits,
access rules, auth (identity limits, password file), roles and users with the
namespace model, audit, alerts, bridges and OPC UA sources (added, removed,
changed; a bridge keeps its backlog), TLS certificate files, the log level.
What needs a restart (listeners, persistence, threads, broker_id,
auth.password_checks, auth.command_subtrees) is logged as "needs restart: KEY"
and left as it runs. A config that does not load or fit changes nothing (the
error is logged); a model or password file that does not load keeps the old
one. POST /api/v1/reload does the same (docs/operations.md, Live reload).

Persistence (persistence: in the config): retained messages and persistent
sessions are read back from the data directory before the listeners open, so
the broker accepts connections only once recovery is complete.

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a bad command
line, a bad config, a namespace model or password file that does not load, a
data directory that cannot be opened (in use by another process, not a Strata
store, a newer format, corrupt) or a listener that cannot be opened.
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

int check_config(const strata::broker::config& cfg, const std::string& path) {
    try {
        std::shared_ptr<const strata::ns::model> model;
        if (!cfg.namespace_model.empty()) {
            model = strata::ns::model::load(cfg.namespace_model);
            for (const auto& w : model->warnings()) std::printf("warning: %s\n", w.c_str());
            strata::broker::hosts::check_opcua_fits_model(cfg, *model);
            strata::broker::hosts::check_sparkplug_fits_model(cfg, *model);
        }
        // What the broker checks against the model when it installs it:
        // grants that name levels and classes, bridge rules that name classes.
        const strata::auth::policy roles(cfg.policy, model);
        strata::broker::hosts::check_bridge_classes(cfg.bridges, model.get());
    } catch (const strata::ns::model_error& e) {
        return fail(e.what());
    } catch (const strata::broker::config_error& e) {
        return fail(e.what());
    } catch (const strata::auth::policy_error& e) {
        return fail(e.what());
    }
    std::printf("%s: ok\n", path.empty() ? "<defaults>" : path.c_str());
    return 0;
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

// Reads a password: from the terminal without echo (twice, to catch typos),
// or the first line of a pipe. Empty result: an error was printed.
std::optional<std::string> read_password() {
    if (::isatty(STDIN_FILENO) == 0) {
        std::string line;
        if (!std::getline(std::cin, line)) {
            fail("no password on standard input");
            return std::nullopt;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
    termios old{};
    if (::tcgetattr(STDIN_FILENO, &old) != 0) {
        fail(std::string("cannot read the terminal: ") + std::strerror(errno));
        return std::nullopt;
    }
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::string first, second;
    std::fputs("Password: ", stderr);
    const bool got_first = static_cast<bool>(std::getline(std::cin, first));
    std::fputs("\nReenter password: ", stderr);
    const bool got_second = got_first && static_cast<bool>(std::getline(std::cin, second));
    std::fputs("\n", stderr);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    const bool same = got_second && first == second;
    strata::auth::cleanse(second);
    if (!same) {
        strata::auth::cleanse(first);
        fail(got_second ? "the passwords do not match" : "no password entered");
        return std::nullopt;
    }
    return first;
}

int passwd_command(int argc, char** argv) {
    namespace sa = strata::auth;
    bool remove = false;
    std::uint32_t iterations = sa::default_iterations;
    std::vector<std::string> args;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--delete" || arg == "-D") {
            remove = true;
        } else if (arg == "--iterations") {
            if (i + 1 >= argc) return fail("--iterations needs a number");
            const std::string n = argv[++i];
            const auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), iterations);
            if (ec != std::errc{} || ptr != n.data() + n.size() || iterations < sa::min_iterations)
                return fail("--iterations: expected a number of at least " + std::to_string(sa::min_iterations) +
                            " (got '" + n + "')");
        } else if (arg.starts_with("-")) {
            return fail("unknown passwd option '" + arg + "' (see --help)");
        } else {
            args.push_back(arg);
        }
    }
    if (args.size() != 2) return fail("usage: strata passwd [--delete] [--iterations N] FILE USER");
    const std::string& path = args[0];
    const std::string& user = args[1];
    if (auto why = sa::check_user_name(user); !why.empty()) return fail(why);

    sa::password_file file;
    try {
        if (std::filesystem::exists(path)) {
            file = sa::password_file::load(path);
        } else if (remove) {
            return fail("password file '" + path + "' does not exist");
        }
        if (remove) {
            if (!file.remove(user)) {
                std::fprintf(stderr, "strata: user '%s' is not in '%s'\n", user.c_str(), path.c_str());
                return 1;
            }
        } else {
            auto password = read_password();
            if (!password) return 2;
            if (password->empty()) return fail("the password must not be empty");
            file.set(sa::make_entry(user, *password, iterations));
            sa::cleanse(*password);
        }
        file.save(path);
    } catch (const sa::password_error& e) {
        return fail(e.what());
    }
    return 0;
}

int strata_main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "namespace") == 0) return namespace_command(argc, argv);
    if (argc > 1 && std::strcmp(argv[1], "passwd") == 0) return passwd_command(argc, argv);

    std::string config_path;
    bool check_only = false;
    bool check_config_only = false;
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
        } else if (arg == "--check-config") {
            check_config_only = true;
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

    if (check_config_only && check_only) return fail("--check-config and --check-data are separate runs");
    if (check_config_only) return check_config(cfg, config_path);
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

    const bool loopback_anonymous = cfg.allow_anonymous && cfg.anonymous_loopback_only;
    try {
        // Constructing the server loads the password file and opens the
        // audit log (config_error when unusable).
        strata::broker::net::server srv(std::move(cfg));
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
            // The model may have changed while the broker was down: what it
            // refuses now is not served from the store (as after a reload).
            if (const auto* m = srv.core().model()) srv.core().recheck_retained(*m, "start-up");
        }
        if (loopback_anonymous) {
            spdlog::info("auth.allow_anonymous is not set: clients without credentials are accepted on loopback "
                         "listeners only");
        }
        srv.listen();
        const int rc = srv.run();
        // After the network stopped, before the io_contexts go: what the
        // last connections changed is flushed to disk.
        if (store) store->close();
        return rc;
    } catch (const strata::broker::net::listen_error& e) {
        return fail(e.what());
    } catch (const strata::persistence::store_error& e) {
        return fail(e.what());
    } catch (const strata::broker::config_error& e) {
        return fail(e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    // Whatever a library throws that its caller did not expect (a model or
    // payload file, the store, memory) ends as one line and exit code 2,
    // never as an abort.
    try {
        return strata_main(argc, argv);
    } catch (const std::exception& e) {
        return fail(std::string("internal error: ") + e.what());
    } catch (...) {
        return fail("internal error: unknown exception");
    }
}
