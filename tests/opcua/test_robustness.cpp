// Mutated messages: random byte changes, insertions and cuts in valid
// encodings never crash the decoder (run under ASan/UBSan), and whatever
// decodes re-encodes to a stable form.
#include "generated_samples.hpp"
#include "helpers.hpp"

#include "bridges/opcua/message.hpp"

#include <random>

using namespace strata::bridges::opcua;
using namespace strata::bridges::opcua::test;

namespace {

std::vector<bytes> seed_messages() {
    std::vector<bytes> seeds;
    for_each_generated_type([&seeds](auto value) {
        sample(value, 3);
        bytes out;
        encode_message(value, out);
        seeds.push_back(std::move(out));
    });
    return seeds;
}

void mutate(bytes& b, std::mt19937& rng) {
    const int kind = std::uniform_int_distribution<int>(0, 3)(rng);
    if (b.empty()) return b.push_back(static_cast<std::uint8_t>(rng()));
    const std::size_t at = std::uniform_int_distribution<std::size_t>(0, b.size() - 1)(rng);
    switch (kind) {
        case 0: b[at] = static_cast<std::uint8_t>(rng()); break;                    // random byte
        case 1: b[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;        // one bit
        case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng())); break;
        default: b.resize(at); break;                                                // cut
    }
}

}  // namespace

TEST_CASE("mutated service messages fail cleanly or decode to a stable form", "[opcua][robustness]") {
    const std::vector<bytes> seeds = seed_messages();
    std::mt19937 rng(20240501);
    decode_limits lim;
    lim.max_decoded_size = 16u << 20;
    std::size_t decoded = 0;
    std::size_t failed = 0;
    for (int round = 0; round < 60; ++round) {
        for (const bytes& seed : seeds) {
            bytes b = seed;
            const int edits = 1 + static_cast<int>(rng() % 4);
            for (int i = 0; i < edits; ++i) mutate(b, rng);
            const decoded_message m = decode_message(b, lim);
            if (!m.outcome.ok) {
                ++failed;
                continue;
            }
            ++decoded;
            // decode(encode(x)) is a fixed point after one round.
            bytes once;
            writer w1(once);
            encode(w1, m.type_id);
            m.body->encode(w1);
            const decoded_message again = decode_message(once, lim);
            REQUIRE(again.outcome.ok);
            bytes twice;
            writer w2(twice);
            encode(w2, again.type_id);
            again.body->encode(w2);
            CHECK(twice == once);
        }
    }
    INFO("decoded " << decoded << ", failed " << failed);
    CHECK(decoded > 0);
    CHECK(failed > 0);
}
