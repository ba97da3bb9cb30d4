// Graph passes that route a value of a module's forward through a child module: the
// means by which quantizers (and later taps) are placed without Python hooks. A pass
// edits the forward graph of the module's class, which every instance of the class
// shares, so every instance must hold the child (see AttachToEveryInstance).
#pragma once

#include <torch/script.h>

#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

namespace slim::graph {

// Rewrites forward(self, x) of `module`'s class so that every use of x reads
// self.<child>.forward(x) instead. Throws ModelError when forward does not take exactly
// one input besides self.
void RouteForwardInput(const torch::jit::Module& module, const std::string& child);

// Rewrites forward(self, ...) of `module`'s class so that every use of each argument
// named in `arguments` reads self.<child>.forward(argument) instead (one call per
// argument). Throws ModelError naming the argument when forward has no such argument.
void RouteForwardArguments(const torch::jit::Module& module,
                           const std::vector<std::string>& arguments, const std::string& child);

// Rewrites forward(self, ...) of `module`'s class so that it returns
// self.<child>.forward(result) instead of its result. Throws ModelError when forward
// returns something other than one tensor.
void RouteForwardOutput(const torch::jit::Module& module, const std::string& child);

// A copy of `model` whose classes are its own (Module::clone), without the children named in `children`
// anywhere in it and without the routes through them: each call's result is replaced by
// its argument. Exports use it to drop what training needed.
torch::jit::Module CloneWithoutChildren(const torch::jit::Module& model,
                                        const std::unordered_set<std::string>& children);

// Rewrites forward so that each read of self.<attribute> is followed by
// self.<child>.forward(value) and its uses take the result. Throws ModelError when forward
// never reads the attribute itself.
void RouteAttributeRead(const torch::jit::Module& module, const std::string& attribute,
                        const std::string& child);

// Operations between two activations that quantization sees: matrix products (as in
// attention) and adds (residual connections).
enum class ActivationOp { kMatMul, kAdd };

// The number of `op` nodes (aten::matmul; aten::add or add_ of two tensors) in `module`'s
// forward, nested blocks included, whose operands are both activations (neither reads an
// attribute of self directly).
int64_t CountActivationOps(const torch::jit::Module& module, ActivationOp op);

// Rewrites forward so that operand k (0 or 1) of its i-th `op` (graph order, as counted
// above) reads self.<child(i, k)>.forward(operand) instead; and, where child(i, 2) is not
// empty, so that every use of its result reads self.<child(i, 2)>.forward(result), the
// result taken after a ReLU that alone uses it (aten::relu, or a child nn.ReLU), so that
// the ReLU stays next to the op for kernels that fuse the two.
void RouteActivationOps(const torch::jit::Module& module, ActivationOp op,
                        const std::function<std::string(int64_t, int)>& child);

}  // namespace slim::graph
