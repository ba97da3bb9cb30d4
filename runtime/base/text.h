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

// Whether `items` holds `item`.
inline bool Contains(const std::vector<std::string>& items, const std::string& item) {
  for (const auto& candidate : items) {
    if (candidate == item) return true;
  }
  return false;
}

// Whether `text` ends with `suffix`.
inline bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A shape as "[1, 3, 32, 32]", from any sequence of extents (std::vector<int64_t>,
// c10::IntArrayRef).
template <typename Extents>
std::string ShapeText(const Extents& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace slim
