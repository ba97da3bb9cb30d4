#include "export/onnx_graph.h"

#include "export/frozen_graph.h"

namespace slim::exporting {

namespace {

int32_t DataType(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return onnx::TensorProto::FLOAT;
    case at::kChar: return onnx::TensorProto::INT8;
    case at::kByte: return onnx::TensorProto::UINT8;
    case at::kLong: return onnx::TensorProto::INT64;
    case at::kInt: return onnx::TensorProto::INT32;
    default: throw OnnxRefusal{std::string("a constant of type ") + c10::toString(type)};
  }
}

}  // namespace

std::string OnnxGraph::NameOf(const torch::jit::Value* value) {
  const auto found = names_.find(value);
  if (found != names_.end()) return found->second;
  const auto constant = ConstantOf(value);
  if (constant && constant->isTensor() && !constant->toTensor().is_quantized()) {
    return names_[value] = Initializer(constant->toTensor(), "const");
  }
  if (constant && (constant->isDouble() || constant->isInt())) {
    return names_[value] =
               Initializer(at::scalar_tensor(constant->toScalar(), at::kFloat), "scalar");
  }
  throw OnnxRefusal{"an input that is neither a tensor computed by the model nor a constant"};
}

std::string OnnxGraph::Initializer(const at::Tensor& tensor, const std::string& hint) {
  const auto contiguous = tensor.contiguous().cpu();
  auto* proto = graph_.add_initializer();
  const auto name = Fresh(hint);
  proto->set_name(name);
  for (const auto extent : contiguous.sizes()) proto->add_dims(extent);
  proto->set_data_type(DataType(contiguous.scalar_type()));
  proto->set_raw_data(contiguous.data_ptr(), contiguous.nbytes());
  return name;
}

std::string OnnxGraph::Add(const std::string& op, const std::vector<std::string>& inputs,
                           const std::function<void(onnx::NodeProto&)>& attributes,
                           std::string output) {
  auto* node = graph_.add_node();
  node->set_op_type(op);
  node->set_name(Fresh(op));
  for (const auto& input : inputs) node->add_input(input);
  if (output.empty()) output = Fresh("v");
  node->add_output(output);
  if (attributes) attributes(*node);
  return output;
}

void SetInts(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INTS);
  for (const auto value : values) attribute->add_ints(value);
}

void SetInt(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INT);
  attribute->set_i(value);
}

void SetFloat(onnx::NodeProto& node, const std::string& name, double value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::FLOAT);
  attribute->set_f(static_cast<float>(value));
}

c10::IValue Constant(const torch::jit::Value* value) {
  const auto constant = ConstantOf(value);
  if (!constant) throw OnnxRefusal{"an argument that is not a constant"};
  return *constant;
}

std::vector<int64_t> Ints(const torch::jit::Value* value) {
  const auto constant = Constant(value);
  if (constant.isInt()) return {constant.toInt()};
  return constant.toIntVector();
}

double Number(const torch::jit::Value* value) { return Constant(value).toScalar().toDouble(); }

}  // namespace slim::exporting
