// Prometheus metrics for GET /metrics.
//
// Nothing is counted twice: the hot path keeps its per-thread counters
// (stats.hpp) and the namespace model its striped counters (model_stats);
// a scrape sums them into prometheus-cpp metric families and serialises
// them with prometheus-cpp's text serializer, together with whatever other
// parts of the broker registered in registry() (histograms, gauges of their
// own). Names follow the Prometheus conventions: `strata_` prefix, `_total`
// counters, base units (bytes, seconds).
//
// Thread-safety: scrape() may run on any thread, concurrently with the
// network threads; registry() is prometheus-cpp's thread-safe Registry.
#pragma once

#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace strata::broker::core {
class broker_core;
}

namespace strata::broker::hosts {
class bridge_host;
class opcua_host;
class sparkplug_host;
}

namespace strata::broker::ops {

class metrics {
public:
    explicit metrics(core::broker_core& core);

    // For metrics owned by other parts of the broker; scraped with ours.
    [[nodiscard]] prometheus::Registry& registry() noexcept { return *registry_; }
    // The Prometheus text exposition format (version 0.0.4).
    [[nodiscard]] std::string scrape() const;
    // The bridges whose state is scraped too (before the network starts).
    void set_bridges(const hosts::bridge_host* b) noexcept { bridges_ = b; }
    // Likewise the OPC UA sources.
    void set_opcua(const hosts::opcua_host* o) noexcept { opcua_ = o; }
    // Likewise the Sparkplug host.
    void set_sparkplug(const hosts::sparkplug_host* s) noexcept { sparkplug_ = s; }

private:
    core::broker_core& core_;
    const hosts::bridge_host* bridges_ = nullptr;
    const hosts::opcua_host* opcua_ = nullptr;
    const hosts::sparkplug_host* sparkplug_ = nullptr;
    std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace strata::broker::ops
