// Writes the fuzz seed corpus: one file per sample packet (every packet
// type, both versions, tests/codec/samples.hpp) plus one stream per version
// with all of them back to back. Each file is checked to decode first.
//   fuzz_gen_corpus tests/fuzz/corpus
#include "broker/codec/codec.hpp"
#include "../codec/samples.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace strata::mqtt;

namespace {
bool write(const std::filesystem::path& file, const std::vector<std::uint8_t>& b) {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return static_cast<bool>(f);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    int written = 0;
    for (const auto v : {protocol_version::v311, protocol_version::v5}) {
        const std::string prefix = v == protocol_version::v5 ? "v5_" : "v311_";
        std::vector<std::uint8_t> stream;
        for (const auto& [name, p] : samples::named(v)) {
            std::vector<std::uint8_t> b;
            encode(p, v, b);
            packet back;
            const decode_result r = decode(b, v, {}, back);
            if (r.status != decode_status::ok || !(back == p)) {
                std::fprintf(stderr, "sample %s%s does not round-trip: %s\n", prefix.c_str(), name.c_str(), r.detail);
                return 1;
            }
            if (!write(dir / (prefix + name), b)) return 1;
            stream.insert(stream.end(), b.begin(), b.end());
            ++written;
        }
        if (!write(dir / (prefix + "stream"), stream)) return 1;
        ++written;
    }
    std::printf("%d corpus files written to %s\n", written, dir.c_str());
    return 0;
}
