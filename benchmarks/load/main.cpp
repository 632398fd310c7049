// strata-bench: an MQTT 3.1.1/5.0 load generator for comparing brokers.
// See --help (options.cpp) for the scenarios and the measuring method.
#include "benchmarks/load/options.hpp"
#include "benchmarks/load/runner.hpp"

#include <csignal>
#include <cstdio>

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const strata::bench::options opts = strata::bench::parse_options(argc, argv);
    const strata::bench::result res = strata::bench::run(opts);
    const std::string line = strata::bench::to_json(opts, res);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (!res.ok) std::fprintf(stderr, "strata-bench: %s\n", res.error.c_str());
    return res.ok ? 0 : 1;
}
