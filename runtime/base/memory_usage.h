// The process's memory use, for reports and metrics lines.
#pragma once

#include <cstdint>

namespace slim {

// The largest resident set size this process has had so far, in bytes (getrusage).
int64_t PeakResidentBytes();

}  // namespace slim
