#include "runtime/checkpoint/checkpoint_file.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "runtime/base/hdf5_io.h"
#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"

namespace slim::checkpoint {

namespace {

using hdf5::Hdf5Handle;

// Room for the HDF5 metadata (object headers, attributes, names) beyond the tensor bytes.
constexpr size_t kMetadataAllowance = size_t{4} << 20;

// Root attribute naming the file kind, so a foreign HDF5 file is told apart.
constexpr const char* kFormatName = "slimtrain-checkpoint";

// How a tensor dtype is stored: HDF5 file and memory types and the `dtype` attribute.
// Half types are stored as their raw 16 bits (uint16) with dtype float16 / bfloat16.
struct StoredType {
  hid_t file_type;
  hid_t memory_type;
  const char* name;
};

const std::vector<std::pair<torch::ScalarType, StoredType>>& StoredTypes() {
  static const std::vector<std::pair<torch::ScalarType, StoredType>> types = {
      {torch::kFloat32, {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, "float32"}},
      {torch::kFloat64, {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, "float64"}},
      {torch::kFloat16, {H5T_STD_U16LE, H5T_NATIVE_UINT16, "float16"}},
      {torch::kBFloat16, {H5T_STD_U16LE, H5T_NATIVE_UINT16, "bfloat16"}},
      {torch::kInt64, {H5T_STD_I64LE, H5T_NATIVE_INT64, "int64"}},
      {torch::kInt32, {H5T_STD_I32LE, H5T_NATIVE_INT32, "int32"}},
      {torch::kInt8, {H5T_STD_I8LE, H5T_NATIVE_INT8, "int8"}},
      {torch::kUInt8, {H5T_STD_U8LE, H5T_NATIVE_UINT8, "uint8"}},
      {torch::kBool, {H5T_STD_U8LE, H5T_NATIVE_UINT8, "bool"}},
  };
  return types;
}

const StoredType& StoredTypeOf(torch::ScalarType type, const std::string& name) {
  for (const auto& [scalar_type, stored] : StoredTypes()) {
    if (scalar_type == type) return stored;
  }
  throw DataError(std::string("cannot checkpoint tensor '") + name + "' of dtype " +
                  c10::toString(type));
}

torch::ScalarType ScalarTypeNamed(const std::string& dtype, const std::string& where) {
  for (const auto& [scalar_type, stored] : StoredTypes()) {
    if (dtype == stored.name) return scalar_type;
  }
  throw DataError(where + " has unknown dtype '" + dtype + "'");
}

Hdf5Handle CreateGroup(hid_t parent, const std::string& name, const std::string& path) {
  return Hdf5Handle(
      SLIM_H5_CHECK(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path),
      H5Gclose);
}

Hdf5Handle OpenGroup(hid_t parent, const std::string& name, const std::string& path) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) <= 0) {
    throw DataError("group '" + name + "' is missing");
  }
  return Hdf5Handle(SLIM_H5_CHECK(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), path), H5Gclose);
}

// The checksum of a dataset's bytes: Fletcher's algorithm over little-endian 64-bit
// words (the last one zero-padded), sum1 += word, sum2 += sum1, both modulo 2^64. It runs
// at memory speed, unlike HDF5's byte-wise Fletcher32 filter, and it catches any single
// changed word and any swapped pair of words.
std::array<uint64_t, 2> Fletcher64(const torch::Tensor& tensor) {
  const auto* bytes = static_cast<const uint8_t*>(tensor.data_ptr());
  const size_t size = tensor.nbytes();
  uint64_t sum1 = 0, sum2 = 0;
  size_t offset = 0;
  for (; offset + 8 <= size; offset += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + offset, 8);
    sum1 += word;
    sum2 += sum1;
  }
  if (offset < size) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + offset, size - offset);
    sum1 += word;
    sum2 += sum1;
  }
  return {sum1, sum2};
}

// Writes `tensor` as dataset `name` (a scalar dataspace for a 0-d tensor) with the
// attributes `dtype` and `fletcher64` (its two sums).
void WriteTensor(hid_t group, const std::string& name, const torch::Tensor& tensor,
                 const std::string& path) {
  const auto contiguous = tensor.contiguous();
  const StoredType& stored = StoredTypeOf(contiguous.scalar_type(), name);
  const std::vector<hsize_t> dims(contiguous.sizes().begin(), contiguous.sizes().end());
  hdf5::WriteDataset(group, name.c_str(), stored.file_type, stored.memory_type, dims,
                     hdf5::DatasetStorage{}, contiguous.numel() ? contiguous.data_ptr() : nullptr,
                     path);
  Hdf5Handle dataset(SLIM_H5_CHECK(H5Dopen2(group, name.c_str(), H5P_DEFAULT), path), H5Dclose);
  hdf5::WriteStringAttribute(dataset.get(), "dtype", {stored.name}, /*scalar=*/true, path);
  const auto sums = Fletcher64(contiguous);
  hdf5::WriteAttribute(dataset.get(), "fletcher64", H5T_STD_U64LE, H5T_NATIVE_UINT64, {2},
                       sums.data(), path);
}

torch::Tensor ReadTensor(hid_t group, const std::string& name, const std::string& path) {
  Hdf5Handle dataset(SLIM_H5_CHECK(H5Dopen2(group, name.c_str(), H5P_DEFAULT), path), H5Dclose);
  const auto type = ScalarTypeNamed(hdf5::ReadStringAttribute(dataset.get(), "dtype", path),
                                    "dataset '" + name + "'");
  auto tensor = torch::empty(hdf5::DatasetShape(dataset.get(), path),
                             torch::TensorOptions().dtype(type));
  if (tensor.numel() > 0) {
    SLIM_H5_CHECK(H5Dread(dataset.get(), StoredTypeOf(type, name).memory_type, H5S_ALL, H5S_ALL,
                          H5P_DEFAULT, tensor.data_ptr()),
                  path);
  }
  std::array<uint64_t, 2> stored_sums{};
  if (!hdf5::HasAttribute(dataset.get(), "fletcher64", path)) {
    throw DataError("dataset '" + name + "' has no fletcher64 checksum attribute");
  }
  Hdf5Handle attribute(SLIM_H5_CHECK(H5Aopen(dataset.get(), "fletcher64", H5P_DEFAULT), path),
                       H5Aclose);
  SLIM_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_UINT64, stored_sums.data()), path);
  if (Fletcher64(tensor) != stored_sums) {
    throw DataError("dataset '" + name + "' fails its checksum: the file was changed or "
                    "damaged after it was written");
  }
  return tensor;
}

void WriteTensors(hid_t parent, const std::string& group_name, const TensorMap& tensors,
                  const std::string& path) {
  Hdf5Handle group = CreateGroup(parent, group_name, path);
  for (const auto& [name, tensor] : tensors) WriteTensor(group.get(), name, tensor, path);
}

herr_t CollectLinkName(hid_t, const char* name, const H5L_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

std::vector<std::string> MemberNames(hid_t group, const std::string& path) {
  std::vector<std::string> names;
  SLIM_H5_CHECK(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, CollectLinkName, &names),
                path);
  return names;
}

TensorMap ReadTensors(hid_t parent, const std::string& group_name, const std::string& path) {
  Hdf5Handle group = OpenGroup(parent, group_name, path);
  TensorMap tensors;
  for (const auto& name : MemberNames(group.get(), path)) {
    tensors[name] = ReadTensor(group.get(), name, path);
  }
  return tensors;
}

// Writes a group of groups of tensors (optimizer state, strategy state).
void WriteNestedTensors(hid_t parent, const std::string& group_name,
                        const std::map<std::string, TensorMap>& nested, const std::string& path) {
  Hdf5Handle group = CreateGroup(parent, group_name, path);
  for (const auto& [name, tensors] : nested) WriteTensors(group.get(), name, tensors, path);
}

std::map<std::string, TensorMap> ReadNestedTensors(hid_t parent, const std::string& group_name,
                                                   const std::string& path) {
  Hdf5Handle group = OpenGroup(parent, group_name, path);
  std::map<std::string, TensorMap> nested;
  for (const auto& name : MemberNames(group.get(), path)) {
    nested[name] = ReadTensors(group.get(), name, path);
  }
  return nested;
}

// The integer attributes of /progress.
const std::vector<std::pair<const char*, int64_t TrainingProgress::*>>& ProgressFields() {
  static const std::vector<std::pair<const char*, int64_t TrainingProgress::*>> fields = {
      {"step", &TrainingProgress::step},
      {"micro_batch", &TrainingProgress::micro_batch},
      {"batches_per_epoch", &TrainingProgress::batches_per_epoch},
      {"global_micro_batch", &TrainingProgress::global_micro_batch},
      {"accumulate_steps", &TrainingProgress::accumulate_steps},
      {"epoch", &TrainingProgress::epoch},
      {"samples_seen", &TrainingProgress::samples_seen}};
  return fields;
}

void WriteProgress(hid_t file, const TrainingProgress& progress, const std::string& path) {
  Hdf5Handle group = CreateGroup(file, "progress", path);
  for (const auto& [name, field] : ProgressFields()) {
    hdf5::WriteInt64Attribute(group.get(), name, progress.*field, path);
  }
  hdf5::WriteDoubleAttribute(group.get(), "learning_rate", progress.learning_rate, path);
}

TrainingProgress ReadProgress(hid_t file, const std::string& path) {
  Hdf5Handle group = OpenGroup(file, "progress", path);
  TrainingProgress progress;
  for (const auto& [name, field] : ProgressFields()) {
    progress.*field = hdf5::ReadInt64Attribute(group.get(), name, path);
  }
  progress.learning_rate = hdf5::ReadDoubleAttribute(group.get(), "learning_rate", path);
  return progress;
}

void WriteTrainerValues(hid_t file, const TrainerValues& values, const std::string& path) {
  Hdf5Handle group = CreateGroup(file, "trainer", path);
  const hid_t id = group.get();
  WriteTensor(id, "window_loss", torch::tensor(values.window_loss, torch::kFloat64), path);
  hdf5::WriteInt64Attribute(id, "window_steps", values.window_steps, path);
  hdf5::WriteDoubleAttribute(id, "best_top1", values.best_top1, path);
  hdf5::WriteInt64Attribute(id, "best_step", values.best_step, path);
  hdf5::WriteInt64Attribute(id, "metrics_lines", values.metrics_lines, path);
  hdf5::WriteInt64Attribute(id, "finished", values.finished, path);
  hdf5::WriteDoubleAttribute(id, "loss_scale", values.loss_scale, path);
  hdf5::WriteInt64Attribute(id, "loss_scale_growth", values.loss_scale_growth, path);
}

TrainerValues ReadTrainerValues(hid_t file, const std::string& path) {
  Hdf5Handle group = OpenGroup(file, "trainer", path);
  const hid_t id = group.get();
  TrainerValues values;
  const auto window = ReadTensor(id, "window_loss", path);
  values.window_loss.assign(window.data_ptr<double>(), window.data_ptr<double>() + window.numel());
  values.window_steps = hdf5::ReadInt64Attribute(id, "window_steps", path);
  values.best_top1 = hdf5::ReadDoubleAttribute(id, "best_top1", path);
  values.best_step = hdf5::ReadInt64Attribute(id, "best_step", path);
  values.metrics_lines = hdf5::ReadInt64Attribute(id, "metrics_lines", path);
  values.finished = hdf5::ReadInt64Attribute(id, "finished", path) != 0;
  if (hdf5::HasAttribute(id, "loss_scale", path)) {  // written since mixed precision
    values.loss_scale = hdf5::ReadDoubleAttribute(id, "loss_scale", path);
    values.loss_scale_growth = hdf5::ReadInt64Attribute(id, "loss_scale_growth", path);
  }
  return values;
}

void WriteRootAttributes(hid_t file, const CheckpointState& state, const std::string& path) {
  hdf5::WriteStringAttribute(file, "format", {kFormatName}, true, path);
  hdf5::WriteInt64Attribute(file, "format_version", state.format_version, path);
  hdf5::WriteStringAttribute(file, "libtorch_version", {state.libtorch_version}, true, path);
  hdf5::WriteInt64Attribute(file, "world_size", state.world_size, path);
  hdf5::WriteStringAttribute(file, "created", {state.created}, true, path);
  hdf5::WriteStringAttribute(file, "model", {state.model_reference}, true, path);
  hdf5::WriteStringAttribute(file, "config", {state.config_yaml}, true, path);
  hdf5::WriteStringAttribute(file, "strategies", state.strategies, false, path);
}

void ReadRootAttributes(hid_t file, CheckpointState& state, const std::string& path) {
  if (!hdf5::HasAttribute(file, "format", path) ||
      hdf5::ReadStringAttribute(file, "format", path) != kFormatName) {
    throw DataError("it is an HDF5 file but not a slim-train checkpoint (no format attribute '" +
                    std::string(kFormatName) + "')");
  }
  state.format_version = hdf5::ReadInt64Attribute(file, "format_version", path);
  if (state.format_version != kFormatVersion) {
    throw DataError("format_version " + std::to_string(state.format_version) +
                    " is not the version this slim-train reads (" +
                    std::to_string(kFormatVersion) + ")");
  }
  state.libtorch_version = hdf5::ReadStringAttribute(file, "libtorch_version", path);
  state.world_size = hdf5::ReadInt64Attribute(file, "world_size", path);
  state.created = hdf5::ReadStringAttribute(file, "created", path);
  state.model_reference = hdf5::ReadStringAttribute(file, "model", path);
  state.config_yaml = hdf5::ReadStringAttribute(file, "config", path);
  state.strategies = hdf5::ReadStringArrayAttribute(file, "strategies", path);
}

// The memory of an in-memory HDF5 file (core driver), kept when the file closes: HDF5
// finalises the superblock only on close, so the image is taken then, not before.
class ClosedImage {
 public:
  ~ClosedImage() { std::free(data_); }
  // File-access callbacks that hand the image to this object at close.
  H5FD_file_image_callbacks_t Callbacks() {
    H5FD_file_image_callbacks_t callbacks{};
    callbacks.image_malloc = [](size_t size, H5FD_file_image_op_t, void*) {
      return std::malloc(size);
    };
    callbacks.image_memcpy = [](void* to, const void* from, size_t size, H5FD_file_image_op_t,
                                void*) { return std::memcpy(to, from, size); };
    callbacks.image_realloc = [](void* data, size_t size, H5FD_file_image_op_t, void*) {
      return std::realloc(data, size);
    };
    callbacks.image_free = [](void* data, H5FD_file_image_op_t op, void* self) -> herr_t {
      if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE) {
        static_cast<ClosedImage*>(self)->data_ = data;
      } else {
        std::free(data);
      }
      return 0;
    };
    // HDF5 copies the property list, and with it `udata`: every copy is this object.
    callbacks.udata_copy = [](void* self) { return self; };
    callbacks.udata_free = [](void*) -> herr_t { return 0; };
    callbacks.udata = this;
    return callbacks;
  }
  // The closed file: its bytes up to the end-of-file address its superblock records (the
  // buffer itself grows in whole increments). A version 2 or 3 superblock (the only ones
  // libver V18 and later write) holds that address as 8 little-endian bytes at offset 28
  // (HDF5 File Format Specification, "Version 2 Superblock"). Throws DataError otherwise.
  std::string_view Bytes(const std::string& path) const {
    static constexpr char kSignature[] = "\x89HDF\r\n\x1a\n";
    const auto* bytes = static_cast<const unsigned char*>(data_);
    if (bytes == nullptr || std::memcmp(bytes, kSignature, 8) != 0 || bytes[8] < 2 ||
        bytes[9] != 8) {
      throw DataError("the in-memory HDF5 image of " + path + " has no version 2 superblock");
    }
    uint64_t end_of_file = 0;
    for (int i = 7; i >= 0; --i) end_of_file = end_of_file << 8 | bytes[28 + i];
    return {static_cast<const char*>(data_), static_cast<size_t>(end_of_file)};
  }

 private:
  void* data_ = nullptr;
};

// The bytes of every tensor `state` holds.
size_t TensorBytes(const CheckpointState& state) {
  size_t bytes = 0;
  for (const auto* rng : {&state.cpu_rng_states, &state.cuda_rng_states}) {
    if (rng->defined()) bytes += rng->nbytes();
  }
  for (const auto* group : {&state.parameters, &state.buffers, &state.rank_buffers}) {
    for (const auto& [name, tensor] : *group) bytes += tensor.nbytes();
  }
  for (const auto* nested : {&state.optimizer_state, &state.strategy_state}) {
    for (const auto& [owner, tensors] : *nested) {
      for (const auto& [name, tensor] : tensors) bytes += tensor.nbytes();
    }
  }
  return bytes;
}

// Writes the checkpoint into an in-memory HDF5 file (core driver, no backing store) whose
// memory `image` receives at close; returns the file's size (its end of address space). A full disk then fails the
// plain POSIX write of these bytes, never HDF5, which could otherwise keep a file open
// whose close keeps failing.
void BuildImage(const CheckpointState& state, const std::string& path, ClosedImage& image) {
  hdf5::ScopedHdf5ErrorSilencer quiet;
  Hdf5Handle access(SLIM_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), path), H5Pclose);
  // Format versions from 1.8 on checksum the superblock and every object header.
  SLIM_H5_CHECK(H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), path);
  // One allocation of about the file's size: growing the buffer in small steps would copy
  // it again at each step.
  SLIM_H5_CHECK(H5Pset_fapl_core(access.get(), TensorBytes(state) + kMetadataAllowance,
                                 /*backing_store=*/false),
                path);
  auto callbacks = image.Callbacks();
  SLIM_H5_CHECK(H5Pset_file_image_callbacks(access.get(), &callbacks), path);
  Hdf5Handle file(
      SLIM_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), path),
      H5Fclose);
  const hid_t id = file.get();
  WriteRootAttributes(id, state, path);
  WriteProgress(id, state.progress, path);
  WriteTrainerValues(id, state.trainer, path);
  {
    Hdf5Handle model = CreateGroup(id, "model", path);
    WriteTensors(model.get(), "parameters", state.parameters, path);
    WriteTensors(model.get(), "buffers", state.buffers, path);
    WriteTensors(model.get(), "rank_buffers", state.rank_buffers, path);
  }
  {
    Hdf5Handle optimizer = CreateGroup(id, "optimizer", path);
    hdf5::WriteStringAttribute(optimizer.get(), "type", {state.optimizer_type}, true, path);
    WriteNestedTensors(optimizer.get(), "state", state.optimizer_state, path);
  }
  TensorMap rng = {{"cpu", state.cpu_rng_states}};
  if (state.cuda_rng_states.defined()) rng["cuda"] = state.cuda_rng_states;
  WriteTensors(id, "rng", rng, path);
  WriteNestedTensors(id, "strategies", state.strategy_state, path);
  SLIM_H5_CHECK(H5Fflush(id, H5F_SCOPE_GLOBAL), path);
  SLIM_H5_CHECK(file.Reset(), path);
}

}  // namespace

int64_t WriteCheckpointFile(const std::string& path, const CheckpointState& state,
                            const std::function<void()>& halfway) {
  ClosedImage image;
  BuildImage(state, path, image);
  const auto bytes = image.Bytes(path);
  files::WriteAtomically(path, bytes, halfway);
  return static_cast<int64_t>(bytes.size());
}

CheckpointState ReadCheckpointFile(const std::string& path) {
  const std::string name = "checkpoint '" + path + "'";
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw DataError(name + " does not exist or is not a file; check the --resume path");
  }
  hdf5::ScopedHdf5ErrorSilencer quiet;
  try {
    if (H5Fis_hdf5(path.c_str()) <= 0) throw DataError("it is not an HDF5 file");
    Hdf5Handle file(SLIM_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path),
                    H5Fclose);
    const hid_t id = file.get();
    CheckpointState state;
    ReadRootAttributes(id, state, path);
    state.progress = ReadProgress(id, path);
    state.trainer = ReadTrainerValues(id, path);
    Hdf5Handle model = OpenGroup(id, "model", path);
    state.parameters = ReadTensors(model.get(), "parameters", path);
    state.buffers = ReadTensors(model.get(), "buffers", path);
    if (H5Lexists(model.get(), "rank_buffers", H5P_DEFAULT) > 0) {
      state.rank_buffers = ReadTensors(model.get(), "rank_buffers", path);
    }
    Hdf5Handle optimizer = OpenGroup(id, "optimizer", path);
    state.optimizer_type = hdf5::ReadStringAttribute(optimizer.get(), "type", path);
    state.optimizer_state = ReadNestedTensors(optimizer.get(), "state", path);
    auto rng = ReadTensors(id, "rng", path);
    if (!rng.count("cpu")) throw DataError("dataset /rng/cpu is missing");
    state.cpu_rng_states = rng.at("cpu");
    if (rng.count("cuda")) state.cuda_rng_states = rng.at("cuda");
    state.strategy_state = ReadNestedTensors(id, "strategies", path);
    return state;
  } catch (const DataError& e) {
    throw DataError(name + " is damaged, incomplete or not a checkpoint: " + e.what());
  }
}

}  // namespace slim::checkpoint
