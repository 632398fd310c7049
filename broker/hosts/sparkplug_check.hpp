// Whether what the Sparkplug host publishes fits the namespace model
// (config `sparkplug:` with `namespace: {model: ...}`, docs/sparkplug.md),
// checked before a model is put in force: at start, on reload (a model that
// does not fit is not installed, the old one stays) and by
// `strata --check-config`.
//
// Every class a metric rule names must be a data class of the model that is
// not a command class, and a sample value in the class's payload template (a
// number, a boolean, a string; good quality; RFC 3339 times) must pass the
// class's schema: when none passes, no metric of the rule can. With command
// rules, `command_class` must be a command class and `reply_class` a class
// whose schema takes the replies (sent and refused, with a request id).
//
// Thread-safety: a pure function of its arguments.
#pragma once

#include "broker/config.hpp"
#include "namespace/model.hpp"

namespace strata::broker::hosts {

// Throws config_error naming the first misfit with the config file and
// line of its mapping.
void check_sparkplug_fits_model(const config& cfg, const ns::model& m);

}  // namespace strata::broker::hosts
