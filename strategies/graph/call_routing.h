// Graph passes that route a value of a module's forward through a child module: the
// means by which quantizers (and later taps) are placed without Python hooks. A pass
// edits the forward graph of the module's class, which every instance of the class
// shares, so every instance must hold the child (see AttachToEveryInstance).
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace slim::graph {

// Rewrites forward(self, x) of `module`'s class so that every use of x reads
// self.<child>.forward(x) instead. Throws ModelError when forward does not take exactly
// one input besides self.
void RouteForwardInput(const torch::jit::Module& module, const std::string& child);

// Rewrites forward so that each read of self.<attribute> is followed by
// self.<child>.forward(value) and its uses take the result. Throws ModelError when forward
// never reads the attribute itself.
void RouteAttributeRead(const torch::jit::Module& module, const std::string& attribute,
                        const std::string& child);

}  // namespace slim::graph
