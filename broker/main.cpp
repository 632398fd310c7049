// strata: the command line. Parses options and config, then wires the
// libraries together; everything else lives in the libraries.
#include "broker/config.hpp"
#include "broker/server.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr const char* usage = R"(Usage: strata [--config FILE]
       strata --help | --version

A Unified Namespace MQTT broker (MQTT 3.1.1 and 5.0).

Options:
  -c, --config FILE   configuration file (YAML); without it the built-in
                      defaults apply: one listener on 127.0.0.1:1883, data in ./data
  -h, --help          show this help and exit
  -V, --version       show the version and exit

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a bad command
line, a bad config or a listener that cannot be opened.
)";

int fail(const std::string& msg) {
    std::fprintf(stderr, "strata: %s\n", msg.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
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

    auto logger = spdlog::stderr_color_mt("strata");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));

    try {
        strata::broker::server srv(std::move(cfg));
        srv.listen();
        return srv.run();
    } catch (const strata::broker::listen_error& e) {
        return fail(e.what());
    }
}
