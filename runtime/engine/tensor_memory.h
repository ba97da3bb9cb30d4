// The CPU tensor memory of a run, the CPU counterpart of torch.cuda.max_memory_allocated:
// bytes LibTorch's CPU allocator hands out for tensors and has not got back. Unlike the
// peak resident memory it does not depend on whether the C library returns freed memory
// to the system (glibc keeps most freed tensor memory in its heap for reuse).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>

namespace slim::engine {

// Puts a counting allocator in front of LibTorch's CPU allocator, once per process;
// later calls do nothing. Memory allocated before is not counted, nor its release.
void CountCpuTensorMemory();

// The most bytes of counted CPU tensor memory held at once since the last reset (or since
// counting began); 0 before CountCpuTensorMemory.
int64_t PeakCpuTensorBytes();

// Starts a new peak from the bytes held now.
void ResetPeakCpuTensorBytes();

// The peak tensor memory of `device` since its last reset: PeakCpuTensorBytes for the
// CPU, the CUDA caching allocator's peak of allocated bytes for a CUDA device (what
// torch.cuda.max_memory_allocated reports).
int64_t PeakTensorBytes(c10::Device device);

// Starts a new peak of `device`'s tensor memory from the bytes held now.
void ResetPeakTensorBytes(c10::Device device);

}  // namespace slim::engine
