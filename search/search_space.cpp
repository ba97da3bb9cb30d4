#include "search/search_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace slim::search {

bool Matters(const SearchSpace& space, size_t d, const Point& point) {
  const auto& condition = space[d].only_when;
  if (!condition) return true;
  const auto& choices = space[condition->dimension].choices;
  const auto index = static_cast<size_t>(point[condition->dimension]);
  return index < choices.size() && choices[index] == condition->choice;
}

bool SameTrial(const SearchSpace& space, const Point& a, const Point& b) {
  for (size_t d = 0; d < space.size(); ++d) {
    if (!Matters(space, d, a)) continue;  // its condition's dimension is compared too
    const bool integer = space[d].kind != Dimension::Kind::kFloat;
    if (integer ? std::llround(a[d]) != std::llround(b[d]) : a[d] != b[d]) return false;
  }
  return true;
}

nlohmann::json PointToJson(const SearchSpace& space, const Point& point) {
  nlohmann::json values = nlohmann::json::object();
  for (size_t d = 0; d < space.size(); ++d) {
    const auto& dimension = space[d];
    switch (dimension.kind) {
      case Dimension::Kind::kCategorical:
        values[dimension.name] = dimension.choices.at(static_cast<size_t>(point[d]));
        break;
      case Dimension::Kind::kFloat:
        values[dimension.name] = point[d];
        break;
      case Dimension::Kind::kInteger:
        values[dimension.name] = static_cast<int64_t>(std::llround(point[d]));
        break;
    }
  }
  return values;
}

Point PointFromJson(const SearchSpace& space, const nlohmann::json& values) {
  Point point;
  for (const auto& dimension : space) {
    if (!values.contains(dimension.name)) {
      throw std::invalid_argument(fmt::format("no value for {}", dimension.name));
    }
    const auto& value = values.at(dimension.name);
    if (dimension.kind == Dimension::Kind::kCategorical) {
      const auto& choices = dimension.choices;
      const auto found = value.is_string()
                             ? std::find(choices.begin(), choices.end(), value.get<std::string>())
                             : choices.end();
      if (found == choices.end()) {
        throw std::invalid_argument(
            fmt::format("{}: {} is not one of its candidates", dimension.name, value.dump()));
      }
      point.push_back(static_cast<double>(found - choices.begin()));
      continue;
    }
    if (!value.is_number() || value.get<double>() < dimension.low ||
        value.get<double>() > dimension.high) {
      throw std::invalid_argument(fmt::format("{}: {} is outside [{}, {}]", dimension.name,
                                              value.dump(), dimension.low, dimension.high));
    }
    point.push_back(value.get<double>());
  }
  return point;
}

}  // namespace slim::search
