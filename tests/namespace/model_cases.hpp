// Cases shared by the model tests: topics of the example model
// (deploy/namespace/acme.yaml) -- passing topics of every class, with and
// without the optional cell, and refused ones at every level with the
// reason the model gives -- and small models for optional levels and
// mixed level rules. Test data only; no thread-safety concerns.
#pragma once

#include <string>
#include <vector>

namespace strata::ns {

inline const std::vector<std::string>& acme_valid_topics() {
    static const std::vector<std::string> topics = {
        "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry",
        "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry/temperature",
        "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry/hydraulics/pressure",
        "acme/dresden/press-shop/line-2/press-7/telemetry/temperature",
        "acme/dresden/press-shop/line-2/press-7/state",
        "acme/leipzig/assembly/line-12/cell-3/spot-welder-3/alarm",
        "acme/leipzig/assembly/line-1/robot-12/cmd",
        "acme/leipzig/assembly/line-1/robot-12/oee",
        "acme/leipzig/assembly/line-1/oee",
        "acme/dresden/press-shop/line-99/cell-99/press-999/state",
    };
    return topics;
}

struct acme_bad_topic {
    std::string topic;
    std::string reason;
};

inline const std::vector<acme_bad_topic>& acme_invalid_topics() {
    static const std::vector<acme_bad_topic> cases = {
        {"umbrella/dresden/press-shop/line-2/press-7/state", "level 'enterprise': 'umbrella' is not one of [acme]"},
        {"acme/dresdn/press-shop/line-2/press-7/state",
         "level 'site': 'dresdn' is not one of [dresden, leipzig] (did you mean 'dresden'?)"},
        {"acme/dresden/paint-shop/line-2/press-7/state", "level 'area': 'paint-shop' is not one of [press-shop, assembly]"},
        {"acme/dresden/asembly/line-2/press-7/state",
         "level 'area': 'asembly' is not one of [press-shop, assembly] (did you mean 'assembly'?)"},
        {"acme/dresden/press-shop/Line-2/press-7/state", "level 'line': 'Line-2' does not match 'line-[0-9]{1,2}'"},
        {"acme/dresden/press-shop/line-100/press-7/state", "level 'line': 'line-100' does not match 'line-[0-9]{1,2}'"},
        {"acme/dresden/press-shop/line-2/Press 7/state",
         "level 'cell' or 'equipment' or data class: 'Press 7' is not accepted (cell: does not match "
         "'cell-[0-9]{1,2}'; equipment: does not match '[a-z]+(-[a-z]+)*-[0-9]{1,3}'; data classes here: oee)"},
        // 'cell-1' could also be an equipment name (the pattern accepts it), so
        // a data class could follow it too.
        {"acme/dresden/press-shop/line-2/cell-1/press/state",
         "level 'equipment' or data class: 'press' is not accepted (equipment: does not match "
         "'[a-z]+(-[a-z]+)*-[0-9]{1,3}'; data classes here: telemetry, state, oee, alarm, cmd, reply)"},
        {"acme/dresden/press-shop/line-2/cell-1/robot-7/press/state",
         "after equipment 'robot-7': 'press' is not a data class (expected telemetry, state, oee, alarm, cmd, reply)"},
        {"acme/dresden/press-shop/line-2/cell-1/press-7/temprature",
         "after equipment 'press-7': 'temprature' is not a data class (expected telemetry, state, oee, alarm, cmd, reply)"},
        {"acme/dresden/press-shop/line-2/press-7/telemetri",
         "after equipment 'press-7': 'telemetri' is not a data class (expected telemetry, state, oee, alarm, cmd, reply) "
         "(did you mean 'telemetry'?)"},
        // Incomplete topics, at every level.
        {"acme", "incomplete topic: ends after enterprise 'acme'; expected level 'site'"},
        {"acme/dresden", "incomplete topic: ends after site 'dresden'; expected level 'area'"},
        {"acme/dresden/press-shop", "incomplete topic: ends after area 'press-shop'; expected level 'line'"},
        {"acme/dresden/press-shop/line-2",
         "incomplete topic: ends after line 'line-2'; expected level 'cell' or 'equipment', or a data class (oee)"},
        {"acme/dresden/press-shop/line-2/cell-1",
         "incomplete topic: ends after cell 'cell-1'; expected level 'equipment', or a data class (telemetry, state, "
         "oee, alarm, cmd, reply)"},
        {"acme/dresden/press-shop/line-2/cell-12",
         "incomplete topic: ends after cell 'cell-12'; expected level 'equipment', or a data class (telemetry, state, "
         "oee, alarm, cmd, reply)"},
        {"acme/dresden/press-shop/line-2/cell-1/press-7",
         "incomplete topic: ends after equipment 'press-7'; expected a data class (telemetry, state, oee, alarm, cmd, reply)"},
        // Empty levels.
        {"/acme/dresden", "empty first level"},
        {"acme//press-shop", "empty level after enterprise 'acme'"},
        {"acme/dresden/press-shop/line-2/press-7/telemetry/", "empty level in the subtopic of class 'telemetry'"},
        {"acme/dresden/press-shop/line-2/press-7/telemetry//x", "empty level in the subtopic of class 'telemetry'"},
        // '$' topics that are not free are not in the model either.
        {"$internal/x", "level 'enterprise': '$internal' is reserved: topics starting with '$' belong to the broker"},
    };
    return cases;
}

// An optional cell between a pattern level and an `any` level.
inline const std::string optional_cell_model = R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: line, pattern: "line-[0-9]+"}
  - {name: cell, pattern: "cell-[0-9]+", optional: true}
  - {name: equipment, any: true}
classes:
  telemetry:
  state:
)";

// Two optional levels, a class allowed under several levels.
inline const std::string two_optional_levels_model = R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, names: [dd]}
  - {name: area, names: [pressing], optional: true}
  - {name: line, pattern: "line-[0-9]+", optional: true}
  - {name: machine, pattern: "m[0-9]+"}
classes:
  data:
  kpi:
    under: [site, area, line, machine]
)";

// A level with both names and a pattern; a level accepting any name.
inline const std::string names_and_pattern_model = R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, names: [hq, lab], pattern: "plant-[a-z]{2}"}
  - {name: thing, any: true}
classes:
  data:
)";

}  // namespace strata::ns
