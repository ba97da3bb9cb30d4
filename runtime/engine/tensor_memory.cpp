#include "runtime/engine/tensor_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "runtime/base/torch_compat.h"
#include "runtime/engine/cuda_tensor_memory.h"

namespace slim::engine {

namespace {

// The blocks the counting allocator handed out and not got back, by address.
struct HeldBlocks {
  std::mutex mutex;
  std::unordered_map<void*, int64_t> bytes_of;
  std::atomic<int64_t> held{0};
  std::atomic<int64_t> peak{0};
  c10::DeleterFnPtr release = nullptr;  // the underlying allocator's
};

HeldBlocks& Blocks() {
  static HeldBlocks blocks;
  return blocks;
}

void Count(void* data, int64_t bytes) {
  auto& blocks = Blocks();
  {
    std::lock_guard<std::mutex> lock(blocks.mutex);
    blocks.bytes_of[data] = bytes;
  }
  const int64_t held = blocks.held += bytes;
  int64_t peak = blocks.peak.load();
  while (held > peak && !blocks.peak.compare_exchange_weak(peak, held)) {
  }
}

void ReleaseCounted(void* data) {
  auto& blocks = Blocks();
  {
    std::lock_guard<std::mutex> lock(blocks.mutex);
    // Blocks from before counting began can come back here through raw_deleter().
    const auto found = blocks.bytes_of.find(data);
    if (found != blocks.bytes_of.end()) {
      blocks.held -= found->second;
      blocks.bytes_of.erase(found);
    }
  }
  blocks.release(data);
}

// Hands out the underlying allocator's blocks (whose context is their address, as
// Allocator::raw_allocate requires) and counts them until they come back.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* underlying) : underlying_(underlying) {}

  c10::DataPtr allocate(size_t bytes) SLIM_ALLOCATE_CONST override {
    auto block = underlying_->allocate(bytes);
    void* data = block.get();
    const c10::Device device = block.device();
    if (!data) return block;
    block.release_context();
    Count(data, static_cast<int64_t>(bytes));
    return {data, data, &ReleaseCounted, device};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &ReleaseCounted; }

#if SLIM_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* destination, const void* source, std::size_t count) const override {
    underlying_->copy_data(destination, source, count);
  }
#endif

 private:
  c10::Allocator* underlying_;
};

}  // namespace

void CountCpuTensorMemory() {
  static const bool installed = [] {
    c10::Allocator* underlying = c10::GetCPUAllocator();
    Blocks().release = underlying->raw_deleter();
    if (!Blocks().release) return false;  // blocks it could not give back: count nothing
    static CountingCpuAllocator counting(underlying);
    c10::SetCPUAllocator(&counting, /*priority=*/100);
    return true;
  }();
  (void)installed;
}

int64_t PeakCpuTensorBytes() { return Blocks().peak.load(); }

void ResetPeakCpuTensorBytes() { Blocks().peak = Blocks().held.load(); }

int64_t PeakTensorBytes(c10::Device device) {
  return device.is_cuda() ? PeakCudaTensorBytes(device.index()) : PeakCpuTensorBytes();
}

void ResetPeakTensorBytes(c10::Device device) {
  if (device.is_cuda()) {
    ResetPeakCudaTensorBytes(device.index());
  } else {
    ResetPeakCpuTensorBytes();
  }
}

}  // namespace slim::engine
