// The retained-message tree: set/replace/erase/prune, find, wildcard match
// with the '$' rule, for_each, the ordered walk in pages, and randomized
// comparisons against brute-force topic_matches.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "namespace/retained_tree.hpp"
#include "namespace/topic.hpp"

using namespace strata::ns;

namespace {

std::vector<std::string> matched(const retained_tree<std::string>& t, std::string_view filter) {
    std::vector<std::string> out;
    t.match(filter, [&](const std::string& v) { out.push_back(v); });
    std::sort(out.begin(), out.end());
    return out;
}

using V = std::vector<std::string>;

// Topic order as match_ordered walks it: level by level.
bool level_order(const std::string& a, const std::string& b) {
    std::vector<std::string_view> la, lb;
    for (detail::level_reader r{a}; r.more;) la.push_back(r.next());
    for (detail::level_reader r{b}; r.more;) lb.push_back(r.next());
    return std::lexicographical_compare(la.begin(), la.end(), lb.begin(), lb.end());
}

// Every topic match_ordered gives for `filter`, walked in pages of `page`
// topics, each page starting after the last topic of the one before.
V ordered(const retained_tree<std::string>& t, std::string_view filter, std::size_t page) {
    V out;
    std::optional<std::string> cursor;
    for (;;) {
        std::size_t n = 0;
        std::string last;
        const std::string_view after = cursor ? std::string_view(*cursor) : std::string_view();
        t.match_ordered(filter, cursor ? &after : nullptr, [&](std::string_view topic, const std::string&) {
            out.emplace_back(topic);
            last = topic;
            return ++n < page;
        });
        if (n < page) return out;
        cursor = last;
    }
}

}  // namespace

TEST_CASE("retained: match_ordered walks in level order and resumes after a topic", "[retained]") {
    retained_tree<std::string> t;
    for (const char* topic : {"a-b", "a/b", "a", "a/b/c", "a/a", "b", "$SYS/x", "/", "a/"}) t.set(topic, topic);
    CHECK(ordered(t, "#", 100) == V{"/", "a", "a/", "a/a", "a/b", "a/b/c", "a-b", "b"});
    CHECK(ordered(t, "#", 1) == V{"/", "a", "a/", "a/a", "a/b", "a/b/c", "a-b", "b"});
    CHECK(ordered(t, "a/#", 2) == V{"a", "a/", "a/a", "a/b", "a/b/c"});
    CHECK(ordered(t, "+/+", 1) == V{"/", "a/", "a/a", "a/b"});
    CHECK(ordered(t, "$SYS/#", 1) == V{"$SYS/x"});
    // After a topic that is not stored (erased meanwhile, or never there).
    V after;
    const std::string_view from = "a/aa";
    t.match_ordered("#", &from, [&](std::string_view topic, const std::string&) {
        after.emplace_back(topic);
        return true;
    });
    CHECK(after == V{"a/b", "a/b/c", "a-b", "b"});
}

TEST_CASE("retained: match_ordered in pages, randomized, while the tree changes", "[retained][random]") {
    std::mt19937 rng(11);
    const std::vector<std::string> words{"a", "b", "c", "", "$SYS", "a-b", "line-2"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto random_topic = [&] {
        std::string t;
        for (std::size_t i = 0, levels = 1 + pick(4); i < levels; ++i) t += (i ? "/" : "") + words[pick(words.size())];
        return t.empty() ? std::string("/") : t;
    };
    retained_tree<std::string> t;
    std::set<std::string> stored;
    for (int k = 0; k < 600; ++k) {
        const std::string topic = random_topic();
        t.set(topic, topic);
        stored.insert(topic);
    }
    for (const std::string filter : {"#", "a/#", "+/+", "+/b/#", "a/+/c", "$SYS/#"}) {
        INFO("filter " << filter);
        // Topics stored throughout the walk are seen exactly once, in order;
        // topics set or erased between pages may or may not be.
        const std::set<std::string> before = stored;
        std::set<std::string> touched;
        V seen;
        std::optional<std::string> cursor;
        for (bool more = true; more;) {
            std::size_t n = 0;
            const std::string_view after = cursor ? std::string_view(*cursor) : std::string_view();
            t.match_ordered(filter, cursor ? &after : nullptr, [&](std::string_view topic, const std::string&) {
                seen.emplace_back(topic);
                cursor = std::string(topic);
                return ++n < 7;
            });
            more = n == 7;
            for (int k = 0; k < 3; ++k) {
                const std::string topic = random_topic();
                touched.insert(topic);
                if (pick(2) == 0) {
                    t.set(topic, topic);
                    stored.insert(topic);
                } else {
                    t.erase(topic);
                    stored.erase(topic);
                }
            }
        }
        CHECK(std::is_sorted(seen.begin(), seen.end(), level_order));
        CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
        for (const auto& topic : before)
            if (topic_matches(filter, topic) && !touched.count(topic))
                CHECK(std::count(seen.begin(), seen.end(), topic) == 1);
        for (const auto& topic : seen) CHECK(topic_matches(filter, topic));
    }
}

TEST_CASE("retained: set, replace, find, erase, prune", "[retained]") {
    retained_tree<std::string> t;
    CHECK(t.size() == 0);
    CHECK(t.node_count() == 1);
    CHECK(t.set("a/b/c", "v1"));
    CHECK(t.node_count() == 4);
    CHECK_FALSE(t.set("a/b/c", "v2"));
    CHECK(t.size() == 1);
    REQUIRE(t.find("a/b/c"));
    CHECK(*t.find("a/b/c") == "v2");
    CHECK(t.find("a/b") == nullptr);  // interior node without a value
    CHECK(t.find("a/b/c/d") == nullptr);
    CHECK(t.find("x") == nullptr);

    CHECK(t.set("a/b", "ab"));
    CHECK(t.set("a/b/c/d", "abcd"));
    CHECK(t.size() == 3);
    CHECK_FALSE(t.erase("a"));
    CHECK_FALSE(t.erase("a/b/x"));
    CHECK(t.erase("a/b/c"));
    CHECK_FALSE(t.erase("a/b/c"));
    CHECK(t.node_count() == 5);  // c kept: it leads to d
    CHECK(t.erase("a/b/c/d"));
    CHECK(t.node_count() == 3);  // c and d pruned, b holds a value
    CHECK(t.erase("a/b"));
    CHECK(t.node_count() == 1);
    CHECK(t.size() == 0);

    // Mutable find lets the router update in place.
    t.set("x", "1");
    *t.find("x") = "2";
    CHECK(*std::as_const(t).find("x") == "2");
}

TEST_CASE("retained: wildcard match", "[retained]") {
    retained_tree<std::string> t;
    const char* topics[] = {
        "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2",
        "sport/golf", "/finance", "/", "a//b", "a/", "$SYS/broker/uptime", "$SYS", "$x/y", "acme/$meta",
    };
    for (const char* topic : topics) t.set(topic, topic);

    CHECK(matched(t, "sport/tennis/player1/#") == V{"sport/tennis/player1", "sport/tennis/player1/ranking"});
    CHECK(matched(t, "sport/tennis/+") == V{"sport/tennis/player1", "sport/tennis/player2"});
    CHECK(matched(t, "sport/+") == V{"sport/golf", "sport/tennis"});
    CHECK(matched(t, "sport/#") ==
          V{"sport", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
            "sport/tennis/player2"});
    CHECK(matched(t, "+") == V{"sport"});
    CHECK(matched(t, "+/+") == V{"/", "/finance", "a/", "acme/$meta", "sport/golf", "sport/tennis"});
    CHECK(matched(t, "/+") == V{"/", "/finance"});
    CHECK(matched(t, "a/+/b") == V{"a//b"});
    CHECK(matched(t, "a/+") == V{"a/"});
    CHECK(matched(t, "$SYS/#") == V{"$SYS", "$SYS/broker/uptime"});
    CHECK(matched(t, "$SYS/+/uptime") == V{"$SYS/broker/uptime"});
    CHECK(matched(t, "+/broker/uptime").empty());
    CHECK(matched(t, "+/y").empty());
    CHECK(matched(t, "acme/+") == V{"acme/$meta"});  // '$' rule is first level only
    CHECK(matched(t, "nothing/#").empty());
    CHECK(matched(t, "sport/tennis/player1") == V{"sport/tennis/player1"});

    V all_but_dollar;
    for (const char* topic : topics)
        if (topic[0] != '$') all_but_dollar.push_back(topic);
    std::sort(all_but_dollar.begin(), all_but_dollar.end());
    CHECK(matched(t, "#") == all_but_dollar);
}

TEST_CASE("retained: for_each gives topic and value", "[retained]") {
    retained_tree<int> t;
    t.set("a/b", 1);
    t.set("a", 2);
    t.set("/x", 3);
    t.set("a//c", 4);
    t.set("$SYS/q", 5);
    std::map<std::string, int> seen;
    t.for_each([&](std::string_view topic, int v) { seen.emplace(std::string(topic), v); });
    CHECK(seen == std::map<std::string, int>{{"a/b", 1}, {"a", 2}, {"/x", 3}, {"a//c", 4}, {"$SYS/q", 5}});
}

TEST_CASE("retained: shared_ptr values are released on erase and clear", "[retained]") {
    retained_tree<std::shared_ptr<int>> t;
    auto v = std::make_shared<int>(7);
    t.set("a/b", v);
    CHECK(v.use_count() == 2);
    t.set("a/b", std::make_shared<int>(8));
    CHECK(v.use_count() == 1);
    t.set("a/c", v);
    t.clear();
    CHECK(v.use_count() == 1);
    CHECK(t.node_count() == 1);
    CHECK(t.set("a/c", v));
}

TEST_CASE("retained: many siblings and deep topics", "[retained]") {
    retained_tree<int> t;
    for (int i = 0; i < 5000; ++i) t.set("plant/m" + std::to_string(i) + "/state", i);
    int count = 0;
    long sum = 0;
    t.match("plant/+/state", [&](int v) {
        ++count;
        sum += v;
    });
    CHECK(count == 5000);
    CHECK(sum == 4999L * 5000 / 2);
    for (int i = 0; i < 5000; ++i) REQUIRE(t.erase("plant/m" + std::to_string(i) + "/state"));
    CHECK(t.node_count() == 1);

    std::string deep = "d";
    for (int i = 0; i < 30000; ++i) deep += "/d";
    t.set(deep, 1);
    count = 0;
    t.match("#", [&](int) { ++count; });
    CHECK(count == 1);
}

TEST_CASE("retained: move", "[retained]") {
    retained_tree<int> a;
    a.set("x", 1);
    retained_tree<int> b(std::move(a));
    CHECK(b.size() == 1);
    CHECK(a.find("x") == nullptr);
    CHECK(a.set("x", 2));
    b = std::move(a);
    CHECK(*b.find("x") == 2);
}

TEST_CASE("retained: randomized against brute-force topic_matches", "[retained][random]") {
    std::mt19937 rng(7);
    const std::vector<std::string> words{"a", "b", "c", "", "$SYS", "$x", "line-2"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto random_topic = [&] {
        const std::size_t levels = 1 + pick(5);
        std::string t;
        for (std::size_t i = 0; i < levels; ++i) {
            if (i) t += '/';
            t += words[pick(words.size())];
        }
        return t.empty() ? std::string("/") : t;  // a lone empty level is not a topic
    };
    auto random_filter = [&] {
        const std::size_t levels = 1 + pick(5);
        std::string f;
        for (std::size_t i = 0; i < levels; ++i) {
            if (i) f += '/';
            const std::size_t r = pick(8);
            if (r < 2) f += '+';
            else if (r == 2 && i + 1 == levels) f += '#';
            else f += words[pick(words.size())];
        }
        return f.empty() ? std::string("/") : f;  // a lone empty level is not a filter
    };

    retained_tree<std::string> t;
    std::map<std::string, std::string> model;
    for (int round = 0; round < 4; ++round) {
        for (int k = 0; k < 800; ++k) {
            const std::string topic = random_topic();
            const std::string value = topic + "#" + std::to_string(k);
            REQUIRE(t.set(topic, value) == (model.find(topic) == model.end()));
            model[topic] = value;
        }
        for (int k = 0; k < 300; ++k) {
            const std::string topic = random_topic();
            REQUIRE(t.erase(topic) == (model.erase(topic) == 1));
        }
        REQUIRE(t.size() == model.size());
        for (int k = 0; k < 500; ++k) {
            const std::string filter = random_filter();
            std::vector<std::string> expected;
            for (const auto& [topic, value] : model)
                if (topic_matches(filter, topic)) expected.push_back(value);
            std::sort(expected.begin(), expected.end());
            INFO("filter " << filter);
            REQUIRE(matched(t, filter) == expected);
        }
        for (const auto& [topic, value] : model) REQUIRE((t.find(topic) && *t.find(topic) == value));
    }
    for (const auto& [topic, value] : model) REQUIRE(t.erase(topic));
    CHECK(t.node_count() == 1);
}
