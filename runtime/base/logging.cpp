#include "runtime/base/logging.h"

#include <cstdio>

namespace slim::logging {

namespace {
int g_rank = 0;

void WriteLine(std::FILE* stream, const std::string& text) {
  const std::string line = "[rank " + std::to_string(g_rank) + "] " + text + "\n";
  std::fwrite(line.data(), 1, line.size(), stream);
  std::fflush(stream);
}
}  // namespace

void SetRank(int rank) { g_rank = rank; }

void Info(const std::string& message) {
  if (g_rank == 0) WriteLine(stdout, message);
}

void Warning(const std::string& message) { WriteLine(stderr, "warning: " + message); }

void Error(const std::string& message) { WriteLine(stderr, "error: " + message); }

}  // namespace slim::logging
