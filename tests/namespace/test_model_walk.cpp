// The model read by the routing walk: subscription_trie::match feeds each
// topic level to a topic_walk as it descends, and model::evaluate(walk)
// must give the verdict model::evaluate(topic) gives -- for valid and
// invalid topics at every level, optional levels, free subtrees and mode
// overrides -- whatever the subscriptions, including wildcard filters that
// end the trie's descent after the first level; both when the walk reads
// the topic and when the per-thread cache already holds its reading.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "namespace/model.hpp"
#include "namespace/model_stats.hpp"
#include "namespace/subscription_trie.hpp"
#include "model_cases.hpp"

using namespace strata::ns;

namespace {

using trie = subscription_trie<int, int>;

std::string acme_path() { return std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml"; }

using model_factory = std::function<std::shared_ptr<const model>()>;

model_factory from_text(std::string text) {
    return [text] { return model::parse(text, "t.yaml", "."); };
}

// What one routing walk gives: the verdict from the walk, the subscribers
// matched, and how many levels the walk was fed.
struct routed {
    verdict v;
    std::vector<int> subscribers;
    std::size_t levels_fed = 0;
};

routed route(const model& m, const trie& t, const std::string& topic, const std::string& payload, bool retain) {
    routed r;
    topic_walk walk(m, topic);
    t.match(
        topic, [&](int s, int) { r.subscribers.push_back(s); }, [](const trie::shared_group&) {},
        [&](std::string_view level, std::size_t begin) {
            ++r.levels_fed;
            CHECK(level == std::string_view(topic).substr(begin, level.size()));
            return walk.step(level, begin);
        });
    r.v = m.evaluate(walk, payload, retain);
    std::sort(r.subscribers.begin(), r.subscribers.end());
    return r;
}

std::vector<int> plain_match(const trie& t, const std::string& topic) {
    std::vector<int> out;
    t.match(topic, [&](int s, int) { out.push_back(s); }, [](const trie::shared_group&) {});
    std::sort(out.begin(), out.end());
    return out;
}

// The same verdict from two models loaded from the same text: classes are
// compared by position, everything else as it is.
void check_same_verdict(const verdict& a, const verdict& b) {
    CHECK(a.result == b.result);
    CHECK(a.mode == b.mode);
    CHECK(a.code == b.code);
    CHECK(a.command == b.command);
    CHECK((a.klass == nullptr) == (b.klass == nullptr));
    if (a.klass != nullptr && b.klass != nullptr) CHECK(a.klass->index == b.klass->index);
    CHECK(a.reason == b.reason);
    CHECK(a.subpath == b.subpath);
    CHECK(a.subtree == b.subtree);
    CHECK(a.topic.data() == b.topic.data());
    for (std::size_t i = 0; i < max_levels; ++i) CHECK(a.level(i) == b.level(i));
}

// Subscription sets: everything, one wildcard that ends the descent after
// the first level, deeper wildcards, exact topics, none at all.
std::vector<std::vector<std::string>> filter_sets(const std::vector<std::string>& topics) {
    std::vector<std::vector<std::string>> sets = {
        {},
        {"#"},
        {"acme/#"},
        {"acme/+/press-shop/#", "+/+/+", "acme/dresden/press-shop/line-2/+/press-7/#"},
        {"$SYS/#", "sandbox/+"},
    };
    std::vector<std::string> exact;
    for (std::size_t i = 0; i < topics.size(); i += 3) exact.push_back(topics[i]);
    sets.push_back(exact);
    return sets;
}

// For every filter set, a model of its own (so that its per-thread cache
// starts empty) routes every topic twice: first the walk reads the topic,
// then (for topics the cache keeps) the cache gives the reading. Both must
// equal the verdict of a reference model that reads the topic by itself,
// and the walk must match the same subscribers as a plain match.
void check_topics(const model_factory& make, const std::vector<std::string>& topics,
                  const std::vector<std::string>& payloads) {
    const auto ref = make();
    for (const auto& filters : filter_sets(topics)) {
        const auto m = make();
        trie t;
        for (std::size_t i = 0; i < filters.size(); ++i) t.insert(filters[i], static_cast<int>(i), 0);
        for (std::size_t i = 0; i < topics.size(); ++i) {
            const std::string& topic = topics[i];
            const std::string& payload = payloads[i % payloads.size()];
            const bool retain = i % 3 == 0;
            INFO(topic << " with " << filters.size() << " filters, first " << (filters.empty() ? "-" : filters[0]));
            const verdict expected = ref->evaluate(topic, payload, retain);
            const routed first = route(*m, t, topic, payload, retain);
            const routed again = route(*m, t, topic, payload, retain);
            check_same_verdict(first.v, expected);
            check_same_verdict(again.v, expected);
            if (first.v.klass != nullptr) CHECK(first.v.klass == &m->classes()[first.v.klass->index]);
            CHECK(first.subscribers == plain_match(t, topic));
            CHECK(again.subscribers == first.subscribers);
        }
    }
}

const std::string telemetry_ok = R"({"value": 21.5, "unit": "degC", "ts": "2024-05-01T12:00:00.120Z", "quality": "good"})";
const std::string state_ok = R"({"state": "running", "since": "2024-05-01T06:00:00Z", "ts": "2024-05-01T12:00:00Z"})";

}  // namespace

TEST_CASE("walked verdicts: valid and invalid topics at every level of the example model", "[model][walk]") {
    std::vector<std::string> topics = acme_valid_topics();
    for (const acme_bad_topic& b : acme_invalid_topics()) topics.push_back(b.topic);
    for (const char* t : {
             // Broker topics, free subtrees, the dead-letter tree.
             "$SYS/broker/uptime", "$SYS", "sandbox", "sandbox/anything/at/all//", "uns/quarantine/acme/x",
             "sandboxes/x",
             // Mode overrides: warn (acme/leipzig/#), quarantine (acme/dresden/assembly/#).
             "acme/leipzig/assembly/line-1/robot-12/temprature", "acme/dresden/assembly/line-1/robot-12/state",
             "acme/leipzig/x"})
        topics.emplace_back(t);
    check_topics([] { return model::load(acme_path()); }, topics, {telemetry_ok, state_ok, "{}", "not json", ""});
}

TEST_CASE("walked verdicts: random topics of the example model", "[model][walk]") {
    const std::vector<std::string> pieces = {"acme", "dresden", "leipzig", "press-shop", "assembly", "line-2", "cell-1",
                                             "cell-x", "press-7", "robot-12", "telemetry", "state", "oee", "cmd", "x",
                                             "", "sandbox", "$SYS"};
    std::mt19937 rng(17);
    std::vector<std::string> topics;
    for (int i = 0; i < 1500; ++i) {
        const char* shape[] = {"acme", "dresden", "press-shop", "line-2", "cell-1", "press-7", "telemetry", "t", "u"};
        std::string topic;
        const int len = 1 + static_cast<int>(rng() % 9);
        for (int k = 0; k < len; ++k)
            topic += std::string(k ? "/" : "") + (rng() % 5 == 0 ? pieces[rng() % pieces.size()] : shape[k]);
        if (!topic.empty()) topics.push_back(topic);
    }
    check_topics([] { return model::load(acme_path()); }, topics, {telemetry_ok, state_ok, "{}", "not json"});
}

TEST_CASE("walked verdicts: optional levels, classes under several levels, names with patterns", "[model][walk]") {
    const model_factory optional = from_text(optional_cell_model);
    check_topics(optional,
                 {"acme/line-1/cell-1/press-7/state", "acme/line-1/cell-1/state", "acme/line-1/x/telemetry/state",
                  "acme/line-1/cell-2/telemetry/state", "acme/line-1/cell-2/telemetry/temperature",
                  "acme/line-1/cell-2/telemetry", "acme/line-1/cell-2", "acme/line-x/cell-2/state"},
                 {""});

    const model_factory two = from_text(two_optional_levels_model);
    check_topics(two,
                 {"acme/dd/pressing/line-1/m1/data", "acme/dd/line-1/m1/data", "acme/dd/pressing/m1/data",
                  "acme/dd/m1/data", "acme/dd/kpi", "acme/dd/pressing/kpi", "acme/dd/pressing/line-1/kpi",
                  "acme/dd/line-1/kpi", "acme/dd/line-1/m1/kpi/x", "acme/dd/data", "acme/dd/pressing/data",
                  "acme/dd/line-1/pressing/m1/data", "acme/dd/pressing/xx/data", "acme/dd/lab/x/y"},
                 {""});

    const model_factory names = from_text(names_and_pattern_model);
    check_topics(names, {"acme/hq/x/data", "acme/plant-dd/x/data", "acme/plant-d/x/data", "acme/hq/any thing/data"},
                 {""});
}

TEST_CASE("a wildcard that ends the trie's descent early: the walk goes on over the same levels", "[model][walk]") {
    const auto m = model::load(acme_path());  // a model of its own: nothing cached yet
    trie t;
    t.insert("acme/#", 1, 0);
    const std::string topic = "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry/hydraulics/pressure";

    // The trie's descent ends after "acme"; the model is fed every level up
    // to the class, then needs no more (the subtopic is read as text).
    const routed r = route(*m, t, topic, telemetry_ok, false);
    CHECK(r.subscribers == std::vector<int>{1});
    CHECK(r.levels_fed == 7);
    CHECK(r.v.result == outcome::pass);
    CHECK(r.v.klass->name == "telemetry");
    CHECK(r.v.subpath == "hydraulics/pressure");
    CHECK(r.v.level(5) == "press-7");
    // The next message on the topic: its reading comes from the cache, the
    // walk declines the first level.
    const routed again = route(*m, t, topic, telemetry_ok, false);
    CHECK(again.levels_fed == 1);
    CHECK(again.subscribers == std::vector<int>{1});
    CHECK(again.v.klass == r.v.klass);
    CHECK(again.v.level(5) == "press-7");

    // Outside the model: the walk stops at the level that fails, every time
    // (refused topics are not cached).
    for (int i = 0; i < 2; ++i) {
        const routed bad = route(*m, t, "acme/dresdn/press-shop/line-2/press-7/state", state_ok, true);
        CHECK(bad.levels_fed == 2);
        CHECK(bad.subscribers == std::vector<int>{1});
        CHECK(bad.v.reason == "level 'site': 'dresdn' is not one of [dresden, leipzig] (did you mean 'dresden'?)");
    }

    // Free: decided by the first level.
    const routed free = route(*m, t, "sandbox/a/b/c", "x", false);
    CHECK(free.levels_fed == 1);
    CHECK(free.v.result == outcome::free);
    CHECK(free.subscribers.empty());

    // No subscriptions at all: the walk is still fed every level it needs.
    trie empty;
    const std::string other = "acme/dresden/press-shop/line-2/press-7/telemetry/temperature";
    const routed none = route(*m, empty, other, telemetry_ok, false);
    CHECK(none.levels_fed == 6);
    CHECK(none.subscribers.empty());
    CHECK(none.v.result == outcome::pass);
    CHECK(none.v.level(4).empty());  // the optional cell, skipped
}

TEST_CASE("a walk not fed to the end is finished by the check", "[model][walk]") {
    const auto m = model::load(acme_path());
    const std::string topic = "acme/dresden/press-shop/line-2/press-7/state";
    const auto ref = model::load(acme_path());
    const verdict expected = ref->evaluate(topic, state_ok, true);
    {
        const std::string longer = topic + "/" + std::string(300, 'x');  // not cached: walked every time
        const verdict long_expected = ref->evaluate(longer, state_ok, true);
        topic_walk partial(*m, longer);
        CHECK(partial.step("acme", 0));
        CHECK(partial.step("dresden", 5));
        check_same_verdict(m->evaluate(partial, state_ok, true), long_expected);
    }
    topic_walk unfed(*m, topic);
    check_same_verdict(m->evaluate(unfed, state_ok, true), expected);
    // check() counts like check(topic), walked or cached.
    for (int i = 0; i < 2; ++i) {
        topic_walk counted(*m, topic);
        const auto before = m->stats().total(model_stats::counter::pass);
        CHECK(m->check(counted, state_ok, true).result == outcome::pass);
        CHECK(m->stats().total(model_stats::counter::pass) == before + 1);
    }
}
