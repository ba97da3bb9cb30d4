// The pieces the ONNX writer (onnx_export.h) builds its graph with: the graph under
// construction, node attributes, the constants it reads from TorchScript, and the
// refusal it throws for what ONNX cannot express.
#pragma once

#include <onnx/onnx_pb.h>
#include <torch/script.h>

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace slim::exporting {

// Thrown while translating a node ONNX cannot express: why, for ModelError or the
// up-front list of refusals.
struct OnnxRefusal {
  std::string reason;
};

// The ONNX graph under construction: names of values and initializers. Not thread-safe.
class OnnxGraph {
 public:
  explicit OnnxGraph(onnx::GraphProto& graph) : graph_(graph) {}

  // Names `value` of the TorchScript graph as ONNX value `name`.
  void Bind(const torch::jit::Value* value, const std::string& name) { names_[value] = name; }

  // The name of `value`: a translated node's output, or an initializer for a constant
  // (tensors as they are, numbers as float scalars). Throws OnnxRefusal otherwise.
  std::string NameOf(const torch::jit::Value* value);

  // A name no other value has, starting with `hint`.
  std::string Fresh(const std::string& hint) { return hint + "_" + std::to_string(next_++); }

  // Adds `tensor` (float, int8, uint8, int32 or int64) as an initializer; its name.
  std::string Initializer(const at::Tensor& tensor, const std::string& hint);

  // Adds a node of type `op`, its attributes set by `attributes`; returns its output's
  // name (`output` when given).
  std::string Add(const std::string& op, const std::vector<std::string>& inputs,
                  const std::function<void(onnx::NodeProto&)>& attributes = nullptr,
                  std::string output = "");

 private:
  onnx::GraphProto& graph_;
  std::unordered_map<const torch::jit::Value*, std::string> names_;
  int64_t next_ = 0;
};

// Node attributes.
void SetInts(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values);
void SetInt(onnx::NodeProto& node, const std::string& name, int64_t value);
void SetFloat(onnx::NodeProto& node, const std::string& name, double value);

// The constant `value` holds (frozen_graph.h's ConstantOf); OnnxRefusal when it is
// computed at run time.
c10::IValue Constant(const torch::jit::Value* value);

// A constant int or int list as a list.
std::vector<int64_t> Ints(const torch::jit::Value* value);

// A constant number as a double.
double Number(const torch::jit::Value* value);

}  // namespace slim::exporting
