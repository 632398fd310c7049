// The retained-message tree: topic name -> current value (the last retained
// message), matched by topic filter when a client subscribes.
//
// One node per topic level, children in the same compact hash table as the
// subscription trie (see subscription_trie.hpp), the level text stored in the
// node's own allocation, the value inline (std::optional) because retained
// topics are mostly leaves. With Value = shared_ptr<message> a node is 40
// bytes plus its level text, a leaf has no child table, and its slot in the
// parent's table is 12-16 bytes: 100,000 retained ISA-95 topics cost about
// 10 MB for the tree itself (bench_trie, "heap B/topic").
//
// Matching is the mirror image of the subscription trie: here the filter has
// the wildcards and the stored topics are literal. '+' expands to every child
// of the nodes reached so far, '#' walks whole subtrees (the node it hangs
// off included: "a/#" matches "a"), literal levels are hash lookups. A '+' or
// '#' in the first filter level skips topics that begin with '$'.
//
// Thread-safety: NOT internally synchronised. set, erase and clear need
// exclusive access; find, match, for_each, size and node_count may run
// concurrently with each other.
//
// Preconditions: topics given to set/erase/find are valid topic names;
// filters given to match are valid, non-shared topic filters. Checked by
// assert in debug builds.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "namespace/subscription_trie.hpp"  // detail::level_table and friends
#include "namespace/topic.hpp"

namespace strata::ns {

template <class Value>
class retained_tree {
public:
    retained_tree() : seed_(detail::hash_seed()) { root_ = new_root(); }
    ~retained_tree() { destroy(root_); }

    retained_tree(const retained_tree&) = delete;
    retained_tree& operator=(const retained_tree&) = delete;

    // The moved-from tree is empty and usable.
    retained_tree(retained_tree&& o) noexcept
        : root_(std::exchange(o.root_, nullptr)),
          seed_(o.seed_),
          size_(std::exchange(o.size_, 0)),
          nodes_(std::exchange(o.nodes_, 0)) {}
    retained_tree& operator=(retained_tree&& o) noexcept {
        if (this != &o) {
            destroy(root_);
            root_ = std::exchange(o.root_, nullptr);
            seed_ = o.seed_;
            size_ = std::exchange(o.size_, 0);
            nodes_ = std::exchange(o.nodes_, 0);
        }
        return *this;
    }

    // Stores v as the value of topic, replacing any previous one. True when
    // the topic had no value before.
    bool set(std::string_view topic, Value v) {
        assert(valid_topic_name(topic));
        if (!root_) root_ = new_root();
        node* n = root_;
        path_buffer path;
        path.push_back(n);
        detail::level_reader levels{topic};
        try {
            while (levels.more) {
                const std::string_view level = levels.next();
                const std::uint32_t h = detail::level_hash(level, seed_);
                node* c = n->children.find(level, h);
                if (!c) {
                    c = detail::new_keyed<node>(level, h);
                    try {
                        n->children.insert(c);
                    } catch (...) {
                        detail::delete_keyed(c);
                        throw;
                    }
                    ++nodes_;
                }
                n = c;
                path.push_back(n);
            }
            if (n->value) {
                *n->value = std::move(v);
                return false;
            }
            n->value.emplace(std::move(v));
        } catch (...) {
            prune(path);
            throw;
        }
        ++size_;
        return true;
    }

    // Removes the value of topic and frees the nodes left empty. True when
    // there was a value.
    bool erase(std::string_view topic) {
        path_buffer path;
        node* n = find_node(topic, &path);
        if (!n || !n->value) return false;
        n->value.reset();
        --size_;
        prune(path);
        return true;
    }

    [[nodiscard]] const Value* find(std::string_view topic) const {
        const node* n = find_node(topic, nullptr);
        return n && n->value ? &*n->value : nullptr;
    }
    [[nodiscard]] Value* find(std::string_view topic) {
        node* n = find_node(topic, nullptr);
        return n && n->value ? &*n->value : nullptr;
    }

    // Calls f(const Value&) for every stored topic that filter matches.
    // Order is unspecified. f must not modify the tree.
    template <class F>
    void match(std::string_view filter, F&& f) const {
        assert(valid_topic_filter(filter));
        if (!root_) return;
        frontier a;
        frontier b;
        frontier* cur = &a;
        frontier* nxt = &b;
        cur->push_back(root_);
        detail::level_reader levels{filter};
        bool first = true;
        while (levels.more) {
            const std::string_view level = levels.next();
            if (level == "#") {
                std::vector<const node*> stack;
                for (std::size_t i = 0, n = cur->size(); i < n; ++i) walk(f, (*cur)[i], first, stack);
                return;
            }
            nxt->clear();
            if (level == "+") {
                for (std::size_t i = 0, n = cur->size(); i < n; ++i) {
                    (*cur)[i]->children.for_each([&](const node* c) {
                        if (!(first && is_dollar(c))) nxt->push_back(c);
                    });
                }
            } else {
                const std::uint32_t h = detail::level_hash(level, seed_);
                for (std::size_t i = 0, n = cur->size(); i < n; ++i)
                    if (const node* c = (*cur)[i]->children.find(level, h)) nxt->push_back(c);
            }
            std::swap(cur, nxt);
            first = false;
            if (cur->size() == 0) return;
        }
        for (std::size_t i = 0, n = cur->size(); i < n; ++i)
            if ((*cur)[i]->value) f(static_cast<const Value&>(*(*cur)[i]->value));
    }

    // Calls f(std::string_view topic, const Value&) for the stored topics
    // that `filter` matches and that come after `after` (nullptr: from the
    // first), in topic order, until f returns false. Topic order compares
    // level by level, each level bytewise ("a" < "a/b" < "a-b"), so a walk can stop anywhere and go on later from the
    // last topic it saw: every topic stored throughout is seen exactly once,
    // whatever is set or erased between the calls. The topic view is only
    // valid during the call; f must not modify the tree.
    //
    // Cost: the matching subtree's nodes in order, plus sorting the
    // children of each node on the way (only those after `after` on its
    // path), so a walk that stops after k topics costs about k node visits
    // and one sort per level of fan-out it crossed.
    template <class F>
    void match_ordered(std::string_view filter, const std::string_view* after, F&& f) const {
        assert(valid_topic_filter(filter));
        if (!root_) return;
        std::vector<std::string_view> want;  // the filter's levels
        for (detail::level_reader r{filter}; r.more;) want.push_back(r.next());
        std::vector<std::string_view> from;  // the levels of `after`
        if (after)
            for (detail::level_reader r{*after}; r.more;) from.push_back(r.next());
        struct item {
            const node* n;
            std::size_t depth;       // levels from the root to n
            std::size_t parent_len;  // of the path before n's level
            bool on_after;           // n's levels so far equal `after`'s
            bool below_hash;         // a '#' of the filter matched above n: its whole subtree matches
        };
        std::vector<item> stack{{root_, 0, 0, after != nullptr, false}};
        std::vector<const node*> children;
        std::string path;
        while (!stack.empty()) {
            const item it = stack.back();
            stack.pop_back();
            path.resize(it.parent_len);
            if (it.depth > 1) path += '/';
            if (it.depth > 0) path += detail::key_of(it.n);
            const bool hash_here = !it.below_hash && it.depth < want.size() && want[it.depth] == "#";
            const bool matches = it.below_hash || hash_here || it.depth == want.size();
            // On `after`'s path, n is `after` itself or a level above it:
            // both were seen already.
            if (it.n->value && matches && !it.on_after && it.depth > 0 &&
                !f(std::string_view(path), static_cast<const Value&>(*it.n->value)))
                return;
            // Which children the filter lets in.
            children.clear();
            const bool skip_dollar = it.depth == 0;
            if (it.below_hash || hash_here || (it.depth < want.size() && want[it.depth] == "+")) {
                it.n->children.for_each([&](const node* c) {
                    if (!(skip_dollar && is_dollar(c))) children.push_back(c);
                });
            } else if (it.depth < want.size()) {
                const std::string_view level = want[it.depth];
                if (const node* c = it.n->children.find(level, detail::level_hash(level, seed_))) children.push_back(c);
            }
            // Of those, the ones not before `after`.
            const bool bounded = it.on_after && it.depth < from.size();
            if (bounded) {
                const std::string_view bound = from[it.depth];
                std::erase_if(children, [&](const node* c) { return detail::key_of(c) < bound; });
            }
            std::sort(children.begin(), children.end(),
                      [](const node* a, const node* b) { return detail::key_of(a) > detail::key_of(b); });
            const bool below = it.below_hash || hash_here;
            for (const node* c : children) {
                const bool on = bounded && detail::key_of(c) == from[it.depth];
                stack.push_back({c, it.depth + 1, path.size(), on, below});
            }
        }
    }

    // Calls f(std::string_view topic, const Value&) for every stored topic.
    // Order is unspecified; the topic view is only valid during the call.
    template <class F>
    void for_each(F&& f) const {
        if (!root_) return;
        std::string path;
        struct item {
            const node* n;
            std::size_t parent_len;
            bool top;  // a first-level node: no '/' before it
        };
        std::vector<item> stack;
        root_->children.for_each([&](const node* c) { stack.push_back({c, 0, true}); });
        while (!stack.empty()) {
            const item it = stack.back();
            stack.pop_back();
            path.resize(it.parent_len);
            if (!it.top) path += '/';
            path += detail::key_of(it.n);
            if (it.n->value) f(std::string_view(path), static_cast<const Value&>(*it.n->value));
            const std::size_t len = path.size();
            it.n->children.for_each([&](const node* c) { stack.push_back({c, len, false}); });
        }
    }

    // Number of stored topics.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    // Allocated nodes, root included: 1 for an empty tree.
    [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

    void clear() {
        destroy(root_);
        root_ = nullptr;
        size_ = 0;
        nodes_ = 0;
        root_ = new_root();
    }

private:
    // No parent pointer: erase walks down from the root and remembers the path.
    struct node {
        node(std::uint32_t h, std::uint32_t ks) noexcept : key_hash(h), key_size(ks) {}

        detail::level_table<node> children;
        std::uint32_t key_hash;
        std::uint32_t key_size;
        std::optional<Value> value;
        // key_size chars of level text follow the object (detail::new_keyed).
    };
    using frontier = detail::small_buffer<const node*, 16>;
    using path_buffer = detail::small_buffer<node*, 16>;  // root first

    static bool is_dollar(const node* n) noexcept { return n->key_size != 0 && detail::key_of(n)[0] == '$'; }

    node* new_root() {
        node* r = detail::new_keyed<node>({}, 0);
        nodes_ = 1;
        return r;
    }

    node* find_node(std::string_view topic, path_buffer* path) const {
        node* n = root_;
        if (!n) return nullptr;
        if (path) path->push_back(n);
        detail::level_reader levels{topic};
        while (levels.more) {
            const std::string_view level = levels.next();
            n = n->children.find(level, detail::level_hash(level, seed_));
            if (!n) return nullptr;
            if (path) path->push_back(n);
        }
        return n;
    }

    // Every value in the subtree of `from`, `from` included. Depth-first with
    // an explicit stack: no recursion limit on topic depth. `skip_dollar`
    // applies to the children of the root (a first-level '#').
    template <class F>
    static void walk(F& f, const node* from, bool skip_dollar, std::vector<const node*>& stack) {
        stack.push_back(from);
        while (!stack.empty()) {
            const node* n = stack.back();
            stack.pop_back();
            if (n->value) f(static_cast<const Value&>(*n->value));
            if (skip_dollar && n == from) {
                n->children.for_each([&](const node* c) {
                    if (!is_dollar(c)) stack.push_back(c);
                });
            } else {
                n->children.for_each([&](const node* c) { stack.push_back(c); });
            }
        }
    }

    // Frees the deepest nodes of path for as long as they are empty; the
    // root (path[0]) stays.
    void prune(const path_buffer& path) noexcept {
        for (std::size_t i = path.size(); i-- > 1;) {
            node* n = path[i];
            if (n->value || n->children.allocated()) return;
            path[i - 1]->children.erase(n);
            detail::delete_keyed(n);
            --nodes_;
        }
    }

    static void destroy(node* root) noexcept {
        if (!root) return;
        std::vector<node*> stack;
        node* n = root;
        for (;;) {
            try {
                n->children.for_each([&](node* c) { stack.push_back(c); });
            } catch (const std::bad_alloc&) {
                // Out of memory while tearing down: leak the rest rather
                // than terminate.
            }
            detail::delete_keyed(n);
            if (stack.empty()) break;
            n = stack.back();
            stack.pop_back();
        }
    }

    node* root_ = nullptr;
    std::uint64_t seed_;
    std::size_t size_ = 0;
    std::size_t nodes_ = 0;
};

}  // namespace strata::ns
