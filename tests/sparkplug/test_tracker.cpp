#include "helpers.hpp"

#include "bridges/sparkplug/tracker.hpp"

#include <catch2/catch.hpp>

using namespace strata::bridges::sparkplug;
using namespace strata::bridges::sparkplug::test;

namespace {

topic at(message_type t, std::string_view device = {}) { return topic{t, "plant", "edge-1", device}; }

payload data(std::uint64_t seq, std::vector<metric> metrics) {
    payload p;
    p.seq = seq;
    p.metrics = std::move(metrics);
    return p;
}

}  // namespace

TEST_CASE("births, data by alias, deaths with bdSeq", "[sparkplug][tracker]") {
    tracker tr;
    payload nb = birth(5);
    nb.metrics.push_back(named("Node Control/Rebirth", data_type::boolean, false, 0));
    nb.metrics.push_back(named("Uptime", data_type::uint64, std::uint64_t{1}, 1));
    nb = wire(nb);
    auto o = tr.apply(at(message_type::nbirth), nb, 1000);
    CHECK(o.what == event::birth);
    CHECK_FALSE(o.seq_gap);
    const node_state* n = tr.node("plant", "edge-1");
    REQUIRE(n);
    CHECK(n->online);
    CHECK(n->bd_seq == 5u);
    CHECK(n->births == 1);

    payload db;
    db.seq = 1;
    db.metrics.push_back(named("Temperature", data_type::double_, 20.0, 10));
    db.metrics.push_back(named("Setpoint", data_type::int32, std::int64_t{-4}, 11));
    db = wire(db);
    o = tr.apply(at(message_type::dbirth, "press-7"), db, 1001);
    CHECK(o.what == event::birth);
    CHECK(o.metrics.size() == 2);

    // DDATA by alias only: the name and type come from the DBIRTH.
    const payload dd = wire(data(2, {aliased(10, 21.5), aliased(11, std::int64_t{-7}), aliased(99, 1.0)}));
    o = tr.apply(at(message_type::ddata, "press-7"), dd, 1002);
    CHECK(o.what == event::data);
    CHECK_FALSE(o.seq_gap);
    REQUIRE(o.metrics.size() == 2);
    CHECK(o.unresolved == 1);  // alias 99 was never declared
    CHECK(o.metrics[0].def->name == "Temperature");
    CHECK(typed(*o.metrics[0].m, o.metrics[0].def->type) == value{21.5});
    CHECK(o.metrics[1].def->name == "Setpoint");
    CHECK(typed(*o.metrics[1].m, o.metrics[1].def->type) == value{std::int64_t{-7}});

    // The table a command uses.
    const metric_table* t = tr.table("plant", "edge-1", "press-7");
    REQUIRE(t);
    const auto i = t->by_name.at("Setpoint");
    CHECK(t->aliases[i] == 11u);
    CHECK(t->defs[i].type == data_type::int32);

    SECTION("a stale death (the will of a connection already replaced) is ignored") {
        // The node reconnected and birthed with bdSeq 6 before the broker
        // published the old connection's will (bdSeq 5).
        o = tr.apply(at(message_type::nbirth), wire(birth(6)), 1003);
        CHECK(o.what == event::birth);
        CHECK_FALSE(n->devices.at("press-7").online);  // devices birth again after their node
        o = tr.apply(at(message_type::ndeath), wire(birth(5)), 1004);
        CHECK(o.what == event::stale_death);
        CHECK(n->online);
        CHECK(n->stale_deaths == 1);
        o = tr.apply(at(message_type::ndeath), wire(birth(6)), 1005);
        CHECK(o.what == event::death);
        CHECK_FALSE(n->online);
        CHECK(n->death_ms == 1005);
    }
    SECTION("a death takes the devices offline") {
        o = tr.apply(at(message_type::ndeath), wire(birth(5)), 1003);
        CHECK(o.what == event::death);
        CHECK_FALSE(n->devices.at("press-7").online);
        CHECK(n->devices.at("press-7").death_ms == 1003);
    }
    SECTION("DDEATH") {
        o = tr.apply(at(message_type::ddeath, "press-7"), wire(data(3, {})), 1003);
        CHECK(o.what == event::death);
        CHECK_FALSE(n->devices.at("press-7").online);
        CHECK(n->online);
    }
}

TEST_CASE("seq gaps are counted, 255 wraps to 0", "[sparkplug][tracker]") {
    tracker tr;
    (void)tr.apply(at(message_type::nbirth), wire(birth(1)), 1);
    std::uint64_t seq = 0;
    for (int i = 0; i < 300; ++i) {
        seq = (seq + 1) % 256;
        CHECK_FALSE(tr.apply(at(message_type::ndata), wire(data(seq, {})), 2).seq_gap);
    }
    CHECK(tr.node("plant", "edge-1")->seq_gaps == 0);
    seq = (seq + 3) % 256;  // two messages lost
    CHECK(tr.apply(at(message_type::ndata), wire(data(seq, {})), 3).seq_gap);
    CHECK_FALSE(tr.apply(at(message_type::ndata), wire(data((seq + 1) % 256, {})), 3).seq_gap);
    CHECK(tr.node("plant", "edge-1")->seq_gaps == 1);
    // A seq beyond 255 is a gap too.
    CHECK(tr.apply(at(message_type::ndata), wire(data(1000, {})), 3).seq_gap);
}

TEST_CASE("data without a birth resolves nothing", "[sparkplug][tracker]") {
    tracker tr;
    auto o = tr.apply(at(message_type::ndata), wire(data(4, {aliased(1, 1.0)})), 1);
    CHECK(o.what == event::no_birth);
    CHECK(o.metrics.empty());
    (void)tr.apply(at(message_type::nbirth), wire(birth(1)), 2);
    o = tr.apply(at(message_type::ddata, "ghost"), wire(data(1, {aliased(1, 1.0)})), 3);
    CHECK(o.what == event::no_birth);
    // A death of a node never seen makes no entry.
    o = tr.apply(topic{message_type::ndeath, "plant", "other", {}}, wire(birth(1)), 4);
    CHECK(o.what == event::stale_death);
    CHECK_FALSE(tr.node("plant", "other"));
    // A birth without bdSeq is refused.
    o = tr.apply(topic{message_type::nbirth, "plant", "nobd", {}}, wire(data(0, {})), 5);
    CHECK(o.what == event::refused);
}

TEST_CASE("every table is bounded", "[sparkplug][tracker][limits]") {
    tracker tr({.max_nodes = 2, .max_devices_per_node = 1, .max_metrics_per_birth = 3, .max_aliases_per_node = 3,
                .max_hosts = 1});
    CHECK(tr.apply(topic{message_type::nbirth, "g", "a", {}}, wire(birth(1)), 1).what == event::birth);
    CHECK(tr.apply(topic{message_type::nbirth, "g", "b", {}}, wire(birth(1)), 1).what == event::birth);
    CHECK(tr.apply(topic{message_type::nbirth, "g", "c", {}}, wire(birth(1)), 1).what == event::refused);
    CHECK(tr.nodes().size() == 2);

    payload big = birth(2);
    for (int i = 0; i < 3; ++i) big.metrics.push_back(named("m" + std::to_string(i), data_type::double_, 1.0));
    CHECK(tr.apply(topic{message_type::nbirth, "g", "a", {}}, wire(big), 2).what == event::refused);

    payload d1;
    d1.seq = 1;
    d1.metrics.push_back(named("x", data_type::double_, 1.0, 1));
    d1.metrics.push_back(named("y", data_type::double_, 1.0, 2));
    CHECK(tr.apply(topic{message_type::dbirth, "g", "b", "d1"}, wire(d1), 3).what == event::birth);
    d1.seq = 2;
    CHECK(tr.apply(topic{message_type::dbirth, "g", "b", "d2"}, wire(d1), 3).what == event::refused);
    // Aliases of a node and its devices together.
    payload nb = birth(3);
    nb.metrics.push_back(named("p", data_type::double_, 1.0, 5));
    nb.metrics.push_back(named("q", data_type::double_, 1.0, 6));
    CHECK(tr.apply(topic{message_type::nbirth, "g", "b", {}}, wire(nb), 4).what == event::refused);

    CHECK(tr.apply_state(topic{message_type::state, {}, "scada", {}}, R"({"online": true, "timestamp": 5})").what ==
          event::state);
    CHECK(tr.apply_state(topic{message_type::state, {}, "other", {}}, R"({"online": true})").what == event::refused);
    CHECK(tr.apply_state(topic{message_type::state, {}, "scada", {}}, "not json").what == event::refused);
    // An older STATE (a stale will) does not take a newer one back.
    CHECK(tr.apply_state(topic{message_type::state, {}, "scada", {}}, R"({"online": false, "timestamp": 4})").what ==
          event::stale_death);
    CHECK(tr.hosts().at("scada").online);
}
