// Whether what the OPC UA sources publish fits the namespace model (config
// `opcua:` with `namespace: {model: ...}`, docs/opcua.md), checked before
// a model is put in force: at start, on reload (a model that does not fit
// is not installed, the old one stays) and by `strata --check-config`.
//
// Each mapping's topic (a browse mapping's prefix plus a sample name) is
// read by the model, and sample payloads built as the source builds them
// (its template, or the default payload) are checked against the class's
// schema and retain rule: a number and a boolean, both Good, with RFC 3339
// timestamps. When neither passes, no value of the mapping can pass. A
// write's reply topic gets the replies it can carry (ok, refused, failed,
// each with a request id); its command topic must be one the model reads,
// and with bare values (no `value:` path) a class that takes bare values.
// What the model leaves free passes. The enforcement mode does not matter:
// a warn subtree delivers what does not fit, but it still does not fit.
//
// Thread-safety: a pure function of its arguments.
#pragma once

#include "broker/config.hpp"
#include "namespace/model.hpp"

namespace strata::broker::hosts {

// Throws config_error naming the first misfit with the config file and
// line of the mapping or write: "strata.yaml:31: opcua[0].mappings[1]:
// ... on 'TOPIC': <the model's reason> (payload ...)".
void check_opcua_fits_model(const config& cfg, const ns::model& m);

}  // namespace strata::broker::hosts
