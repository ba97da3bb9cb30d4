// The operator slim::recompute that strategies/graph/recompute_calls.h places in the
// training forward, and the regions (module calls) it runs. Registering this file's
// operator is a side effect of linking it; ActivationRecompute (activation_recompute.h)
// registers and forgets the regions.
//
// With autograd on, slim::recompute(region, args) runs the region's call without autograd
// and keeps its inputs; its backward runs the call again with autograd, under the CPU
// generator state, autocast state and module buffers/attributes of the first run, puts
// the buffers, attributes and generator back, and back-propagates through the second run
// (parameters' gradients accumulate as usual, the inputs' gradients flow on). With
// autograd off it is the plain call.
#pragma once

#include <cstdint>

#include "strategies/graph/recompute_calls.h"

namespace slim::engine {

// Makes `call` a region slim::recompute can run; returns its number.
int64_t RegisterRecomputeRegion(const graph::RecomputedCall& call);

// Removes region `region`; a graph still naming it then fails with a ModelError.
void ForgetRecomputeRegion(int64_t region);

}  // namespace slim::engine
