// Small text helpers for messages.
#pragma once

#include <string>
#include <vector>

namespace slim {

// The items separated by ", " ("" for none).
inline std::string JoinedList(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

}  // namespace slim
