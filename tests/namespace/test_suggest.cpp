// The one "did you mean" of configuration, model files and model refusals.
#include <catch2/catch.hpp>

#include "namespace/suggest.hpp"

using namespace strata::ns;

TEST_CASE("edit_distance", "[suggest]") {
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("abc", "") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("telemetry", "telemetyr") == 2);
}

TEST_CASE("closest: only close names, the closer first", "[suggest]") {
    const std::vector<std::string_view> keys{"listeners", "limits", "log", "persistence"};
    CHECK(closest("limit", keys) == "limits");
    CHECK(closest("lg", keys) == "log");          // short names: one edit
    CHECK(closest("xyz", keys).empty());
    CHECK(closest("persistance", keys) == "persistence");
    CHECK(closest("listnrs", keys) == "listeners");  // two edits: allowed for up to 8 letters
    CHECK(closest("lstnr", keys).empty());           // four edits: too far
    CHECK(did_you_mean("limit", keys) == " (did you mean 'limits'?)");
    CHECK(did_you_mean("nothing-like-it", keys).empty());
}
