// Small text helpers for messages.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

namespace slim {

// The items separated by ", " ("" for none).
inline std::string JoinedList(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// A shape as "[1, 3, 32, 32]", from any sequence of extents (std::vector<int64_t>,
// c10::IntArrayRef).
template <typename Extents>
std::string ShapeText(const Extents& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace slim
