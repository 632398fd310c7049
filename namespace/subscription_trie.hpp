// The subscription trie: topic filter -> subscribers, matched by topic name.
//
// One node per filter level. Literal children live in a compact per-node hash
// table keyed by the level text (looked up by string_view, no allocation);
// the '+' and '#' children have their own slots so that matching never scans
// siblings. Matching walks the topic once, level by level, carrying the set of
// nodes reached so far (the "frontier"): at each level every frontier node
// contributes its literal child for that level and its '+' child, and its '#'
// child is reported on the spot. The cost is O(levels x wildcard branches) and
// does not depend on how many unrelated filters are stored; each topic level
// is hashed once however many frontier nodes look it up. A caller that reads
// the topic level by level too (the namespace model's walk) observes the
// levels from this one split (match with an on_level callback).
//
// Rules (MQTT 4.7): '#' matches the rest of the topic including its parent
// level ("a/#" matches "a"); '+' matches exactly one level, empty or not;
// topics beginning with '$' are not matched by a first-level '+' or '#'.
// Shared subscriptions ("$share/{group}/{filter}") are stored at the node of
// {filter} as named groups, and reported once per group so that the router
// can pick one member.
//
// Thread-safety: NOT internally synchronised. Mutations (insert, erase,
// insert_shared, erase_shared, clear) need exclusive access; match, find,
// for_each, size and node_count may run concurrently with each other (the
// broker's router holds a reader-writer lock and only matches under the
// shared side). The one piece of state that const operations write is the
// round-robin cursor of a shared group (shared_group::next), which is a
// std::atomic for exactly that reason.
//
// Preconditions: filters passed to insert/erase are valid topic filters and
// not "$share/..." (split them with parse_shared first); topics passed to
// match are valid topic names. Checked by assert in debug builds.
//
// Memory: a node is 40 bytes plus its level text, in one allocation; a leaf
// has no child table at all; subscriber lists are 16-byte vectors of
// {Subscriber, Data}. A node with many subscribers gets a hash index (when
// Subscriber is hashable) so that erasing thousands of subscribers from one
// filter stays linear overall. Nodes are freed as soon as they become empty.
// With 8-byte Subscriber and Data, a million distinct exact filters cost
// about 120 MB (see benchmarks/micro/bench_trie.cpp, "heap B/sub").
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "namespace/topic.hpp"

namespace strata::ns {
namespace detail {

// Per-process random seed for level hashes, so that the bucket a level lands
// in cannot be predicted by a client that picks topic names to collide.
inline std::uint64_t hash_seed() noexcept {
    static const std::uint64_t seed = [] {
        std::uint64_t s = 0;
        try {
            std::random_device rd;
            s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
        } catch (...) {
            s = static_cast<std::uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count());
        }
        return s ^ 0x9e3779b97f4a7c15ull;
    }();
    return seed;
}

inline std::uint64_t mix64(std::uint64_t a, std::uint64_t b) noexcept {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

// Hash of one level, 32 bits, never 0 (0 marks an empty table slot). Levels
// are short (ISA-95 names, metric names), so this reads 8 bytes at a time
// and costs one or two multiplications for a typical level.
inline std::uint32_t level_hash(std::string_view s, std::uint64_t seed) noexcept {
    constexpr std::uint64_t k0 = 0xa0761d6478bd642full;
    constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbull;
    constexpr std::uint64_t k2 = 0x8ebc6af09c88c6e3ull;
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t h = seed ^ (static_cast<std::uint64_t>(n) * k0);
    while (n >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix64(h ^ w ^ k1, k2);
        p += 8;
        n -= 8;
    }
    if (n != 0) {
        std::uint64_t w = 0;
        std::memcpy(&w, p, n);
        h = mix64(h ^ w ^ k2, k1);
    }
    h = mix64(h ^ k0, k1 ^ seed);
    return static_cast<std::uint32_t>(h) | 0x80000000u;
}

// Reads a topic or filter one level at a time ("a//b" -> "a", "", "b").
struct level_reader {
    std::string_view text;
    std::size_t pos = 0;
    bool more = true;

    std::string_view next() noexcept {
        const std::size_t slash = text.find('/', pos);
        std::string_view level;
        if (slash == std::string_view::npos) {
            level = text.substr(pos);
            pos = text.size();
            more = false;
        } else {
            level = text.substr(pos, slash - pos);
            pos = slash + 1;
        }
        return level;
    }
};

// Nodes carry their level text right after the object, in the same
// allocation: one malloc per node, no std::string (32 bytes) per node.
// Node needs a noexcept constructor Node(uint32_t hash, uint32_t key_size)
// and members `key_hash`, `key_size`.
template <class Node>
Node* new_keyed(std::string_view key, std::uint32_t hash) {
    static_assert(std::is_nothrow_constructible_v<Node, std::uint32_t, std::uint32_t>);
    void* mem = ::operator new(sizeof(Node) + key.size());
    Node* n = ::new (mem) Node(hash, static_cast<std::uint32_t>(key.size()));
    if (!key.empty()) std::memcpy(reinterpret_cast<char*>(n + 1), key.data(), key.size());
    return n;
}

template <class Node>
void delete_keyed(Node* n) noexcept {
    n->~Node();
    ::operator delete(static_cast<void*>(n));
}

template <class Node>
std::string_view key_of(const Node* n) noexcept {
    return {reinterpret_cast<const char*>(n + 1), n->key_size};
}

// For tables whose header carries nothing besides the literal children.
struct no_extra {
    [[nodiscard]] bool empty() const noexcept { return true; }
};

// The children of one node: a single heap block, nullptr for a leaf (so a
// leaf pays 8 bytes). The block starts with a small header holding `Extra`
// (the subscription trie keeps its '+' and '#' children there: they are read
// together with the literal table, in the same cache line), followed by
// parallel arrays of 32-bit hash tags and child pointers.
//
// Up to `linear_max` literal children the arrays are dense and scanned (the
// tags fit in one cache line and are compared before any key is touched);
// beyond that it is an open-addressing table with linear probing, load at
// most 3/4, and backward-shift deletion (no tombstones, so probes stay short
// after churn). The block exists exactly while there is a literal child or
// a non-empty Extra. The table does not own the nodes.
template <class Node, class Extra = no_extra>
class level_table {
public:
    level_table() noexcept = default;
    level_table(const level_table&) = delete;
    level_table& operator=(const level_table&) = delete;
    ~level_table() { ::operator delete(static_cast<void*>(block_)); }

    // False for a leaf: no literal children and an empty Extra.
    [[nodiscard]] bool allocated() const noexcept { return block_ != nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return block_ ? block_->size : 0; }

    [[nodiscard]] const Extra* extra() const noexcept { return block_ ? &block_->extra : nullptr; }
    // Creates the block if needed; call compact() after emptying the Extra.
    Extra& extra_mut() {
        if (!block_) header_only(Extra{});
        return block_->extra;
    }
    // Frees the block once it holds nothing.
    void compact() noexcept {
        if (block_ && block_->size == 0 && block_->extra.empty()) {
            ::operator delete(static_cast<void*>(block_));
            block_ = nullptr;
        }
    }

    [[nodiscard]] Node* find(std::string_view key, std::uint32_t hash) const noexcept {
        if (!block_) return nullptr;
        const std::uint32_t* t = tags(block_);
        Node* const* p = ptrs(block_);
        if (block_->capacity <= linear_max) {
            for (std::uint32_t i = 0, n = block_->size; i < n; ++i)
                if (t[i] == hash && key_of(p[i]) == key) return p[i];
            return nullptr;
        }
        const std::uint32_t mask = block_->capacity - 1;
        for (std::uint32_t i = hash & mask;; i = (i + 1) & mask) {
            if (t[i] == 0) return nullptr;
            if (t[i] == hash && key_of(p[i]) == key) return p[i];
        }
    }

    // Precondition: no child with the same key is present.
    void insert(Node* n) {
        const std::uint32_t size = static_cast<std::uint32_t>(this->size());
        const std::uint32_t cap = block_ ? block_->capacity : 0;
        if (!block_ || cap <= linear_max) {
            if (!block_ || size == cap) rebuild(size < linear_max ? grow_linear(cap) : 2 * linear_max);
        } else if ((size + 1) * 4 > cap * 3) {
            rebuild(cap * 2);
        }
        put(block_, n);
        ++block_->size;
    }

    // Precondition: n is present.
    void erase(const Node* n) noexcept {
        std::uint32_t* t = tags(block_);
        Node** p = ptrs(block_);
        const std::uint32_t cap = block_->capacity;
        if (cap <= linear_max) {
            std::uint32_t i = 0;
            while (p[i] != n) ++i;
            const std::uint32_t last = block_->size - 1;
            t[i] = t[last];
            p[i] = p[last];
            t[last] = 0;
            p[last] = nullptr;
        } else {
            const std::uint32_t mask = cap - 1;
            std::uint32_t i = n->key_hash & mask;
            while (p[i] != n) i = (i + 1) & mask;
            // Backward shift: pull later entries of the probe run into the
            // hole unless that would move them before their home slot.
            for (std::uint32_t j = (i + 1) & mask; t[j] != 0; j = (j + 1) & mask) {
                const std::uint32_t home = t[j] & mask;
                const bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
                if (movable) {
                    t[i] = t[j];
                    p[i] = p[j];
                    i = j;
                }
            }
            t[i] = 0;
            p[i] = nullptr;
        }
        const std::uint32_t size = --block_->size;
        if (size == 0) {
            compact();
            if (!block_) return;
        }
        // Give memory back after mass unsubscribes. Best effort: if memory
        // is short, keep the bigger block.
        try {
            if (size == 0) {
                header_only(block_->extra);  // only the Extra is left
            } else if (cap > linear_max) {
                if (size <= linear_max / 2) rebuild(linear_max);
                else if (size * 8 < cap) rebuild(cap / 2);
            } else if (cap > 4 && size * 4 <= cap) {
                rebuild(cap / 2);
            }
        } catch (const std::bad_alloc&) {
        }
    }

    // f(Node*) for every literal child.
    template <class F>
    void for_each(F&& f) const {
        if (!block_) return;
        Node* const* p = ptrs(block_);
        const std::uint32_t n = block_->capacity <= linear_max ? block_->size : block_->capacity;
        for (std::uint32_t i = 0; i < n; ++i)
            if (p[i]) f(p[i]);
    }

private:
    static constexpr std::uint32_t linear_max = 16;

    struct header {
        std::uint32_t size;
        std::uint32_t capacity;
        [[no_unique_address]] Extra extra;
    };

    // 1, 2, 4, 6, 9, 13, 16: a node with ten children (ten metrics under a
    // machine) wastes three slots, not six.
    static std::uint32_t grow_linear(std::uint32_t cap) noexcept {
        const std::uint32_t next = cap < 4 ? (cap == 0 ? 1 : cap * 2) : cap + cap / 2;
        return next < linear_max ? next : linear_max;
    }

    static std::size_t ptrs_offset(std::uint32_t cap) noexcept {
        const std::size_t end_of_tags = sizeof(header) + sizeof(std::uint32_t) * cap;
        return (end_of_tags + alignof(Node*) - 1) & ~(alignof(Node*) - 1);
    }
    static std::uint32_t* tags(header* b) noexcept {
        return reinterpret_cast<std::uint32_t*>(reinterpret_cast<char*>(b) + sizeof(header));
    }
    static const std::uint32_t* tags(const header* b) noexcept {
        return reinterpret_cast<const std::uint32_t*>(reinterpret_cast<const char*>(b) + sizeof(header));
    }
    static Node** ptrs(header* b) noexcept {
        return reinterpret_cast<Node**>(reinterpret_cast<char*>(b) + ptrs_offset(b->capacity));
    }
    static Node* const* ptrs(const header* b) noexcept {
        return reinterpret_cast<Node* const*>(reinterpret_cast<const char*>(b) + ptrs_offset(b->capacity));
    }

    // Places n into b without touching b->size.
    static void put(header* b, Node* n) noexcept {
        std::uint32_t* t = tags(b);
        Node** p = ptrs(b);
        std::uint32_t i;
        if (b->capacity <= linear_max) {
            i = b->size;
        } else {
            const std::uint32_t mask = b->capacity - 1;
            for (i = n->key_hash & mask; t[i] != 0; i = (i + 1) & mask) {
            }
        }
        t[i] = n->key_hash;
        p[i] = n;
    }

    // Replaces the block (if any) by a bare header holding `extra`.
    void header_only(Extra extra) {
        auto* b = static_cast<header*>(::operator new(sizeof(header)));
        ::new (b) header{0, 0, extra};
        ::operator delete(static_cast<void*>(block_));
        block_ = b;
    }

    // Moves the children (and the Extra) into a new block of `cap` > 0 slots.
    void rebuild(std::uint32_t cap) {
        static_assert(std::is_trivially_copyable_v<Extra>);
        const std::size_t bytes = ptrs_offset(cap) + sizeof(Node*) * cap;
        auto* b = static_cast<header*>(::operator new(bytes));
        ::new (b) header{0, cap, block_ ? block_->extra : Extra{}};
        std::memset(tags(b), 0, sizeof(std::uint32_t) * cap);
        std::memset(static_cast<void*>(ptrs(b)), 0, sizeof(Node*) * cap);
        if (block_) {
            for_each([b](Node* n) {
                put(b, n);
                ++b->size;
            });
            ::operator delete(static_cast<void*>(block_));
        }
        block_ = b;
    }

    header* block_ = nullptr;
};

// A vector in 16 bytes instead of 24 (32-bit size and capacity): one per
// trie node, so the 8 bytes count at a million nodes. Elements must be
// nothrow-movable or copyable.
template <class T>
class compact_vector {
public:
    compact_vector() noexcept = default;
    compact_vector(const compact_vector&) = delete;
    compact_vector& operator=(const compact_vector&) = delete;
    ~compact_vector() { release(); }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] T& operator[](std::size_t i) noexcept { return data_[i]; }
    [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    [[nodiscard]] T* begin() noexcept { return data_; }
    [[nodiscard]] T* end() noexcept { return data_ + size_; }
    [[nodiscard]] const T* begin() const noexcept { return data_; }
    [[nodiscard]] const T* end() const noexcept { return data_ + size_; }

    void push_back(T v) {
        if (size_ == cap_) reallocate(cap_ == 0 ? 1 : cap_ * 2);
        ::new (static_cast<void*>(data_ + size_)) T(std::move(v));
        ++size_;
    }
    void pop_back() noexcept { data_[--size_].~T(); }

    // Halves the buffer when it is at most a quarter full (best effort).
    void shrink_if_sparse() noexcept {
        if (size_ == 0) {
            release();
        } else if (cap_ > 4 && size_ * 4 <= cap_) {
            try {
                reallocate(cap_ / 2);
            } catch (...) {
            }
        }
    }

    void release() noexcept {
        std::destroy(data_, data_ + size_);
        if (data_) std::allocator<T>{}.deallocate(data_, cap_);
        data_ = nullptr;
        size_ = cap_ = 0;
    }

private:
    void reallocate(std::uint32_t cap) {
        T* fresh = std::allocator<T>{}.allocate(cap);
        if constexpr (std::is_nothrow_move_constructible_v<T>) {
            std::uninitialized_move(data_, data_ + size_, fresh);
        } else {
            try {
                std::uninitialized_copy(data_, data_ + size_, fresh);
            } catch (...) {
                std::allocator<T>{}.deallocate(fresh, cap);
                throw;
            }
        }
        std::destroy(data_, data_ + size_);
        if (data_) std::allocator<T>{}.deallocate(data_, cap_);
        data_ = fresh;
        cap_ = cap;
    }

    T* data_ = nullptr;
    std::uint32_t size_ = 0;
    std::uint32_t cap_ = 0;
};

// A stack buffer of pointers that spills to the heap only when a match fans
// out through many wildcard branches or a topic is very deep.
template <class T, std::size_t N>
class small_buffer {
public:
    void push_back(T v) {
        if (size_ < N) inline_[size_] = v;
        else heap_.push_back(v);
        ++size_;
    }
    [[nodiscard]] T operator[](std::size_t i) const noexcept { return i < N ? inline_[i] : heap_[i - N]; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    void clear() noexcept {
        size_ = 0;
        heap_.clear();
    }

private:
    std::array<T, N> inline_;
    std::vector<T> heap_;
    std::size_t size_ = 0;
};

template <class T>
concept std_hashable = requires(const T& v) {
    { std::hash<T>{}(v) } -> std::convertible_to<std::size_t>;
};

}  // namespace detail

template <class Subscriber, class Data>
class subscription_trie {
    static_assert(std::copyable<Subscriber> && std::equality_comparable<Subscriber>,
                  "Subscriber must be copyable and equality comparable");

public:
    struct subscription {
        Subscriber subscriber;
        Data data;
    };

    // Subscribers of one filter that share one group name. Reported once per
    // matching publish; the router delivers to one member, e.g.
    // `group.members()[group.next() % group.members().size()]` (or pick()).
    // members() is never empty while the group is in the trie.
    class shared_group {
    public:
        explicit shared_group(std::string_view name) : name_(name) {}

        [[nodiscard]] std::string_view name() const noexcept { return name_; }
        [[nodiscard]] std::span<const subscription> members() const noexcept { return members_; }
        // Atomically advances the round-robin cursor and returns its old
        // value; safe from concurrent matches under a shared lock.
        [[nodiscard]] std::uint32_t next() const noexcept {
            return cursor_.fetch_add(1, std::memory_order_relaxed);
        }
        [[nodiscard]] const subscription& pick() const noexcept { return members_[next() % members_.size()]; }

    private:
        friend class subscription_trie;
        std::string name_;
        std::vector<subscription> members_;  // in join order
        mutable std::atomic<std::uint32_t> cursor_{0};
    };

    subscription_trie() : seed_(detail::hash_seed()) { root_ = new_root(); }
    ~subscription_trie() { destroy(root_); }

    subscription_trie(const subscription_trie&) = delete;
    subscription_trie& operator=(const subscription_trie&) = delete;

    // The moved-from trie is empty and usable (its root is recreated lazily).
    subscription_trie(subscription_trie&& o) noexcept
        : root_(std::exchange(o.root_, nullptr)),
          seed_(o.seed_),
          size_(std::exchange(o.size_, 0)),
          nodes_(std::exchange(o.nodes_, 0)) {}
    subscription_trie& operator=(subscription_trie&& o) noexcept {
        if (this != &o) {
            destroy(root_);
            root_ = std::exchange(o.root_, nullptr);
            seed_ = o.seed_;
            size_ = std::exchange(o.size_, 0);
            nodes_ = std::exchange(o.nodes_, 0);
        }
        return *this;
    }

    // Adds (subscriber, data) under filter, or replaces the data of that
    // subscriber's existing subscription to the same filter. True when new.
    bool insert(std::string_view filter, const Subscriber& s, const Data& d) {
        assert(valid_topic_filter(filter));
        path_buffer path;
        node* n = make_path(filter, path);
        if (const std::size_t i = find_sub(*n, s); i != npos) {
            n->subs[i].data = d;
            return false;
        }
        try {
            add_sub(*n, s, d);
        } catch (...) {
            prune(path);
            throw;
        }
        ++size_;
        return true;
    }

    // Removes that subscriber's subscription to filter. True when it existed.
    bool erase(std::string_view filter, const Subscriber& s) {
        path_buffer path;
        node* n = find_path(filter, &path);
        if (!n) return false;
        const std::size_t i = find_sub(*n, s);
        if (i == npos) return false;
        remove_sub(*n, i);
        --size_;
        prune(path);
        return true;
    }

    // Shared subscription "$share/{group}/{filter}": group is the share name
    // (non-empty, no '/', '+', '#'), filter the part after it. True when new;
    // an existing membership gets its data replaced.
    bool insert_shared(std::string_view group, std::string_view filter, const Subscriber& s, const Data& d) {
        assert(valid_topic_filter(filter) && !group.empty());
        path_buffer path;
        node* n = make_path(filter, path);
        try {
            if (!n->extra) n->extra = std::make_unique<node_extra>();
            shared_group* g = find_group(*n, group);
            if (!g) g = n->extra->groups.emplace_back(std::make_unique<shared_group>(group)).get();
            for (auto& m : g->members_) {
                if (m.subscriber == s) {
                    m.data = d;
                    return false;
                }
            }
            g->members_.push_back(subscription{s, d});
        } catch (...) {
            drop_empty_group(*n, group);
            prune(path);
            throw;
        }
        ++size_;
        return true;
    }

    bool erase_shared(std::string_view group, std::string_view filter, const Subscriber& s) {
        path_buffer path;
        node* n = find_path(filter, &path);
        if (!n) return false;
        shared_group* g = find_group(*n, group);
        if (!g) return false;
        auto& members = g->members_;
        for (auto it = members.begin(); it != members.end(); ++it) {
            if (it->subscriber == s) {
                members.erase(it);  // keeps join order, so round robin stays fair
                --size_;
                drop_empty_group(*n, group);
                prune(path);
                return true;
            }
        }
        return false;
    }

    // Calls on_sub(const Subscriber&, const Data&) once for every non-shared
    // subscription whose filter matches topic (a subscriber with several
    // matching filters is reported once per filter), and
    // on_group(const shared_group&) once per matching shared group. The
    // callbacks must not modify the trie.
    template <class OnSub, class OnGroup>
    void match(std::string_view topic, OnSub&& on_sub, OnGroup&& on_group) const {
        match(topic, on_sub, on_group, [](std::string_view, std::size_t) noexcept { return false; });
    }

    // The same, and on_level(std::string_view level, std::size_t begin) -> bool
    // is called for the topic's levels in order (begin: the level's offset in
    // topic), each before it is matched, from the one split the descent uses:
    // a caller that reads the topic level by level too (the namespace model,
    // see ns::topic_walk) does so in this loop. When the descent ends early
    // (e.g. only "acme/#" below "acme") the remaining levels are still read
    // for on_level, for as long as it returns true.
    template <class OnSub, class OnGroup, class OnLevel>
    void match(std::string_view topic, OnSub&& on_sub, OnGroup&& on_group, OnLevel&& on_level) const {
        assert(valid_topic_name(topic));
        auto emit = [&](const node* n) {
            for (const subscription& sub : n->subs) on_sub(sub.subscriber, sub.data);
            if (n->extra)
                for (const auto& g : n->extra->groups) on_group(static_cast<const shared_group&>(*g));
        };

        // The '$' rule: at the first level of a '$' topic, skip '+' and '#'.
        const bool dollar = !topic.empty() && topic.front() == '$';
        frontier a;
        frontier b;
        frontier* cur = &a;
        frontier* nxt = &b;
        if (root_) cur->push_back(root_);
        detail::level_reader levels{topic};
        bool first = true;
        bool observe = true;  // on_level wants this level
        while (levels.more) {
            const std::size_t begin = levels.pos;
            const std::string_view level = levels.next();
            if (observe) observe = on_level(level, begin);
            if (cur->size() == 0) {
                // The descent is over; only on_level still reads.
                if (!observe) return;
                continue;
            }
            std::uint32_t hash = 0;  // computed on first use, then shared
            nxt->clear();
            for (std::size_t i = 0, n = cur->size(); i < n; ++i) {
                const wild_children* w = (*cur)[i]->children.extra();
                if (!w) continue;  // a leaf: no way further down
                if (!(first && dollar)) {
                    if (w->hash) emit(w->hash);  // '#' matches this level and all below
                    if (w->plus) nxt->push_back(w->plus);
                }
                if ((*cur)[i]->children.size() != 0) {
                    if (hash == 0) hash = detail::level_hash(level, seed_);
                    if (const node* c = (*cur)[i]->children.find(level, hash)) nxt->push_back(c);
                }
            }
            std::swap(cur, nxt);
            first = false;
            if (cur->size() == 0 && !observe) return;
        }
        for (std::size_t i = 0, n = cur->size(); i < n; ++i) {
            const node* at = (*cur)[i];
            emit(at);
            const wild_children* w = at->children.extra();
            if (w && w->hash) emit(w->hash);  // "a/#" also matches "a"
        }
    }

    // The data of s's subscription to exactly this filter, or nullptr.
    [[nodiscard]] const Data* find(std::string_view filter, const Subscriber& s) const {
        const node* n = find_path(filter, nullptr);
        if (!n) return nullptr;
        const std::size_t i = find_sub(*n, s);
        return i == npos ? nullptr : &n->subs[i].data;
    }

    // Calls f(std::string_view filter, const Subscriber&, const Data&) for
    // every subscription; shared ones are given as "$share/{group}/{filter}".
    // Order is unspecified. The filter view is only valid during the call.
    template <class F>
    void for_each(F&& f) const {
        if (!root_) return;
        std::string path;
        std::string shared;
        struct item {
            const node* n;
            std::size_t parent_len;
            bool top;  // a first-level node: no '/' before it
        };
        std::vector<item> stack;
        auto push_children = [&](const node* n, std::size_t len, bool top) {
            n->children.for_each([&](const node* c) { stack.push_back({c, len, top}); });
            if (const wild_children* w = n->children.extra()) {
                if (w->plus) stack.push_back({w->plus, len, top});
                if (w->hash) stack.push_back({w->hash, len, top});
            }
        };
        push_children(root_, 0, true);
        while (!stack.empty()) {
            const item it = stack.back();
            stack.pop_back();
            path.resize(it.parent_len);
            if (!it.top) path += '/';
            path += detail::key_of(it.n);
            for (const subscription& sub : it.n->subs) f(std::string_view(path), sub.subscriber, sub.data);
            if (it.n->extra) {
                for (const auto& g : it.n->extra->groups) {
                    shared.assign("$share/").append(g->name_).append("/").append(path);
                    for (const subscription& m : g->members_) f(std::string_view(shared), m.subscriber, m.data);
                }
            }
            push_children(it.n, path.size(), false);
        }
    }

    // Number of subscriptions, shared memberships included.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    // Allocated nodes, root included: 1 for an empty trie.
    [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

    void clear() {
        destroy(root_);
        root_ = nullptr;
        size_ = 0;
        nodes_ = 0;
        root_ = new_root();
    }

private:
    struct node;
    using frontier = detail::small_buffer<const node*, 16>;
    using path_buffer = detail::small_buffer<node*, 16>;  // root first
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    // A node with this many subscribers gets a subscriber -> position index;
    // it is dropped again below index_drop (hysteresis, so that a filter
    // hovering around the threshold does not rebuild it on every change).
    static constexpr std::size_t index_build = 32;
    static constexpr std::size_t index_drop = 8;
    static constexpr bool indexable = detail::std_hashable<Subscriber>;
    struct no_index {};
    using index_map =
        std::conditional_t<indexable, std::unordered_map<Subscriber, std::uint32_t>, no_index>;

    // Rarely needed parts of a node, allocated on demand so that the common
    // node (a few subscribers, no shared group) stays small.
    struct node_extra {
        [[no_unique_address]] index_map index;  // empty unless subs.size() >= index_build
        std::vector<std::unique_ptr<shared_group>> groups;
    };

    // The '+' and '#' children, kept in the header of the child table.
    struct wild_children {
        node* plus = nullptr;
        node* hash = nullptr;  // always a leaf
        [[nodiscard]] bool empty() const noexcept { return !plus && !hash; }
    };

    // 40 bytes plus the level text; no parent pointer (erase walks down from
    // the root and remembers the path).
    struct node {
        node(std::uint32_t h, std::uint32_t ks) noexcept : key_hash(h), key_size(ks) {}

        detail::level_table<node, wild_children> children;
        detail::compact_vector<subscription> subs;
        std::unique_ptr<node_extra> extra;
        std::uint32_t key_hash;
        std::uint32_t key_size;
        // key_size chars of level text follow the object (detail::new_keyed).
    };

    node* new_root() {
        node* r = detail::new_keyed<node>({}, 0);
        nodes_ = 1;
        return r;
    }

    node* make_path(std::string_view filter, path_buffer& path) {
        if (!root_) root_ = new_root();
        node* n = root_;
        path.push_back(n);
        detail::level_reader levels{filter};
        try {
            while (levels.more) {
                const std::string_view level = levels.next();
                if (level == "+" || level == "#") {
                    wild_children& w = n->children.extra_mut();
                    node*& slot = level == "+" ? w.plus : w.hash;
                    if (!slot) {
                        try {
                            slot = detail::new_keyed<node>(level, 0);
                        } catch (...) {
                            n->children.compact();
                            throw;
                        }
                        ++nodes_;
                    }
                    n = slot;
                } else {
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
                }
                path.push_back(n);
            }
        } catch (...) {
            prune(path);  // do not leave a chain of empty nodes behind
            throw;
        }
        return n;
    }

    node* find_path(std::string_view filter, path_buffer* path) const {
        node* n = root_;
        if (!n) return nullptr;
        if (path) path->push_back(n);
        detail::level_reader levels{filter};
        while (levels.more) {
            const std::string_view level = levels.next();
            if (level == "+" || level == "#") {
                const wild_children* w = n->children.extra();
                n = !w ? nullptr : level == "+" ? w->plus : w->hash;
            } else {
                n = n->children.find(level, detail::level_hash(level, seed_));
            }
            if (!n) return nullptr;
            if (path) path->push_back(n);
        }
        return n;
    }

    std::size_t find_sub(const node& n, const Subscriber& s) const {
        if constexpr (indexable) {
            if (n.extra && !n.extra->index.empty()) {
                const auto it = n.extra->index.find(s);
                return it == n.extra->index.end() ? npos : it->second;
            }
        }
        for (std::size_t i = 0; i < n.subs.size(); ++i)
            if (n.subs[i].subscriber == s) return i;
        return npos;
    }

    void add_sub(node& n, const Subscriber& s, const Data& d) {
        n.subs.push_back(subscription{s, d});
        if constexpr (indexable) {
            try {
                const std::size_t count = n.subs.size();
                if (n.extra && !n.extra->index.empty()) {
                    n.extra->index.emplace(s, static_cast<std::uint32_t>(count - 1));
                } else if (count >= index_build) {
                    if (!n.extra) n.extra = std::make_unique<node_extra>();
                    auto& index = n.extra->index;
                    index.reserve(count * 2);
                    for (std::size_t i = 0; i < count; ++i)
                        index.emplace(n.subs[i].subscriber, static_cast<std::uint32_t>(i));
                }
            } catch (...) {
                // Keep vector and index consistent: undo the push, drop the
                // (possibly partial) index; lookups fall back to a scan.
                n.subs.pop_back();
                if (n.extra) n.extra->index = index_map{};
                release_extra_if_unused(n);
                throw;
            }
        }
    }

    // Swap-and-pop: O(1) after the lookup; order of n.subs is not meaningful.
    void remove_sub(node& n, std::size_t i) noexcept {
        const std::size_t last = n.subs.size() - 1;
        if constexpr (indexable) {
            if (n.extra && !n.extra->index.empty()) {
                auto& index = n.extra->index;
                index.erase(n.subs[i].subscriber);
                if (i != last) index.find(n.subs[last].subscriber)->second = static_cast<std::uint32_t>(i);
                if (last < index_drop) index = index_map{};
            }
        }
        if (i != last) n.subs[i] = std::move(n.subs[last]);
        n.subs.pop_back();
        n.subs.shrink_if_sparse();  // a drained fan-out node gives its buffer back
        release_extra_if_unused(n);
    }

    shared_group* find_group(const node& n, std::string_view group) const noexcept {
        if (!n.extra) return nullptr;
        for (const auto& g : n.extra->groups)
            if (g->name_ == group) return g.get();
        return nullptr;
    }

    void drop_empty_group(node& n, std::string_view group) noexcept {
        if (!n.extra) return;
        auto& groups = n.extra->groups;
        for (auto it = groups.begin(); it != groups.end(); ++it) {
            if ((*it)->name_ == group) {
                if ((*it)->members_.empty()) groups.erase(it);
                break;
            }
        }
        release_extra_if_unused(n);
    }

    void release_extra_if_unused(node& n) noexcept {
        if (!n.extra || !n.extra->groups.empty()) return;
        if constexpr (indexable) {
            if (!n.extra->index.empty()) return;
        }
        n.extra.reset();
    }

    static bool unused(const node& n) noexcept {
        return n.subs.empty() && !n.extra && !n.children.allocated();
    }

    // Frees the deepest nodes of path for as long as they are empty; the
    // root (path[0]) stays.
    void prune(const path_buffer& path) noexcept {
        for (std::size_t i = path.size(); i-- > 1;) {
            node* n = path[i];
            if (!unused(*n)) return;
            node* p = path[i - 1];
            const wild_children* w = p->children.extra();
            if (w && (w->plus == n || w->hash == n)) {
                wild_children& wm = p->children.extra_mut();  // exists: no allocation
                (wm.plus == n ? wm.plus : wm.hash) = nullptr;
                p->children.compact();
            } else {
                p->children.erase(n);
            }
            detail::delete_keyed(n);
            --nodes_;
        }
    }

    // Iterative: filters can be 32k levels deep ("a/a/a/..."), too deep to
    // recurse on a small coroutine or thread stack.
    static void destroy(node* root) noexcept {
        if (!root) return;
        std::vector<node*> stack;
        node* n = root;
        for (;;) {
            try {
                n->children.for_each([&](node* c) { stack.push_back(c); });
                if (const wild_children* w = n->children.extra()) {
                    if (w->plus) stack.push_back(w->plus);
                    if (w->hash) stack.push_back(w->hash);
                }
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
