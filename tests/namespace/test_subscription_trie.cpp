// The subscription trie: insert/replace/erase/prune, matching with the MQTT
// wildcard and '$' rules, shared groups, and a randomized comparison against
// brute-force topic_matches.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "namespace/subscription_trie.hpp"
#include "namespace/topic.hpp"

using namespace strata::ns;

namespace {

using trie_t = subscription_trie<std::string, int>;

// (subscriber, data) pairs reported by match, sorted; shared groups as
// "group:" + name.
std::vector<std::pair<std::string, int>> matches(const trie_t& t, std::string_view topic) {
    std::vector<std::pair<std::string, int>> out;
    t.match(
        topic, [&](const std::string& s, int d) { out.emplace_back(s, d); },
        [&](const trie_t::shared_group& g) { out.emplace_back("group:" + std::string(g.name()), -1); });
    std::sort(out.begin(), out.end());
    return out;
}

using P = std::vector<std::pair<std::string, int>>;

}  // namespace

TEST_CASE("trie: insert, replace, erase and prune", "[trie]") {
    trie_t t;
    CHECK(t.size() == 0);
    CHECK(t.node_count() == 1);

    CHECK(t.insert("a/b/c", "alice", 1));
    CHECK(t.node_count() == 4);
    CHECK_FALSE(t.insert("a/b/c", "alice", 2));  // same subscriber, same filter: replace
    CHECK(t.size() == 1);
    REQUIRE(t.find("a/b/c", "alice"));
    CHECK(*t.find("a/b/c", "alice") == 2);
    CHECK(matches(t, "a/b/c") == P{{"alice", 2}});

    CHECK(t.insert("a/b/c", "bob", 3));
    CHECK(t.insert("a/b", "alice", 4));
    CHECK(t.insert("a/+/c", "alice", 5));
    CHECK(t.insert("a/#", "carol", 6));
    CHECK(t.size() == 5);
    CHECK(t.find("a/b/c", "carol") == nullptr);
    CHECK(t.find("a/b/x", "alice") == nullptr);

    CHECK_FALSE(t.erase("a/b/c", "carol"));
    CHECK_FALSE(t.erase("a/x", "alice"));
    CHECK_FALSE(t.erase("a/b/c/d", "alice"));
    CHECK(t.erase("a/b/c", "alice"));
    CHECK_FALSE(t.erase("a/b/c", "alice"));
    CHECK(matches(t, "a/b/c") == P{{"alice", 5}, {"bob", 3}, {"carol", 6}});

    CHECK(t.erase("a/b/c", "bob"));
    CHECK(t.erase("a/b", "alice"));
    CHECK(t.erase("a/+/c", "alice"));
    CHECK(t.erase("a/#", "carol"));
    CHECK(t.size() == 0);
    CHECK(t.node_count() == 1);  // everything pruned back to the root
    CHECK(matches(t, "a/b/c").empty());
}

TEST_CASE("trie: pruning keeps nodes that are still in use", "[trie]") {
    trie_t t;
    t.insert("a/b/c/d", "x", 1);
    t.insert("a/b", "y", 2);
    t.insert("a/+/c", "z", 3);
    const std::size_t nodes = t.node_count();
    CHECK(nodes == 1 + 4 + 2);  // root, a, b, c, d, +, c
    t.erase("a/b/c/d", "x");
    CHECK(t.node_count() == nodes - 2);  // c and d under b gone, b kept (y)
    CHECK(matches(t, "a/b") == P{{"y", 2}});
    CHECK(matches(t, "a/b/c") == P{{"z", 3}});
    t.erase("a/b", "y");
    CHECK(t.node_count() == 1 + 3);  // root, a, +, c
    t.erase("a/+/c", "z");
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: matching rules", "[trie]") {
    trie_t t;
    int id = 0;
    const char* filters[] = {
        "sport/tennis/player1/#", "sport/tennis/+", "sport/#", "#", "+", "+/+", "/+", "+/tennis/#",
        "$SYS/#", "$SYS/monitor/+", "+/monitor/Clients", "a//b", "a/+/b", "a/#", "a/", "/",
    };
    for (const char* f : filters) t.insert(f, f, id++);

    const char* topics[] = {
        "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2",
        "/finance", "$SYS", "$SYS/monitor/Clients", "a//b", "a", "a/", "/", "a/b", "$", "x/monitor/Clients",
    };
    for (const char* topic : topics) {
        P expected;
        for (const char* f : filters) {
            if (topic_matches(f, topic)) expected.emplace_back(f, int(std::find(std::begin(filters), std::end(filters), f) - filters));
        }
        std::sort(expected.begin(), expected.end());
        INFO(topic);
        CHECK(matches(t, topic) == expected);
    }

    // Spot checks that do not rely on topic_matches.
    CHECK(matches(t, "$SYS/monitor/Clients") == P{{"$SYS/#", 8}, {"$SYS/monitor/+", 9}});
    CHECK(matches(t, "sport") == P{{"#", 3}, {"+", 4}, {"sport/#", 2}});
    CHECK(matches(t, "/finance") == P{{"#", 3}, {"+/+", 5}, {"/+", 6}});
}

TEST_CASE("trie: overlapping subscriptions of one subscriber", "[trie]") {
    trie_t t;
    t.insert("acme/#", "mes", 1);
    t.insert("acme/+/area2/#", "mes", 2);
    t.insert("acme/site1/area2/line1", "mes", 3);
    t.insert("+/site1/+/line1", "mes", 4);
    t.insert("acme/site1/area2/line2", "mes", 5);
    // Reported once per matching filter, with that filter's data.
    CHECK(matches(t, "acme/site1/area2/line1") == P{{"mes", 1}, {"mes", 2}, {"mes", 3}, {"mes", 4}});
}

TEST_CASE("trie: shared groups", "[trie]") {
    trie_t t;
    CHECK(t.insert_shared("g1", "acme/+/oee", "a", 1));
    CHECK(t.insert_shared("g1", "acme/+/oee", "b", 2));
    CHECK(t.insert_shared("g1", "acme/+/oee", "c", 3));
    CHECK_FALSE(t.insert_shared("g1", "acme/+/oee", "b", 20));  // replace data
    CHECK(t.insert_shared("g2", "acme/+/oee", "a", 4));
    CHECK(t.insert_shared("g1", "acme/#", "d", 5));             // same group name, other filter
    CHECK(t.insert("acme/+/oee", "a", 6));                      // non-shared, same subscriber
    CHECK(t.size() == 6);

    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    std::vector<std::string> direct;
    t.match(
        "acme/s1/oee", [&](const std::string& s, int) { direct.push_back(s); },
        [&](const trie_t::shared_group& g) {
            std::vector<std::string> members;
            for (const auto& m : g.members()) members.push_back(m.subscriber);
            groups.emplace_back(std::string(g.name()), members);
        });
    CHECK(direct == std::vector<std::string>{"a"});
    std::sort(groups.begin(), groups.end());
    REQUIRE(groups.size() == 3);
    CHECK(groups[0].first == "g1");
    CHECK(groups[1].first == "g1");
    CHECK(groups[2] == std::pair<std::string, std::vector<std::string>>{"g2", {"a"}});
    // The two g1 groups are distinct: one per filter.
    const bool one_is_abc = groups[0].second == std::vector<std::string>{"a", "b", "c"} ||
                            groups[1].second == std::vector<std::string>{"a", "b", "c"};
    CHECK(one_is_abc);

    // Round robin over the members, in join order.
    const trie_t::shared_group* g1 = nullptr;
    t.match(
        "acme/s1/oee", [](const std::string&, int) {},
        [&](const trie_t::shared_group& g) {
            if (g.name() == "g1" && g.members().size() == 3) g1 = &g;
        });
    REQUIRE(g1);
    std::vector<std::string> picked;
    for (int i = 0; i < 6; ++i) picked.push_back(g1->pick().subscriber);
    CHECK(picked == std::vector<std::string>{"a", "b", "c", "a", "b", "c"});
    CHECK(g1->members()[1].data == 20);

    CHECK_FALSE(t.erase_shared("g1", "acme/+/oee", "zzz"));
    CHECK_FALSE(t.erase_shared("g3", "acme/+/oee", "a"));
    CHECK_FALSE(t.erase_shared("g1", "acme/x/oee", "a"));
    CHECK_FALSE(t.erase("acme/+/oee", "b"));  // b is only a shared member
    CHECK(t.erase_shared("g1", "acme/+/oee", "b"));
    CHECK(t.erase_shared("g1", "acme/+/oee", "a"));
    CHECK(t.erase_shared("g1", "acme/+/oee", "c"));
    CHECK(t.erase_shared("g2", "acme/+/oee", "a"));
    CHECK(t.erase_shared("g1", "acme/#", "d"));
    CHECK(t.size() == 1);
    CHECK(matches(t, "acme/s1/oee") == P{{"a", 6}});
    CHECK(t.erase("acme/+/oee", "a"));
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: shared group on '#' honours the '$' rule", "[trie]") {
    trie_t t;
    t.insert_shared("g", "#", "a", 1);
    CHECK(matches(t, "x/y") == P{{"group:g", -1}});
    CHECK(matches(t, "$SYS/x").empty());
}

TEST_CASE("trie: round-robin cursor is safe under concurrent matches", "[trie]") {
    trie_t t;
    t.insert_shared("g", "a/+", "m1", 1);
    t.insert_shared("g", "a/+", "m2", 2);
    constexpr int threads = 4;
    constexpr int per_thread = 20000;
    std::atomic<int> count_m1{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&] {
            for (int k = 0; k < per_thread; ++k) {
                t.match(
                    "a/b", [](const std::string&, int) {},
                    [&](const trie_t::shared_group& g) {
                        if (g.pick().subscriber == "m1") ++count_m1;
                    });
            }
        });
    }
    for (auto& th : pool) th.join();
    const trie_t::shared_group* g = nullptr;
    t.match("a/b", [](const std::string&, int) {}, [&](const trie_t::shared_group& grp) { g = &grp; });
    REQUIRE(g);
    CHECK(g->next() == threads * per_thread);  // no increment lost
    CHECK(count_m1.load() == threads * per_thread / 2);
}

TEST_CASE("trie: for_each rebuilds the filters", "[trie]") {
    trie_t t;
    t.insert("a/b", "x", 1);
    t.insert("a//+", "y", 2);
    t.insert("/#", "z", 3);
    t.insert("#", "z", 4);
    t.insert("$SYS/+/x", "w", 5);
    t.insert_shared("grp", "a/+/c", "v", 6);
    std::set<std::tuple<std::string, std::string, int>> seen;
    t.for_each([&](std::string_view f, const std::string& s, int d) { seen.emplace(std::string(f), s, d); });
    const std::set<std::tuple<std::string, std::string, int>> expected{
        {"a/b", "x", 1}, {"a//+", "y", 2}, {"/#", "z", 3}, {"#", "z", 4}, {"$SYS/+/x", "w", 5},
        {"$share/grp/a/+/c", "v", 6},
    };
    CHECK(seen == expected);
}

TEST_CASE("trie: many subscribers on one filter (index, swap-and-pop)", "[trie]") {
    subscription_trie<int, int> t;
    constexpr int n = 5000;
    for (int i = 0; i < n; ++i) REQUIRE(t.insert("plant/cmd", i, i * 10));
    CHECK_FALSE(t.insert("plant/cmd", 1234, 7));
    CHECK(*t.find("plant/cmd", 1234) == 7);
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::mt19937 rng(42);
    std::shuffle(order.begin(), order.end(), rng);
    std::set<int> alive(order.begin(), order.end());
    for (int k = 0; k < n; ++k) {
        REQUIRE(t.erase("plant/cmd", order[k]));
        alive.erase(order[k]);
        if (k % 497 == 0 || alive.size() < 40) {
            std::set<int> got;
            t.match("plant/cmd", [&](int s, int d) {
                got.insert(s);
                CHECK(d == (s == 1234 ? 7 : s * 10));
            }, [](const auto&) {});
            REQUIRE(got == alive);
            for (int s : alive) REQUIRE(t.find("plant/cmd", s));
        }
        REQUIRE_FALSE(t.erase("plant/cmd", order[k]));
    }
    CHECK(t.size() == 0);
    CHECK(t.node_count() == 1);
}

namespace {
// A subscriber type without std::hash: the trie must work without an index.
struct handle {
    int id;
    bool operator==(const handle&) const = default;
};
}  // namespace

TEST_CASE("trie: subscriber without std::hash", "[trie]") {
    subscription_trie<handle, int> t;
    for (int i = 0; i < 100; ++i) t.insert("a/+", handle{i}, i);
    int count = 0;
    t.match("a/b", [&](const handle&, int) { ++count; }, [](const auto&) {});
    CHECK(count == 100);
    for (int i = 0; i < 100; ++i) REQUIRE(t.erase("a/+", handle{i}));
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: shared_ptr subscribers", "[trie]") {
    struct session {
        int id;
    };
    subscription_trie<std::shared_ptr<session>, int> t;
    auto s1 = std::make_shared<session>(session{1});
    auto s2 = std::make_shared<session>(session{2});
    t.insert("x/#", s1, 1);
    t.insert("x/#", s2, 2);
    int sum = 0;
    t.match("x/y", [&](const std::shared_ptr<session>& s, int) { sum += s->id; }, [](const auto&) {});
    CHECK(sum == 3);
    CHECK(t.erase("x/#", s1));
    CHECK(s1.use_count() == 1);
}

TEST_CASE("trie: many children under one node (hash table mode, shrink)", "[trie]") {
    subscription_trie<int, int> t;
    constexpr int n = 3000;
    for (int i = 0; i < n; ++i) t.insert("site/dev" + std::to_string(i) + "/temp", i, i);
    CHECK(t.node_count() == 1 + 1 + 2 * n);
    for (int i = 0; i < n; ++i) {
        int got = -1;
        t.match("site/dev" + std::to_string(i) + "/temp", [&](int s, int) { got = s; }, [](const auto&) {});
        REQUIRE(got == i);
    }
    int none = 0;
    t.match("site/devX/temp", [&](int, int) { ++none; }, [](const auto&) {});
    CHECK(none == 0);
    for (int i = 0; i < n; i += 2) REQUIRE(t.erase("site/dev" + std::to_string(i) + "/temp", i));
    for (int i = 0; i < n; ++i) {
        const bool present = t.find("site/dev" + std::to_string(i) + "/temp", i) != nullptr;
        REQUIRE(present == (i % 2 == 1));
    }
    for (int i = 1; i < n; i += 2) REQUIRE(t.erase("site/dev" + std::to_string(i) + "/temp", i));
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: very deep filters do not recurse", "[trie]") {
    subscription_trie<int, int> t;
    std::string deep = "a";
    for (int i = 0; i < 30000; ++i) deep += "/a";
    t.insert(deep, 1, 1);
    t.insert(deep + "/#", 2, 2);
    std::string plus_deep = "+";
    for (int i = 0; i < 30000; ++i) plus_deep += "/+";
    t.insert(plus_deep, 3, 3);
    int count = 0;
    t.match(deep, [&](int, int) { ++count; }, [](const auto&) {});
    CHECK(count == 3);
    std::size_t listed = 0;
    t.for_each([&](std::string_view f, int, int) {
        ++listed;
        CHECK(f.size() > 60000);
    });
    CHECK(listed == 3);
    CHECK(t.erase(deep, 1));
    // destructor tears down the remaining 60k-level chains iteratively
}

TEST_CASE("trie: move and clear", "[trie]") {
    trie_t a;
    a.insert("x/y", "s", 1);
    trie_t b(std::move(a));
    CHECK(b.size() == 1);
    CHECK(matches(b, "x/y") == P{{"s", 1}});
    CHECK(a.size() == 0);
    CHECK(matches(a, "x/y").empty());
    CHECK(a.insert("x/y", "t", 2));  // moved-from is usable
    CHECK(matches(a, "x/y") == P{{"t", 2}});
    b = std::move(a);
    CHECK(matches(b, "x/y") == P{{"t", 2}});
    b.clear();
    CHECK(b.size() == 0);
    CHECK(b.node_count() == 1);
    CHECK(matches(b, "x/y").empty());
}

TEST_CASE("trie: randomized against brute-force topic_matches", "[trie][random]") {
    std::mt19937 rng(20240611);
    const std::vector<std::string> words{"a", "b", "c", "", "$SYS", "$x", "press-7", "temp"};
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };

    auto random_filter = [&] {
        const std::size_t levels = 1 + pick(5);
        std::string f;
        for (std::size_t i = 0; i < levels; ++i) {
            if (i) f += '/';
            const std::size_t r = pick(10);
            if (r < 2) f += '+';
            else if (r == 2 && i + 1 == levels) f += '#';
            else f += words[pick(words.size())];
        }
        return f.empty() ? std::string("/") : f;  // a lone empty level is not a filter
    };
    auto random_topic = [&] {
        const std::size_t levels = 1 + pick(6);
        std::string t;
        for (std::size_t i = 0; i < levels; ++i) {
            if (i) t += '/';
            t += words[pick(words.size())];
        }
        return t.empty() ? std::string("/") : t;  // a lone empty level is not a topic
    };

    struct stored {
        std::string filter;
        int subscriber;
        std::string group;  // empty: not shared
    };
    // (filter, subscriber, group) -> data
    std::map<std::tuple<std::string, int, std::string>, int> model;
    subscription_trie<int, int> t;
    int next_data = 0;

    auto check_all = [&] {
        REQUIRE(t.size() == model.size());
        for (int k = 0; k < 400; ++k) {
            const std::string topic = random_topic();
            std::multiset<std::pair<int, int>> expected;  // (subscriber, data)
            std::multiset<std::string> expected_groups;   // group name + filter
            std::map<std::pair<std::string, std::string>, std::set<int>> group_members;
            for (const auto& [key, data] : model) {
                const auto& [filter, sub, group] = key;
                if (!topic_matches(filter, topic)) continue;
                if (group.empty()) expected.emplace(sub, data);
                else group_members[{group, filter}].insert(sub);
            }
            std::multiset<std::pair<int, int>> got;
            std::multiset<std::set<int>> got_groups;
            t.match(
                topic, [&](int s, int d) { got.emplace(s, d); },
                [&](const subscription_trie<int, int>::shared_group& g) {
                    std::set<int> members;
                    for (const auto& m : g.members()) members.insert(m.subscriber);
                    got_groups.insert(members);
                });
            std::multiset<std::set<int>> want_groups;
            for (const auto& [k2, members] : group_members) want_groups.insert(members);
            INFO("topic " << topic);
            REQUIRE(got == expected);
            REQUIRE(got_groups == want_groups);
        }
    };

    for (int round = 0; round < 3; ++round) {
        for (int k = 0; k < 1500; ++k) {
            const std::string f = random_filter();
            const int sub = static_cast<int>(pick(40));
            const int data = next_data++;
            if (pick(8) == 0) {
                const std::string group = pick(2) ? "g1" : "g2";
                const bool fresh = t.insert_shared(group, f, sub, data);
                const bool was_new = model.find({f, sub, group}) == model.end();
                REQUIRE(fresh == was_new);
                model[{f, sub, group}] = data;
            } else {
                const bool fresh = t.insert(f, sub, data);
                const bool was_new = model.find({f, sub, ""}) == model.end();
                REQUIRE(fresh == was_new);
                model[{f, sub, ""}] = data;
            }
        }
        check_all();
        // Erase about half, including some that do not exist.
        std::vector<std::tuple<std::string, int, std::string>> keys;
        for (const auto& [key, data] : model) keys.push_back(key);
        for (const auto& key : keys) {
            if (pick(2)) continue;
            const auto& [f, sub, group] = key;
            const bool ok = group.empty() ? t.erase(f, sub) : t.erase_shared(group, f, sub);
            REQUIRE(ok);
            model.erase(key);
        }
        for (int k = 0; k < 200; ++k) {
            const std::string f = random_filter();
            const int sub = static_cast<int>(pick(40));
            REQUIRE(t.erase(f, sub) == (model.erase({f, sub, ""}) == 1));
        }
        check_all();
    }
    for (const auto& [key, data] : model) {
        const auto& [f, sub, group] = key;
        REQUIRE((group.empty() ? t.erase(f, sub) : t.erase_shared(group, f, sub)));
    }
    CHECK(t.size() == 0);
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: randomized sibling churn (child table growth, deletion, shrink)", "[trie][random]") {
    // Hundreds of siblings under one node push the child table through its
    // dense, hashed and shrinking states; every step is checked against a model.
    std::mt19937 rng(99);
    subscription_trie<int, int> t;
    std::vector<bool> present(400, false);
    std::size_t count = 0;
    for (int step = 0; step < 40000; ++step) {
        // Bias towards growth in the first half and shrinkage in the second.
        const int k = std::uniform_int_distribution<int>(0, 399)(rng);
        const bool grow = step < 20000 ? (rng() % 4 != 0) : (rng() % 4 == 0);
        const std::string filter = "x/k" + std::to_string(k);
        if (grow && !present[k]) {
            REQUIRE(t.insert(filter, k, k));
            present[k] = true;
            ++count;
        } else if (!grow && present[k]) {
            REQUIRE(t.erase(filter, k));
            present[k] = false;
            --count;
        }
        if (step % 1000 == 0 || step > 39000) {
            for (int j = 0; j < 400; ++j) {
                const int* d = t.find("x/k" + std::to_string(j), j);
                REQUIRE((d != nullptr) == present[j]);
            }
            REQUIRE(t.node_count() == (count == 0 ? 1 : 2 + count));
            std::size_t seen = 0;
            t.for_each([&](std::string_view, int, int) { ++seen; });
            REQUIRE(seen == count);
        }
    }
    for (int j = 0; j < 400; ++j)
        if (present[j]) REQUIRE(t.erase("x/k" + std::to_string(j), j));
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: many std::string subscribers on one filter", "[trie]") {
    trie_t t;
    std::vector<std::string> names;
    for (int i = 0; i < 300; ++i) names.push_back("client-with-a-long-identifier-" + std::to_string(i));
    for (const auto& n : names) REQUIRE(t.insert("a/+/c", n, int(n.size())));
    std::mt19937 rng(5);
    std::shuffle(names.begin(), names.end(), rng);
    for (std::size_t k = 0; k < names.size(); ++k) {
        REQUIRE(t.erase("a/+/c", names[k]));
        std::size_t seen = 0;
        t.match("a/b/c", [&](const std::string& s, int d) {
            ++seen;
            REQUIRE(d == int(s.size()));
        }, [](const auto&) {});
        REQUIRE(seen == names.size() - k - 1);
    }
    CHECK(t.node_count() == 1);
}

TEST_CASE("trie: the level observer sees every level of the one split, also after the descent ends", "[trie]") {
    trie_t t;
    t.insert("a/#", "hash", 1);
    t.insert("a/b/c", "exact", 2);
    struct seen {
        std::vector<std::pair<std::string, std::size_t>> levels;
        std::vector<std::string> subs;
    };
    // want: how many levels the observer asks for (it returns false at the last).
    const auto run = [&](const trie_t& trie, const std::string& topic, std::size_t want) {
        seen s;
        trie.match(
            topic, [&](const std::string& sub, int) { s.subs.push_back(sub); }, [](const trie_t::shared_group&) {},
            [&](std::string_view level, std::size_t begin) {
                s.levels.emplace_back(std::string(level), begin);
                return s.levels.size() < want;
            });
        std::sort(s.subs.begin(), s.subs.end());
        return s;
    };
    using L = std::vector<std::pair<std::string, std::size_t>>;

    // The descent ends after "a" (only '#' below it); the observer still
    // gets "x", "y" and "z", with their offsets.
    seen s = run(t, "a/x/y/z", 99);
    CHECK(s.levels == L{{"a", 0}, {"x", 2}, {"y", 4}, {"z", 6}});
    CHECK(s.subs == std::vector<std::string>{"hash"});
    // An observer that stops early changes nothing about the matches.
    s = run(t, "a/b/c", 1);
    CHECK(s.levels == L{{"a", 0}});
    CHECK(s.subs == std::vector<std::string>{"exact", "hash"});
    s = run(t, "a/b/c", 2);
    CHECK(s.levels == L{{"a", 0}, {"b", 2}});
    // Empty levels are levels; no filter matches at all.
    s = run(t, "q//r/", 99);
    CHECK(s.levels == L{{"q", 0}, {"", 2}, {"r", 3}, {"", 5}});
    CHECK(s.subs.empty());
    // '$' topics: not matched by the first-level wildcard, still observed.
    t.insert("#", "all", 3);
    s = run(t, "$SYS/x", 99);
    CHECK(s.levels == L{{"$SYS", 0}, {"x", 5}});
    CHECK(s.subs.empty());
    // An empty trie.
    trie_t none;
    s = run(none, "a/b", 99);
    CHECK(s.levels == L{{"a", 0}, {"b", 2}});
}
